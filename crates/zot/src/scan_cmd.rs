//! `zot scan`: the registry's scanner for CI pipelines, offline. Scans one
//! image of a local OCI layout (`<dir>[:<tag>]`, or `--root <storage
//! root> <repo>:<tag>`, a repository of the registry's storage being an
//! OCI layout), matches its inventory against an OSV database, prints a
//! table (or JSON) and exits 1 when a finding is at least `--fail-on`.
//!
//! The database: `--db <dir>`, either a built database (a registry's
//! `_zot/cve`, holding `CURRENT`) used as is, or a folder of OSV records
//! (`<ecosystem>/all.zip` or `<ecosystem>/*.json`) imported into a
//! temporary one; else `--config`'s `extensions.search.cve.osv` source
//! (a URL, a folder or an OCI artifact), imported into a temporary database.
//! An index is scanned platform by platform, findings merged.
//! Exit status: 0 (no finding at or above the threshold), 1 (some), 2
//! (the scan could not run).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, bail};
use zot_cve::StoredCve;
use zot_scan::{Inventory, Limits, Scanner};
use zot_vulndb::{Severity, Source, VulnDb};

#[derive(clap::Args)]
pub struct ScanArgs {
    /// `<oci-layout-dir>[:<tag>]`, or `<repo>:<tag>` with `--root`.
    image: String,
    /// A storage root: IMAGE is then `<repo>:<tag>` of it.
    #[arg(long)]
    root: Option<PathBuf>,
    /// A built database (holding `CURRENT`) or a folder of OSV records.
    #[arg(long)]
    db: Option<PathBuf>,
    /// A registry configuration whose `extensions.search.cve.osv` names the source.
    #[arg(long)]
    config: Option<PathBuf>,
    /// `table` or `json`.
    #[arg(long, default_value = "table")]
    format: String,
    /// Exit 1 when a finding has at least this severity (LOW, MEDIUM, HIGH, CRITICAL, UNKNOWN).
    #[arg(long)]
    fail_on: Option<String>,
}

pub fn run(args: ScanArgs) -> ExitCode {
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            eprintln!("zot scan: starting the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(scan(&args)) {
        Ok(true) => ExitCode::FAILURE,
        Ok(false) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("zot scan: {e:#}");
            ExitCode::from(2)
        }
    }
}

/// The layout directory and tag `args` name.
fn target(args: &ScanArgs) -> anyhow::Result<(PathBuf, Option<String>)> {
    if let Some(root) = &args.root {
        let Some((repo, tag)) = args.image.rsplit_once(':') else {
            bail!("with --root, IMAGE is <repo>:<tag>");
        };
        return Ok((root.join(repo), Some(tag.to_owned())));
    }
    if Path::new(&args.image).is_dir() {
        return Ok((PathBuf::from(&args.image), None));
    }
    match args.image.rsplit_once(':') {
        Some((dir, tag)) if Path::new(dir).is_dir() => Ok((dir.into(), Some(tag.to_owned()))),
        _ => bail!("{}: no OCI layout directory", args.image),
    }
}

fn blob_path(layout: &Path, digest: &str) -> anyhow::Result<PathBuf> {
    let (alg, hex) = digest
        .split_once(':')
        .with_context(|| format!("bad digest {digest}"))?;
    if !hex.bytes().all(|b| b.is_ascii_hexdigit()) || alg.contains('/') {
        bail!("bad digest {digest}");
    }
    Ok(layout.join("blobs").join(alg).join(hex))
}

fn read_json(path: &Path) -> anyhow::Result<serde_json::Value> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_slice(&bytes).with_context(|| format!("parsing {}", path.display()))
}

/// The manifests to scan: the tagged one, or an index's children.
fn manifests(layout: &Path, tag: Option<&str>) -> anyhow::Result<Vec<serde_json::Value>> {
    let index = read_json(&layout.join("index.json"))?;
    let entries = index["manifests"].as_array().cloned().unwrap_or_default();
    let entry = match tag {
        Some(tag) => entries
            .into_iter()
            .find(|m| m["annotations"]["org.opencontainers.image.ref.name"] == tag)
            .with_context(|| format!("no manifest tagged {tag} in {}", layout.display()))?,
        None if entries.len() == 1 => entries.into_iter().next().unwrap_or_default(),
        None => bail!("{} holds several manifests: name a tag", layout.display()),
    };
    let digest = entry["digest"]
        .as_str()
        .context("manifest descriptor without digest")?;
    let doc = read_json(&blob_path(layout, digest)?)?;
    match doc["manifests"].as_array() {
        Some(children) => children
            .iter()
            .filter_map(|c| c["digest"].as_str())
            .map(|d| read_json(&blob_path(layout, d)?))
            .collect(),
        None => Ok(vec![doc]),
    }
}

