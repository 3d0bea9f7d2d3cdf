//! The import streams: a zip whose records total far more than the memory
//! the import may use (96 MiB of records) is imported with the process's
//! peak resident memory growing by less than half of that. Alone in its
//! test binary so that no other test shares the process.

#![expect(
    clippy::unwrap_used,
    reason = "test code: a failure is the test's failure"
)]

use std::io::Write;

use zot_vulndb::{Outcome, Source, VulnDb};

fn peak_rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[tokio::test]
async fn import_memory_does_not_grow_with_the_zip() {
    const RECORDS: usize = 16_000;
    const DETAILS: usize = 6144;
    let tmp = tempfile::tempdir().unwrap();
    let folder = tmp.path().join("osv/PyPI");
    std::fs::create_dir_all(&folder).unwrap();
    {
        let file = std::fs::File::create(folder.join("all.zip")).unwrap();
        let mut w = zip::ZipWriter::new(std::io::BufWriter::new(file));
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Deflated);
        for i in 0..RECORDS {
            // Details differ per record so nothing is shared in memory.
            let details: String = format!("{i:08} ").repeat(DETAILS / 9);
            let record = serde_json::json!({
                "id": format!("PYSEC-TEST-{i}"),
                "aliases": [format!("CVE-2099-{i}")],
                "details": details,
                "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}],
                "affected": [{"package": {"ecosystem": "PyPI", "name": format!("pkg-{i}")},
                              "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "1.0"}]}]}]
            });
            w.start_file(format!("PYSEC-TEST-{i}.json"), options)
                .unwrap();
            w.write_all(&serde_json::to_vec(&record).unwrap()).unwrap();
        }
        w.finish().unwrap();
    }
    let total = RECORDS * DETAILS;
    let before = peak_rss_kib();
    let db = VulnDb::open(tmp.path().join("_zot/cve")).unwrap();
    let Outcome::Updated(info) = db
        .update(&Source::Path(tmp.path().join("osv")), &[])
        .await
        .unwrap()
    else {
        panic!("not updated")
    };
    assert_eq!(info.records, RECORDS as u64);
    let grown = (peak_rss_kib() - before) * 1024;
    eprintln!("peak RSS grew by {} MiB", grown >> 20);
    assert!(
        (grown as usize) < total / 2,
        "peak RSS grew by {} MiB importing {} MiB of records",
        grown >> 20,
        total >> 20
    );
}
