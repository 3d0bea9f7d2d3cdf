//! The top-level `cluster` section: zot's three-member examples are read
//! (only their DynamoDB cache is refused), and bad members, keys and TLS
//! settings are named.

use std::path::PathBuf;

use zot_config::{Config, Format, Problem};

fn json(text: &str) -> Result<Config, Vec<Problem>> {
    Config::from_str(text, Format::Json)
}

/// The problems' paths, sorted.
fn paths(problems: &[Problem]) -> Vec<String> {
    let mut paths: Vec<String> = problems.iter().map(|p| p.path.clone()).collect();
    paths.sort();
    paths
}

#[test]
fn zot_cluster_examples_are_read() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../../shared/zot-examples/scale-out-cluster");
    for i in 0..3 {
        let file = dir.join(format!("config-cluster-member{i}.json"));
        let problems = Config::from_file(&file).expect_err("dynamodb is refused");
        // `cluster` itself is accepted: only the DynamoDB cache is refused.
        assert_eq!(
            paths(&problems),
            ["storage.cacheDriver"],
            "{}: {problems:?}",
            file.display()
        );
        // The same file with local storage loads, with zot's members and key.
        let mut value: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&file).expect("readable")).expect("JSON");
        value["storage"] = serde_json::json!({"rootDirectory": "/tmp/zot"});
        let config = Config::from_value(&value, &[]).expect("loads");
        let cluster = config.cluster.expect("cluster");
        assert_eq!(
            cluster.members,
            ["127.0.0.1:9000", "127.0.0.1:9001", "127.0.0.1:9002"]
        );
        assert_eq!(&cluster.hash_key, b"loremipsumdolors");
        assert_eq!(cluster.tls, None);
    }
}

#[test]
fn cluster_with_tls_and_urls() {
    let config = json(
        r#"{"storage": {"rootDirectory": "/d"}, "cluster": {
            "members": ["https://a.example:8443", "b.example:8443"],
            "hashKey": "0123456789abcdef",
            "tls": {"cacert": "/ca.pem", "cert": "/c.pem", "key": "/k.pem"}}}"#,
    )
    .expect("valid");
    let cluster = config.cluster.expect("cluster");
    assert_eq!(cluster.members.len(), 2);
    let tls = cluster.tls.expect("tls");
    assert_eq!(tls.cacert, Some(PathBuf::from("/ca.pem")));
    assert_eq!(tls.cert, Some(PathBuf::from("/c.pem")));
}

#[test]
fn bad_cluster_sections_are_named() {
    for (text, want) in [
        (r#"{}"#, vec!["cluster.hashKey", "cluster.members"]),
        (
            r#"{"members": [], "hashKey": "loremipsumdolors"}"#,
            vec!["cluster.members"],
        ),
        (
            r#"{"members": ["127.0.0.1:9000"], "hashKey": "short"}"#,
            vec!["cluster.hashKey"],
        ),
        (
            r#"{"members": ["127.0.0.1", "h:0", "h:1/x", 3], "hashKey": "loremipsumdolors"}"#,
            vec![
                "cluster.members[0]",
                "cluster.members[1]",
                "cluster.members[2]",
                "cluster.members[3]",
            ],
        ),
        (
            r#"{"members": ["h:1"], "hashKey": "loremipsumdolors", "tls": {"cert": "/c"}}"#,
            vec!["cluster.tls.cert"],
        ),
        (
            r#"{"members": ["h:1"], "hashKey": "loremipsumdolors", "peers": 1}"#,
            vec!["cluster.peers"],
        ),
    ] {
        let doc = format!(r#"{{"storage": {{"rootDirectory": "/d"}}, "cluster": {text}}}"#);
        let problems = json(&doc).expect_err(text);
        assert_eq!(paths(&problems), want, "{text}: {problems:?}");
    }
}
