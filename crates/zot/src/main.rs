//! The `zot` binary: command line, logging, and the wiring of configuration,
//! storage and the HTTP API. All errors end here as `anyhow` messages.

mod apikey_ext;
mod connections;
#[cfg(feature = "cve")]
mod cve_ext;
mod events_ext;
mod lifecycle;
mod listener;
mod log_queue;
mod metrics_ext;
#[cfg(feature = "metrics")]
mod metrics_sampler;
#[cfg(feature = "metrics")]
mod metrics_sources;
mod redis_meta;
mod reload;
#[cfg(feature = "cve")]
mod scan_cmd;
mod scrub_cmd;
mod search_ext;
mod serve;
mod sessions_ext;
mod shared_ext;
mod sync_ext;

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;
use zot_config::Config;

#[derive(Parser)]
#[command(
    name = "zot",
    version,
    about = "An OCI-native container image registry"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the registry, on CONFIG or on the embedded default configuration.
    Serve {
        /// A configuration file, JSON or YAML, with the Go zot's key names.
        config: Option<PathBuf>,
    },
    /// Check a configuration file and name every problem by its key path.
    Verify { config: PathBuf },
    /// Verify every blob and manifest of the configured storage, offline
    /// (the server must not be running on it); exits 1 if anything is
    /// corrupt or missing.
    Scrub { config: PathBuf },
    /// Scan an image of a local OCI layout (or of a storage root) for
    /// vulnerabilities, offline; exits 1 when a finding reaches --fail-on.
    #[cfg(feature = "cve")]
    Scan(scan_cmd::ScanArgs),
}

/// Blob bodies pass through buffers of up to a few MiB. glibc keeps freed
/// memory in its heaps (one per thread, by default), so after a burst of
/// transfers the process would stay large. Two heaps at most, buffers of
/// 512 KiB and more always mmapped (freed means returned), and a background
/// thread handing free memory back every second (`malloc_trim`) keep the
/// resident size near what is in use (measured: 86 → 49 MiB after a pull
/// burst on 10,000 repositories, with no loss of throughput). Every second
/// rather than every five: 16 clients of search queries leave about 25 MiB
/// free in the heaps (RSS 78.8 MiB half a second after the burst, 54.7
/// after a trim), and a process measured 2 s after a burst should not
/// depend on where the trimmer's period happened to fall. Between two
/// trims the heaps keep up to 32 MiB free at their top instead
/// of glibc's 128 KiB: a blob arriving from upstream is read into fresh
/// buffers of a few hundred KiB, and with the default each one freed went
/// back to the system and the next was faulted in again, page by page
/// (34,000 page faults and 15 % of the mirror's CPU per 200 MB pulled
/// through; 7,000 with the threshold). The trimmer still returns it all
/// within a second.
fn start_memory_trimmer() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        /// How often free heap memory is handed back.
        const TRIM_EVERY: std::time::Duration = std::time::Duration::from_secs(1);
        #[expect(
            unsafe_code,
            reason = "malloc_trim is glibc's way to return free memory"
        )]
        fn trim() {
            // SAFETY: malloc_trim is thread-safe and only releases free memory.
            unsafe {
                libc::malloc_trim(0);
            }
        }
        /// Free memory a heap keeps at its top between two trims.
        const TRIM_THRESHOLD: libc::c_int = 32 * 1024 * 1024;
        #[expect(unsafe_code, reason = "mallopt is glibc's switch for this")]
        fn tune() {
            // SAFETY: called before any other thread starts; it only sets
            // parameters of the allocator.
            unsafe {
                // Few heaps: buffers allocated on blocking threads and freed
                // on async workers do not spread over one heap per thread.
                libc::mallopt(libc::M_ARENA_MAX, 2);
                // Blob-sized buffers stay mmapped, so freeing returns them.
                libc::mallopt(libc::M_MMAP_THRESHOLD, 512 * 1024);
                // Freed buffers are reused, not returned and faulted in
                // again; the trimmer returns them within a second.
                libc::mallopt(libc::M_TRIM_THRESHOLD, TRIM_THRESHOLD);
            }
        }
        tune();
        let spawned = std::thread::Builder::new()
            .name("memory-trim".into())
            .spawn(|| {
                loop {
                    std::thread::sleep(TRIM_EVERY);
                    trim();
                }
            });
        if let Err(e) = spawned {
            eprintln!("zot: cannot start the memory trimmer: {e}");
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // TLS clients that build their configuration with the process default
    // (Redis over `rediss://`, LDAP, NATS) get ring: two providers are
    // compiled in, so none would be chosen by itself.
    let _ = rustls::crypto::ring::default_provider().install_default();
    match cli.command {
        Command::Verify { config } => match Config::from_file_with(&config, lifecycle::AVAILABLE) {
            Ok(cfg) => {
                for note in search_ext::notes(&cfg) {
                    eprintln!("{}: note: {note}", config.display());
                }
                println!("{}: configuration is valid", config.display());
                ExitCode::SUCCESS
            }
            Err(problems) => {
                for p in &problems {
                    eprintln!("{}: {p}", config.display());
                }
                eprintln!("{}: {} problem(s)", config.display(), problems.len());
                ExitCode::FAILURE
            }
        },
        Command::Scrub { config } => match Config::from_file_with(&config, lifecycle::AVAILABLE) {
            Ok(cfg) => scrub_cmd::run(cfg),
            Err(problems) => {
                for p in &problems {
                    eprintln!("{}: {p}", config.display());
                }
                ExitCode::from(2)
            }
        },
        #[cfg(feature = "cve")]
        Command::Scan(args) => scan_cmd::run(args),
        Command::Serve { config } => {
            start_memory_trimmer();
            let (cfg, source) = match config {
                None => (Config::embedded_default(), None),
                // Read once: the hash is of exactly the text validated.
                Some(path) => match reload::load(&path) {
                    Ok((c, hash)) => (c, Some((path, hash))),
                    Err(problems) => {
                        for p in &problems {
                            eprintln!("{}: {p}", path.display());
                        }
                        return ExitCode::FAILURE;
                    }
                },
            };
            match serve::run(cfg, source) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("zot: {e:#}");
                    ExitCode::FAILURE
                }
            }
        }
    }
}
