//! zot's start-up rule for a registry with several `urls`: the ones that
//! point at this registry itself (its `http.address:port`, or a loopback
//! or unspecified address with its port) are dropped, so a group of
//! registries can share one configuration; none left is an error.

use std::net::IpAddr;

/// `urls` without those that name this registry (listening on
/// `address:port`). A single URL is kept as it is.
pub fn without_self(urls: &[String], address: &str, port: u16) -> Vec<String> {
    if urls.len() < 2 {
        return urls.to_vec();
    }
    urls.iter()
        .filter(|u| !is_self(u, address, port))
        .cloned()
        .collect()
}

fn is_self(url: &str, address: &str, port: u16) -> bool {
    let Ok(u) = url::Url::parse(url) else {
        return false;
    };
    let Some(host) = u.host_str() else {
        return false;
    };
    if u.port_or_known_default() != Some(port) {
        return false;
    }
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if host.eq_ignore_ascii_case(address) || host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    host.parse::<IpAddr>()
        .is_ok_and(|ip| ip.is_loopback() || ip.is_unspecified())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn urls(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn drops_this_registry() {
        let all = urls(&[
            "https://zot-a.example:8080",
            "https://zot-b.example:8080",
            "http://127.0.0.1:8080",
            "http://localhost:8080",
            "http://127.0.0.1:9090",
        ]);
        assert_eq!(
            without_self(&all, "zot-a.example", 8080),
            urls(&["https://zot-b.example:8080", "http://127.0.0.1:9090"])
        );
        // One URL is kept even when it is this registry.
        let one = urls(&["http://127.0.0.1:8080"]);
        assert_eq!(without_self(&one, "0.0.0.0", 8080), one);
        // Default ports count.
        let two = urls(&["https://localhost", "https://up.example"]);
        assert_eq!(
            without_self(&two, "0.0.0.0", 443),
            urls(&["https://up.example"])
        );
    }
}
