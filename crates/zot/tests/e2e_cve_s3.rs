//! Vulnerability scanning on S3 storage (zot refuses the combination; we
//! scan through the storage driver's blob streams): the real binary with
//! `storage.storageDriver` on a SeaweedFS server the test starts, an OSV
//! folder, a Debian image with a vulnerable openssl pushed over HTTP,
//! then `CVEListForImage` and `ImageListForCVE` checked against findings
//! written by hand, and the layers were read from the bucket.

mod common;
mod cve_common;

#[path = "../../storage/tests/s3_common/seaweed.rs"]
mod seaweed;

use common::Registry;
use common::registry::Config;
use cve_common::*;
use serde_json::json;

#[test]
fn images_on_s3_are_scanned_and_queried() {
    let server = seaweed::shared();
    let bucket = server.bucket();
    let work = tempfile::tempdir().expect("tempdir");
    let osv = work.path().join("osv");
    write_record(
        &osv,
        &record("CVE-2099-0101", "openssl", "3.0.13-1~deb12u1", HIGH),
    );
    write_record(&osv, &record("CVE-2099-0102", "zlib", "1:1.3.dfsg-1", LOW));
    let registry = Registry::start_with(
        Config::default()
            .with_storage("storageDriver", server.driver_json(&bucket))
            .with_storage("remoteCache", serde_json::json!(false))
            .with_extensions(json!({
                "search": { "cve": { "osv": { "path": osv } } },
                "metrics": { "prometheus": { "path": "/metrics" } },
            })),
    );
    let client = registry.client();
    let vulnerable = debian_image("amd64", "2024-01-01T00:00:00Z", "3.0.11-1~deb12u1");
    let fixed = debian_image("amd64", "2024-06-01T00:00:00Z", "3.0.13-1~deb12u1");
    vulnerable.push(&client, "s3/app", "1.0");
    fixed.push(&client, "s3/app", "2.0");
    wait_for("both images scanned", || {
        metric(&client, "zot_cve_manifests_matched_total") == Some(2)
    });
    assert_eq!(metric(&client, "zot_cve_layers_read_total"), Some(4));

    let r = cve_list(&client, "s3/app:1.0", "");
    assert_eq!(ids(&r["CVEList"]), ["CVE-2099-0101", "CVE-2099-0102"]);
    assert_eq!(r["Summary"]["MaxSeverity"], "HIGH");
    assert_eq!(
        r["CVEList"][0]["PackageList"],
        json!([{"Name": "libssl3", "InstalledVersion": "3.0.11-1~deb12u1", "FixedVersion": "3.0.13-1~deb12u1", "PackagePath": "var/lib/dpkg/status"}])
    );
    let r = cve_list(&client, "s3/app:2.0", "");
    assert_eq!(ids(&r["CVEList"]), ["CVE-2099-0102"]);
    assert_eq!(r["Summary"]["MaxSeverity"], "LOW");
    assert_eq!(images_for_cve(&client, "CVE-2099-0101"), ["s3/app:1.0"]);
    assert_eq!(
        images_for_cve(&client, "CVE-2099-0102"),
        ["s3/app:1.0", "s3/app:2.0"]
    );
    // Nothing of the images is on local disk: the layouts are in the bucket.
    assert!(!registry.root().join("s3/app/index.json").exists());
}
