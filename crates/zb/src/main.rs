//! `zb`: a load generator for OCI registries.
//!
//! Runs the selected workloads one after the other against a registry (any
//! that speaks the distribution API over plain HTTP), each after its own
//! untimed set-up, and reports per workload: operations per second, MB/s,
//! latency percentiles and errors. Any non-2xx answer is an error; set-up
//! errors stop the run, and a run with errors exits non-zero after its report.
//!
//! `zb seed-layouts` writes the search data set (OCI image layouts) under a
//! storage root instead; see [`seed`].

mod client;
mod cve;
mod data;
mod debian;
mod names;
mod ops;
mod raw_s3;
mod search;
mod seed;
mod static_tree;
mod stats;
mod workload;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use clap::{Parser, Subcommand, ValueEnum};

use crate::data::BlobSource;
use crate::workload::{Ctx, Workload};

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Output {
    Text,
    Json,
}

/// Load generator for OCI registries: catalog, manifest, push and pull workloads.
#[derive(Parser, Debug)]
#[command(
    version,
    after_help = workload_help(),
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
struct Args {
    #[command(subcommand)]
    command: Option<Command>,
    /// Registry to load, e.g. http://127.0.0.1:5000
    #[arg(required_unless_present_any = ["list", "write_static"])]
    url: Option<String>,
    /// Operations in flight at once.
    #[arg(short, long, default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..))]
    concurrency: u16,
    /// Timed operations per workload.
    #[arg(short = 'n', long, default_value_t = 100)]
    requests: u64,
    /// Basic credentials, user:password.
    #[arg(short = 'A', long = "auth")]
    auth: Option<String>,
    /// Runs the workloads whose name matches this regex.
    #[arg(short = 't', long = "tests", default_value = ".*")]
    tests: String,
    /// Report format.
    #[arg(short, long, value_enum, default_value_t = Output::Text)]
    output: Output,
    /// Repositories are named <prefix>/<workload>.
    #[arg(long, default_value = "zb")]
    repo_prefix: String,
    /// Splits the layer of chunked pushes into PATCHes of this size with
    /// Content-Range (e.g. 524288, 512KiB, 4MiB); by default it streams in
    /// one PATCH with Transfer-Encoding: chunked, as docker and containerd do.
    #[arg(long, value_parser = parse_size)]
    chunk_size: Option<u64>,
    /// Skips set-up: the fixtures are there already (a static copy).
    #[arg(long)]
    no_setup: bool,
    /// Keeps only the workloads that do not push (for static servers).
    #[arg(long)]
    read_only: bool,
    /// Lists the selected workloads and exits.
    #[arg(long)]
    list: bool,
    /// Writes the fixtures of the selected read-only workloads as static
    /// files under DIR (see the static_tree module) and exits.
    #[arg(long, value_name = "DIR")]
    write_static: Option<PathBuf>,
    /// Search workloads: the seeded repositories' prefix (as given to seed-layouts).
    #[arg(long, default_value = "seed")]
    seed_prefix: String,
    /// Search workloads: how many repositories were seeded.
    #[arg(long, default_value_t = 10_000)]
    seed_repos: usize,
    /// Search workloads: tags per seeded repository.
    #[arg(long, default_value_t = 5)]
    seed_tags: usize,
    /// Search workloads: the big repository ImageList reads.
    #[arg(long, default_value = "seed/big")]
    big_repo: String,
    /// Search workloads: tags of the big repository.
    #[arg(long, default_value_t = 1000)]
    big_tags: usize,
    /// CVE workloads: the registry's OSV folder (`extensions.search.cve.osv.path`),
    /// which they write records into.
    #[arg(long, value_name = "DIR")]
    osv: Option<PathBuf>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Writes the search data set as OCI image layouts under a storage
    /// root (the registry must be (re)started to serve them); prints a
    /// JSON summary.
    SeedLayouts(SeedArgs),
    /// Puts and gets one object straight to an S3 server (multipart, the
    /// registry's part size): the yardstick of `scripts/bench-s3`.
    RawS3(raw_s3::RawS3Args),
}

#[derive(clap::Args, Debug)]
struct SeedArgs {
    /// The registry's storage root (`storage.rootDirectory`).
    #[arg(long)]
    root: PathBuf,
    /// Repositories are <prefix>/teamNN/<word>-NNNNN.
    #[arg(long, default_value = "seed")]
    prefix: String,
    #[arg(long, default_value_t = 10_000)]
    repos: usize,
    /// Tags per repository (the last one is `latest`).
    #[arg(long, default_value_t = 5)]
    tags: usize,
    /// Layers per image.
    #[arg(long, default_value_t = 3)]
    layers: usize,
    /// Share of tags that are two-platform image indexes (0 to 1).
    #[arg(long, default_value_t = 0.1)]
    index_share: f64,
    /// Bytes in each layer's file, about (from half to one and a half times).
    #[arg(long, default_value_t = 1024)]
    layer_size: usize,
    /// One more repository, with --big-tags tags.
    #[arg(long)]
    big_repo: Option<String>,
    #[arg(long, default_value_t = 1000)]
    big_tags: usize,
    /// Writer threads (default: twice the cores).
    #[arg(long)]
    threads: Option<usize>,
}

