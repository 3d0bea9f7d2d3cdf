//! Docker Hub naming: the hosts `docker.io`, `index.docker.io` and
//! `registry-1.docker.io` are one registry whose API lives at
//! `registry-1.docker.io`, and a single-segment repository name there means
//! `library/<name>` (the local name is not changed: only what is asked of
//! the upstream).

/// The hosts that name Docker Hub.
pub const DOCKER_HUB_HOSTS: &[&str] = &["docker.io", "index.docker.io", "registry-1.docker.io"];
/// Where Docker Hub's registry API answers.
pub const DOCKER_HUB_API: &str = "https://registry-1.docker.io";

/// Whether `host` (without port) is Docker Hub.
pub fn is_docker_hub(host: &str) -> bool {
    DOCKER_HUB_HOSTS.contains(&host.to_ascii_lowercase().as_str())
}

/// The repository name to ask a registry for: on Docker Hub a name without
/// `/` gets `library/`.
pub fn upstream_repo(docker_hub: bool, repo: &str) -> String {
    if docker_hub && !repo.contains('/') {
        format!("library/{repo}")
    } else {
        repo.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hub_names() {
        for h in ["docker.io", "INDEX.docker.io", "registry-1.docker.io"] {
            assert!(is_docker_hub(h), "{h}");
        }
        assert!(!is_docker_hub("ghcr.io"));
        assert_eq!(upstream_repo(true, "alpine"), "library/alpine");
        assert_eq!(upstream_repo(true, "bitnami/redis"), "bitnami/redis");
        assert_eq!(upstream_repo(false, "alpine"), "alpine");
    }
}
