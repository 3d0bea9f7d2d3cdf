//! `http.ratelimit`: token buckets per client address, one for all requests
//! (`rate`) and one per listed method (`methods`). A bucket holds at most
//! `rate` tokens (the burst) and refills at `rate` per second. The address is
//! the TCP peer's (never a header such as `X-Forwarded-For`, which a client
//! writes itself); an IPv6 client is keyed by its /64 network, since one
//! host usually holds a whole /64 and could otherwise take a fresh address
//! per request (an IPv4-mapped IPv6 address counts as its IPv4). The table is
//! emptied of full buckets when it grows past [`MAX_CLIENTS`], so it stays
//! bounded whatever the number of addresses.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Mutex;
use std::time::Instant;

use zot_config::RateLimitConfig;

const MAX_CLIENTS: usize = 50_000;

struct Bucket {
    tokens: f64,
    at: Instant,
}

pub(crate) struct RateLimiter {
    rate: Option<u32>,
    methods: Vec<(String, u32)>,
    buckets: Mutex<HashMap<(IpAddr, Option<usize>), Bucket>>,
}

impl RateLimiter {
    pub(crate) fn new(config: &RateLimitConfig) -> Option<RateLimiter> {
        if config.rate.is_none() && config.methods.is_empty() {
            return None;
        }
        Some(RateLimiter {
            rate: config.rate,
            methods: config.methods.clone(),
            buckets: Mutex::new(HashMap::new()),
        })
    }

    /// Takes a token from each bucket that applies; false if one is empty.
    pub(crate) fn admit(&self, client: Option<IpAddr>, method: &str) -> bool {
        let ip = client.map_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED), client_key);
        let Ok(mut buckets) = self.buckets.lock() else {
            return true;
        };
        let now = Instant::now();
        if buckets.len() > MAX_CLIENTS {
            let limit = f64::from(self.rate.unwrap_or(1));
            buckets
                .retain(|_, b| b.tokens + now.duration_since(b.at).as_secs_f64() * limit < limit);
        }
        let mut checks: Vec<(Option<usize>, u32)> = Vec::with_capacity(2);
        if let Some(rate) = self.rate {
            checks.push((None, rate));
        }
        if let Some(i) = self
            .methods
            .iter()
            .position(|(m, _)| m.eq_ignore_ascii_case(method))
        {
            checks.push((Some(i), self.methods[i].1));
        }
        // Refill every bucket first, then take from all or none.
        let mut ok = true;
        for &(key, rate) in &checks {
            let rate = f64::from(rate);
            let b = buckets.entry((ip, key)).or_insert(Bucket {
                tokens: rate,
                at: now,
            });
            b.tokens = (b.tokens + now.duration_since(b.at).as_secs_f64() * rate).min(rate);
            b.at = now;
            ok &= b.tokens >= 1.0;
        }
        if ok {
            for &(key, _) in &checks {
                if let Some(b) = buckets.get_mut(&(ip, key)) {
                    b.tokens -= 1.0;
                }
            }
        }
        ok
    }
}

/// The bucket key of a client address: IPv4 as is, IPv6 by its /64.
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let network = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(std::net::Ipv6Addr::from(network))
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ipv6_clients_share_their_64() {
        let rl = RateLimiter::new(&RateLimitConfig {
            rate: Some(2),
            methods: vec![],
        })
        .expect("limits");
        let ip = |s: &str| Some(s.parse::<IpAddr>().expect("address"));
        assert!(rl.admit(ip("2001:db8:1:2::1"), "GET"));
        assert!(rl.admit(ip("2001:db8:1:2:ffff::9"), "GET"));
        assert!(!rl.admit(ip("2001:db8:1:2:abcd::5"), "GET"), "same /64");
        assert!(rl.admit(ip("2001:db8:1:3::1"), "GET"), "another /64");
        assert!(rl.admit(ip("10.0.0.7"), "GET"));
        assert!(rl.admit(ip("::ffff:10.0.0.7"), "GET"));
        assert!(
            !rl.admit(ip("10.0.0.7"), "GET"),
            "mapped address is the same client"
        );
    }

    #[test]
    fn burst_then_refused_per_client() {
        let rl = RateLimiter::new(&RateLimitConfig {
            rate: Some(100),
            methods: vec![("GET".into(), 3)],
        })
        .expect("limits");
        let a = Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)));
        let b = Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2)));
        assert!((0..3).all(|_| rl.admit(a, "GET")));
        assert!(!rl.admit(a, "GET"));
        assert!(rl.admit(a, "PUT"));
        assert!(rl.admit(b, "GET"));
    }
}
