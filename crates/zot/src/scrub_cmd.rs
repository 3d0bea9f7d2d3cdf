//! `zot scrub CONFIG`: the scrub, offline, over every repository of every
//! configured store (the root directory and each `subPaths` root), with progress on standard error and a table of what it
//! found on standard output. Exit status: 0 when everything is intact, 1
//! when a blob is corrupt, missing or unreadable or a repository's layout
//! cannot be read (`index.json` unparsable, a blob folder unlistable: each
//! is a row of the table, and the blobs checked before it still count), 2
//! when the scrub could not run. On a root a running server holds (its
//! metadata store is locked) the scrub refuses, with exit status 2, before
//! touching anything under it: the server's own scrub (`extensions.scrub`)
//! covers a live root.

use std::io::Write;
use std::process::ExitCode;
use zot_config::Config;

pub fn run(cfg: Config) -> ExitCode {
    if !crate::lifecycle::AVAILABLE.contains(&"scrub") {
        eprintln!("zot scrub: the scrub extension is not available in this build");
        return ExitCode::from(2);
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("zot scrub: starting the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(scrub(&cfg)) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("zot scrub: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// Whether opening failed because another process holds a store.
fn in_use(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        matches!(
            c.downcast_ref::<zot_storage::StorageError>(),
            Some(zot_storage::StorageError::Meta(
                zot_storage::MetaError::InUse(_)
            ))
        )
    })
}

/// Returns whether everything is intact.
async fn scrub(cfg: &Config) -> anyhow::Result<bool> {
    use anyhow::Context;
    let (stores, _) = match crate::lifecycle::open_stores(cfg).await {
        Ok(opened) => opened,
        Err(e) if in_use(&e) => anyhow::bail!(
            "{e:#}\nzot scrub runs offline only: stop the server first, or let the running \
             server scrub in the background (extensions.scrub)"
        ),
        Err(e) => return Err(e).context("opening storage"),
    };
    let mut problems = Vec::new();
    let (mut blobs, mut manifests, mut repositories) = (0, 0, 0);
    for store in &stores {
        let repos = store.registry.repositories().await?;
        repositories += repos.len();
        for (i, repo) in repos.iter().enumerate() {
            eprintln!("scrub: {} [{}/{}] {repo}", store.name, i + 1, repos.len());
            let r = store.registry.scrub_repo(repo).await;
            blobs += r.blobs_checked;
            manifests += r.manifests_checked;
            problems.extend(r.problems);
        }
    }
    let mut out = std::io::stdout().lock();
    let rows: Vec<[String; 4]> = problems
        .iter()
        .map(|p| {
            [
                p.repository.clone(),
                p.reference.clone().unwrap_or_else(|| "-".into()),
                p.item.to_string(),
                p.fault.as_str().to_owned(),
            ]
        })
        .collect();
    let header = ["REPOSITORY", "REFERENCE", "BLOB", "STATUS"].map(str::to_owned);
    let mut width = header.clone().map(|h| h.len());
    for row in &rows {
        for (w, cell) in width.iter_mut().zip(row) {
            *w = (*w).max(cell.len());
        }
    }
    for row in std::iter::once(&header).chain(&rows) {
        let line: Vec<String> = row
            .iter()
            .zip(width)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        writeln!(out, "{}", line.join("  ").trim_end())?;
    }
    writeln!(
        out,
        "{repositories} repositories, {manifests} manifests, {blobs} blobs checked: {}",
        if problems.is_empty() {
            "no problem".to_owned()
        } else {
            format!("{} problem(s)", problems.len())
        }
    )?;
    Ok(problems.is_empty())
}
