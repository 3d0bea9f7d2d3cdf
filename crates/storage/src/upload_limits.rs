//! Bounds on upload bodies being received at once, per client and in all,
//! so that one client trickling many slow uploads cannot hold the
//! registry's resources (buffers, file handles, upload sessions in use)
//! away from everyone else.
//!
//! A [`BodyPermit`] is taken by the API layer before an upload body is
//! read, with the client's identity (its address; an IPv6 client by its
//! /64), and given back when dropped. Invariant: the counts equal the
//! permits alive, and no client ever holds more than `per_client`, nor all
//! clients together more than `total`.

use crate::error::{Result, StorageError};
use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

#[derive(Debug, Default)]
struct Counts {
    total: usize,
    per_client: HashMap<IpAddr, usize>,
}

#[derive(Debug)]
struct Limits {
    per_client: usize,
    total: usize,
    counts: Mutex<Counts>,
}

/// The gate every upload body passes.
#[derive(Debug, Clone)]
pub(crate) struct BodyGate(Arc<Limits>);

/// The right to receive one upload body; given back when dropped.
#[derive(Debug)]
pub struct BodyPermit {
    gate: Arc<Limits>,
    client: Option<IpAddr>,
}

impl BodyGate {
    pub(crate) fn new(per_client: usize, total: usize) -> BodyGate {
        BodyGate(Arc::new(Limits {
            per_client,
            total,
            counts: Mutex::default(),
        }))
    }

    /// A permit for one more body of `client` (`None`: a client whose
    /// address is unknown, bound only by the total).
    pub(crate) fn admit(&self, client: Option<IpAddr>) -> Result<BodyPermit> {
        let limits = &self.0;
        let mut counts = limits.lock();
        if counts.total >= limits.total {
            return Err(StorageError::TooManyUploadBodies {
                limit: limits.total,
                per_client: false,
            });
        }
        if let Some(ip) = client {
            let n = counts.per_client.entry(ip).or_default();
            if *n >= limits.per_client {
                return Err(StorageError::TooManyUploadBodies {
                    limit: limits.per_client,
                    per_client: true,
                });
            }
            *n += 1;
        }
        counts.total += 1;
        Ok(BodyPermit {
            gate: limits.clone(),
            client,
        })
    }
}

impl Limits {
    fn lock(&self) -> std::sync::MutexGuard<'_, Counts> {
        self.counts.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl Drop for BodyPermit {
    fn drop(&mut self) {
        let mut counts = self.gate.lock();
        counts.total = counts.total.saturating_sub(1);
        if let Some(ip) = self.client
            && let Some(n) = counts.per_client.get_mut(&ip)
        {
            *n = n.saturating_sub(1);
            if *n == 0 {
                counts.per_client.remove(&ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> Option<IpAddr> {
        s.parse().ok()
    }

    #[test]
    fn bounds_each_client_and_the_total() {
        let gate = BodyGate::new(2, 3);
        let a1 = gate.admit(ip("10.0.0.1"));
        let a2 = gate.admit(ip("10.0.0.1"));
        assert!(a1.is_ok() && a2.is_ok());
        assert!(matches!(
            gate.admit(ip("10.0.0.1")),
            Err(StorageError::TooManyUploadBodies {
                per_client: true,
                ..
            })
        ));
        let b = gate.admit(ip("10.0.0.2"));
        assert!(b.is_ok());
        assert!(matches!(
            gate.admit(ip("10.0.0.3")),
            Err(StorageError::TooManyUploadBodies {
                per_client: false,
                ..
            })
        ));
        drop(a1);
        assert!(
            gate.admit(ip("10.0.0.1")).is_ok(),
            "a dropped permit is given back"
        );
        drop((a2, b));
        assert!(gate.0.lock().per_client.is_empty());
        assert_eq!(gate.0.lock().total, 0);
    }
}