fn seed_layouts(a: &SeedArgs) -> anyhow::Result<()> {
    let plan = seed::Plan {
        root: a.root.clone(),
        prefix: a.prefix.clone(),
        repos: a.repos,
        tags: a.tags,
        layers: a.layers,
        index_share: a.index_share,
        layer_size: a.layer_size,
        big_repo: a.big_repo.clone(),
        big_tags: a.big_tags,
        threads: a.threads.unwrap_or_else(seed::default_threads),
    };
    let w = seed::write(&plan)?;
    let doc = serde_json::json!({
        "root": a.root,
        "repos": w.repos,
        "tags": w.tags,
        "indexes": w.indexes,
        "blobs": w.blobs,
        "bytes": w.bytes,
        "seconds": w.seconds,
    });
    println!("{doc}");
    Ok(())
}

fn workload_help() -> String {
    let names: Vec<_> = workload::all().into_iter().map(|w| w.name).collect();
    let search: Vec<_> = workload::search_all().into_iter().map(|w| w.name).collect();
    let cve: Vec<_> = workload::cve_all().into_iter().map(|w| w.name).collect();
    format!(
        "Workloads: {}\nSearch workloads (chosen only when -t contains \"search\"; \
         data set from `zb seed-layouts`): {}\nCVE workloads (chosen only when -t contains \
         \"cve\"; need extensions.search.cve with osv.path = --osv, and metrics): {}",
        names.join(", "),
        search.join(", "),
        cve.join(", ")
    )
}

/// A byte count with an optional KiB/MiB/GiB suffix.
fn parse_size(s: &str) -> Result<u64, String> {
    let (digits, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => s.split_at(at),
        None => (s, ""),
    };
    let shift = match unit {
        "" | "B" => 0,
        "KiB" => 10,
        "MiB" => 20,
        "GiB" => 30,
        _ => return Err(format!("{s:?}: use bytes or KiB/MiB/GiB")),
    };
    match digits.parse::<u64>() {
        Ok(n) if n > 0 => n
            .checked_mul(1 << shift)
            .ok_or_else(|| format!("{s:?} is too large")),
        _ => Err(format!("{s:?} is not a positive size")),
    }
}

fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(Command::SeedLayouts(a)) = &args.command {
        return match seed_layouts(a) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("zb: seed-layouts: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("zb: starting the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    if let Some(Command::RawS3(a)) = &args.command {
        return match rt.block_on(raw_s3::run(a)) {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => {
                eprintln!("zb: raw-s3: {e:#}");
                ExitCode::FAILURE
            }
        };
    }
    match rt.block_on(run(args)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("zb: {e:#}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: Args) -> anyhow::Result<ExitCode> {
    let mut workloads = workload::select(&args.tests)?;
    if args.read_only {
        workloads.retain(Workload::read_only);
        anyhow::ensure!(
            !workloads.is_empty(),
            "-t {:?} selects no read-only workload",
            args.tests
        );
    }
    if args.list {
        for w in &workloads {
            println!("{}", w.name);
        }
        return Ok(ExitCode::SUCCESS);
    }
    let sizes: Vec<u64> = workloads.iter().flat_map(Workload::sizes).collect();
    let source = BlobSource::new(&sizes);
    if let Some(dir) = &args.write_static {
        static_tree::write(dir, &workloads, &args.repo_prefix, &source)?;
        return Ok(ExitCode::SUCCESS);
    }
    let url = args.url.as_deref().context("give the registry URL")?;
    let c = usize::from(args.concurrency);
    let widest = workloads
        .iter()
        .map(|w| w.shape(c, args.requests).0)
        .chain([c, workload::SETUP_CONCURRENCY])
        .max()
        .unwrap_or(c);
    let ctx = Arc::new(Ctx {
        client: client::Client::new(url, args.auth.as_deref(), widest)?,
        source,
        prefix: args.repo_prefix.clone(),
        nonce: nonce(),
        chunk: args.chunk_size,
        search: search::DataSet {
            prefix: args.seed_prefix.clone(),
            repos: args.seed_repos,
            tags: args.seed_tags,
            big: args.big_repo.clone(),
            big_tags: args.big_tags,
        },
        cve: cve::CveSet::new(args.osv.clone()),
    });
    let text = args.output == Output::Text;
    let mut rows = Vec::new();
    for w in workloads {
        let setup_started = std::time::Instant::now();
        if !args.no_setup {
            w.setup(&ctx)
                .await
                .with_context(|| format!("{}: set-up", w.name))?;
        }
        let setup_seconds = setup_started.elapsed().as_secs_f64();
        let (wc, wn) = w.shape(c, args.requests);
        if text {
            eprintln!(
                "zb: {} (set up in {setup_seconds:.1} s; {wn} operations, {wc} at a time)",
                w.name
            );
        }
        let mut summary = stats::run(ctx.clone(), Arc::new(w), wn, wc).await?;
        summary.setup_seconds = setup_seconds;
        for m in &summary.messages {
            eprintln!("zb: {}: error: {m}", summary.name);
        }
        rows.push(summary);
    }
    if text {
        print!("{}", stats::text_table(&rows));
    } else {
        let doc = serde_json::json!({
            "target": url,
            "concurrency": c,
            "requests": args.requests,
            "results": rows.iter().map(stats::Summary::to_json).collect::<Vec<_>>(),
        });
        println!("{doc:#}");
    }
    let errors: u64 = rows.iter().map(|r| r.errors).sum();
    if errors > 0 {
        eprintln!("zb: {errors} operation(s) failed");
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

/// A short string unique to this run (time and process id).
fn nonce() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    format!(
        "{:x}{:x}",
        nanos as u64 & 0xffff_ffff_ffff,
        std::process::id()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arguments() -> Result<(), clap::Error> {
        let a = Args::try_parse_from([
            "zb",
            "-c",
            "8",
            "-n",
            "50",
            "-A",
            "u:p",
            "-t",
            "pull",
            "-o",
            "json",
            "--repo-prefix",
            "x",
            "--chunk-size",
            "1MiB",
            "http://h:1",
        ])?;
        assert_eq!((a.concurrency, a.requests), (8, 50));
        assert_eq!(a.auth.as_deref(), Some("u:p"));
        assert_eq!((a.tests.as_str(), a.output), ("pull", Output::Json));
        assert_eq!((a.repo_prefix.as_str(), a.chunk_size), ("x", Some(1 << 20)));
        assert_eq!(a.url.as_deref(), Some("http://h:1"));

        let d = Args::try_parse_from(["zb", "http://h"])?;
        assert_eq!((d.concurrency, d.requests, d.chunk_size), (4, 100, None));
        assert_eq!(
            (d.tests.as_str(), d.output, d.no_setup),
            (".*", Output::Text, false)
        );

        assert!(Args::try_parse_from(["zb"]).is_err(), "the URL is required");
        assert!(Args::try_parse_from(["zb", "--list"]).is_ok());
        assert!(Args::try_parse_from(["zb", "--write-static", "/tmp/x"]).is_ok());
        assert!(Args::try_parse_from(["zb", "-c", "0", "http://h"]).is_err());
        assert!(Args::try_parse_from(["zb", "-o", "xml", "http://h"]).is_err());

        let s = Args::try_parse_from([
            "zb",
            "seed-layouts",
            "--root",
            "/tmp/r",
            "--repos",
            "10",
            "--big-repo",
            "seed/big",
        ])?;
        match s.command {
            Some(Command::SeedLayouts(a)) => {
                assert_eq!((a.repos, a.tags, a.layers), (10, 5, 3));
                assert_eq!(a.big_repo.as_deref(), Some("seed/big"));
                assert!((a.index_share - 0.1).abs() < 1e-9);
            }
            _ => panic!("seed-layouts is a subcommand"),
        }
        let r = Args::try_parse_from([
            "zb",
            "raw-s3",
            "--endpoint",
            "http://s3",
            "--bucket",
            "b",
            "--size",
            "64MiB",
        ])?;
        match r.command {
            Some(Command::RawS3(a)) => {
                assert_eq!((a.size, a.part, a.rounds), (64 << 20, 10 << 20, 3));
                assert_eq!((a.endpoint.as_str(), a.bucket.as_str()), ("http://s3", "b"));
            }
            _ => panic!("raw-s3 is a subcommand"),
        }
        assert!(
            Args::try_parse_from(["zb", "raw-s3", "--bucket", "b"]).is_err(),
            "--endpoint is required"
        );
        assert!(
            Args::try_parse_from(["zb", "seed-layouts"]).is_err(),
            "--root"
        );
        let w = Args::try_parse_from(["zb", "-t", "search", "--big-repo", "x/y", "http://h"])?;
        assert_eq!((w.big_repo.as_str(), w.big_tags), ("x/y", 1000));
        Ok(())
    }

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("512KiB"), Ok(512 << 10));
        assert_eq!(parse_size("4MiB"), Ok(4 << 20));
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert!(parse_size("0").is_err());
        assert!(parse_size("5MB").is_err());
        assert!(parse_size("MiB").is_err());
        assert!(parse_size("99999999999999GiB").is_err());
    }

    #[test]
    fn nonces_are_short_and_tag_safe() {
        let n = nonce();
        assert!(
            n.len() <= 24 && n.chars().all(|c| c.is_ascii_hexdigit()),
            "{n}"
        );
    }
}