async fn inventory(layout: &Path, manifest: &serde_json::Value) -> anyhow::Result<Inventory> {
    let mut scanner = Scanner::new(Limits::default());
    for layer in manifest["layers"].as_array().into_iter().flatten() {
        let media_type = layer["mediaType"].as_str().unwrap_or_default();
        let digest = layer["digest"].as_str().context("layer without digest")?;
        let path = blob_path(layout, digest)?;
        let file = tokio::fs::File::open(&path)
            .await
            .with_context(|| format!("opening {}", path.display()))?;
        scanner.add_layer(media_type, file).await?;
    }
    Ok(scanner.finish())
}

/// The database to match against, and the temporary directory holding it.
async fn database(args: &ScanArgs) -> anyhow::Result<(VulnDb, Option<tempfile::TempDir>)> {
    let tmp = tempfile::tempdir().context("a temporary database directory")?;
    let source = match (&args.db, &args.config) {
        (Some(db), _) if db.join("CURRENT").is_file() => return Ok((VulnDb::open(db)?, None)),
        (Some(db), _) => Source::Path(db.clone()),
        (None, Some(config)) => {
            let cfg = zot_config::Config::from_file_with(config, crate::lifecycle::AVAILABLE)
                .map_err(|p| anyhow::anyhow!("{}: {} problem(s)", config.display(), p.len()))?;
            let cve = cfg
                .extension("search")
                .and_then(|e| e.search())
                .and_then(|s| s.cve)
                .context("the configuration has no extensions.search.cve")?;
            match cve.osv.source {
                zot_config::OsvSource::Url(u) => Source::Url(u),
                zot_config::OsvSource::Path(p) => Source::Path(p.into()),
                zot_config::OsvSource::Repository(r) => {
                    let dir = tmp.path().join("artifact");
                    zot_cve::artifact::fetch(&r, &dir)
                        .await
                        .map_err(anyhow::Error::msg)?;
                    Source::Path(dir)
                }
            }
        }
        (None, None) => bail!("name a database: --db <dir> or --config <file>"),
    };
    let db = VulnDb::open(tmp.path().join("db"))?;
    db.update(&source, &[]).await?;
    Ok((db, Some(tmp)))
}

async fn scan(args: &ScanArgs) -> anyhow::Result<bool> {
    let threshold = match &args.fail_on {
        None => None,
        Some(s) => Some(
            Severity::from_name(s)
                .or_else(|| {
                    s.eq_ignore_ascii_case("unknown")
                        .then_some(Severity::Unknown)
                })
                .with_context(|| format!("--fail-on {s}: not a severity"))?,
        ),
    };
    if args.format != "table" && args.format != "json" {
        bail!("--format {}: table or json", args.format);
    }
    let (layout, tag) = target(args)?;
    let (db, _tmp) = database(args).await?;
    let snapshot = db.current().context("the database is empty")?;
    let mut found: Vec<StoredCve> = Vec::new();
    let mut packages = 0;
    for manifest in manifests(&layout, tag.as_deref())? {
        let inv = inventory(&layout, &manifest).await?;
        packages += inv.packages.len();
        for c in zot_cve::group(zot_vulndb::match_inventory(&inv, snapshot.as_ref())?) {
            match found.iter_mut().find(|f| f.id == c.id) {
                Some(f) => {
                    for p in c.packages {
                        if !f.packages.contains(&p) {
                            f.packages.push(p);
                        }
                    }
                }
                None => found.push(c),
            }
        }
    }
    let rank = |s: &str| Severity::from_name(s).map_or(0, |s| s as u8 + 1);
    found.sort_by(|a, b| {
        rank(&b.severity)
            .cmp(&rank(&a.severity))
            .then_with(|| a.id.cmp(&b.id))
    });
    let failing = threshold.map_or(0, |t| {
        found
            .iter()
            .filter(|c| Severity::from_name(&c.severity).unwrap_or(Severity::Unknown) >= t)
            .count()
    });
    if args.format == "json" {
        let out = serde_json::json!({
            "image": args.image,
            "database": { "version": snapshot.info().version, "builtAt": snapshot.info().built_at },
            "packages": packages,
            "vulnerabilities": found,
        });
        println!("{}", serde_json::to_string_pretty(&out)?);
    } else {
        print_table(&found);
        eprintln!(
            "{}: {} packages, {} vulnerabilities (database version {})",
            args.image,
            packages,
            found.len(),
            snapshot.info().version
        );
    }
    if let Some(t) = threshold
        && failing > 0
    {
        eprintln!("{failing} vulnerabilities at or above {}", t.as_str());
    }
    Ok(failing > 0)
}

fn print_table(found: &[StoredCve]) {
    let mut rows = vec![[
        "ID".to_owned(),
        "SEVERITY".to_owned(),
        "PACKAGE".to_owned(),
        "INSTALLED".to_owned(),
        "FIXED".to_owned(),
        "PATH".to_owned(),
    ]];
    for c in found {
        for p in &c.packages {
            rows.push([
                c.id.clone(),
                c.severity.clone(),
                p.name.clone(),
                p.installed.clone(),
                p.fixed.clone().unwrap_or_default(),
                p.path.clone(),
            ]);
        }
    }
    let widths: Vec<usize> = (0..6)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    for r in rows {
        let line: Vec<String> = r
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        println!("{}", line.join("  ").trim_end());
    }
}
