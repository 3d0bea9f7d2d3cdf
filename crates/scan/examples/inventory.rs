//! Prints the inventory of layer files given bottom first (`.tar`,
//! `.tar.gz`/`.tgz`, `.tar.zst`), as JSON, with the time it took on
//! standard error: `cargo run --release -p zot-scan --example inventory -- a.tar.gz b.tar`.

use std::time::Instant;

use zot_scan::{Limits, Scanner};

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let started = Instant::now();
    let mut scanner = Scanner::new(Limits::default());
    let mut bytes = 0;
    for path in std::env::args().skip(1) {
        let media_type = if path.ends_with(".gz") || path.ends_with(".tgz") {
            "application/vnd.oci.image.layer.v1.tar+gzip"
        } else if path.ends_with(".zst") {
            "application/vnd.oci.image.layer.v1.tar+zstd"
        } else {
            "application/vnd.oci.image.layer.v1.tar"
        };
        let file = tokio::fs::File::open(&path).await?;
        bytes += file.metadata().await?.len();
        scanner.add_layer(media_type, file).await?;
    }
    let inventory = scanner.finish();
    println!("{}", serde_json::to_string_pretty(&inventory)?);
    eprintln!(
        "{} packages, {} problems, {} MB of layers in {:?}",
        inventory.packages.len(),
        inventory.problems.len(),
        bytes / 1_000_000,
        started.elapsed()
    );
    Ok(())
}
