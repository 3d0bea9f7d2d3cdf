//! Names of the seeded search data set, shared by `zb seed-layouts` (which
//! writes them) and the `search-*` workloads (which query them).
//!
//! Repository `i` is `<prefix>/team<NN>/<word>-<iiiii>`: fifty teams and
//! [`WORDS`] words, so a word matches about `repos / WORDS.len()`
//! repositories in a GlobalSearch and a team about `repos / 50`. Tags are
//! `1.0`, `1.1`, ... and the last one is `latest`.

/// Words repository names are made of (image names people search for).
pub const WORDS: [&str; 32] = [
    "alpine",
    "nginx",
    "redis",
    "postgres",
    "mysql",
    "python",
    "node",
    "golang",
    "rust",
    "busybox",
    "ubuntu",
    "debian",
    "fedora",
    "httpd",
    "memcached",
    "rabbitmq",
    "mongo",
    "traefik",
    "haproxy",
    "grafana",
    "prometheus",
    "etcd",
    "consul",
    "vault",
    "kafka",
    "zookeeper",
    "elastic",
    "kibana",
    "jenkins",
    "gitlab",
    "minio",
    "envoy",
];

/// Teams (the middle path segment).
pub const TEAMS: usize = 50;

/// The `i`th seeded repository.
pub fn repo(prefix: &str, i: usize) -> String {
    format!(
        "{prefix}/team{:02}/{}-{i:05}",
        i % TEAMS,
        WORDS[(i / TEAMS) % WORDS.len()]
    )
}

/// Tag `t` of a repository with `count` tags.
pub fn tag(t: usize, count: usize) -> String {
    if t + 1 == count {
        "latest".to_owned()
    } else {
        format!("1.{t}")
    }
}

/// The GlobalSearch text of operation `i`: whole words, word prefixes,
/// teams and one exact repository in turn, each drawn from the names of
/// the first `repos` repositories (so every one matches something).
pub fn fragment(prefix: &str, i: u64, repos: usize) -> String {
    let repos = repos.max(1);
    let words = repos.div_ceil(TEAMS).min(WORDS.len());
    let w = WORDS[(i as usize / 4) % words];
    match i % 4 {
        0 => w.to_owned(),
        1 => w[..3.min(w.len())].to_owned(),
        2 => format!("team{:02}", (i as usize / 4) % TEAMS.min(repos)),
        _ => repo(prefix, (i as usize).wrapping_mul(7919) % repos),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_valid_and_distinct() {
        let all: std::collections::BTreeSet<_> = (0..10_000).map(|i| repo("seed", i)).collect();
        assert_eq!(all.len(), 10_000);
        for name in &all {
            assert!(
                name.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"/-".contains(&b)),
                "{name}"
            );
        }
        assert_eq!(repo("seed", 0), "seed/team00/alpine-00000");
        assert_eq!(repo("seed", 51), "seed/team01/nginx-00051");
        assert_eq!(
            (tag(0, 5), tag(3, 5), tag(4, 5)),
            ("1.0".into(), "1.3".into(), "latest".into())
        );
    }

    #[test]
    fn fragments_match_seeded_names() {
        for n in [1, 7, 60, 1000, 10_000] {
            let all: Vec<_> = (0..n).map(|i| repo("seed", i)).collect();
            for i in 0..400 {
                let f = fragment("seed", i, all.len());
                let hits = all.iter().filter(|r| r.contains(&f)).count();
                assert!(hits >= 1, "{f:?} matches none of {n}");
            }
        }
    }
}
