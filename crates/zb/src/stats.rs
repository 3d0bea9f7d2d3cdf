//! Timed runs and their summaries: `c` tasks take operation numbers from one
//! counter until `n` are done; each records its latencies, bytes and errors.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::workload::{Ctx, Workload};

/// How many error messages a run keeps to show.
const SHOWN_ERRORS: usize = 3;

#[derive(Default)]
struct Tally {
    latencies: Vec<Duration>,
    bytes: u64,
    errors: u64,
    messages: Vec<String>,
}

/// Runs `n` operations of `w` with `c` at a time.
pub async fn run(ctx: Arc<Ctx>, w: Arc<Workload>, n: u64, c: usize) -> anyhow::Result<Summary> {
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..c.max(1) {
        let (ctx, w, next) = (ctx.clone(), w.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut t = Tally::default();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return t;
                }
                let start = Instant::now();
                match w.op(&ctx, i).await {
                    Ok(bytes) => {
                        t.latencies.push(start.elapsed());
                        t.bytes += bytes;
                    }
                    Err(e) => {
                        t.errors += 1;
                        if t.messages.len() < SHOWN_ERRORS {
                            t.messages.push(format!("{e:#}"));
                        }
                    }
                }
            }
        }));
    }
    let mut all = Tally::default();
    for task in tasks {
        let t = task.await?;
        all.latencies.extend(t.latencies);
        all.bytes += t.bytes;
        all.errors += t.errors;
        all.messages.extend(t.messages);
    }
    all.messages.truncate(SHOWN_ERRORS);
    let mut summary = Summary::new(&w.name, all, started.elapsed());
    summary.concurrency = c.max(1);
    Ok(summary)
}

/// The nearest-rank `p`th percentile (0 < p <= 100) of sorted samples.
pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

#[derive(Debug)]
pub struct Summary {
    pub name: String,
    /// Operations that were in flight at once.
    pub concurrency: usize,
    /// How long the untimed set-up took.
    pub setup_seconds: f64,
    pub ok: u64,
    pub errors: u64,
    pub messages: Vec<String>,
    pub seconds: f64,
    pub bytes: u64,
    /// min, p50, p90, p99, max.
    pub latency: [Duration; 5],
}

impl Summary {
    fn new(name: &str, mut t: Tally, elapsed: Duration) -> Self {
        t.latencies.sort_unstable();
        let l = &t.latencies;
        let latency = [
            l.first().copied().unwrap_or_default(),
            percentile(l, 50.0),
            percentile(l, 90.0),
            percentile(l, 99.0),
            l.last().copied().unwrap_or_default(),
        ];
        Summary {
            name: name.to_string(),
            concurrency: 1,
            setup_seconds: 0.0,
            ok: l.len() as u64,
            errors: t.errors,
            messages: t.messages,
            seconds: elapsed.as_secs_f64(),
            bytes: t.bytes,
            latency,
        }
    }

    /// Successful operations per second.
    pub fn rate(&self) -> f64 {
        self.ok as f64 / self.seconds.max(1e-9)
    }

    /// Body bytes moved per second, in MB (10^6 bytes).
    pub fn mb_per_sec(&self) -> f64 {
        self.bytes as f64 / 1e6 / self.seconds.max(1e-9)
    }

    pub fn to_json(&self) -> Value {
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        let [min, p50, p90, p99, max] = self.latency.map(ms);
        json!({
            "workload": self.name,
            "concurrency": self.concurrency,
            "setup_seconds": self.setup_seconds,
            "ok": self.ok,
            "errors": self.errors,
            "error_messages": self.messages,
            "seconds": self.seconds,
            "bytes": self.bytes,
            "ops_per_sec": self.rate(),
            "mb_per_sec": self.mb_per_sec(),
            "latency_ms": { "min": min, "p50": p50, "p90": p90, "p99": p99, "max": max },
        })
    }
}

/// The text table: a header, then one line per summary.
pub fn text_table(rows: &[Summary]) -> String {
    let mut out = format!(
        "{:<26} {:>4} {:>7} {:>6} {:>10} {:>9} {:>9} {:>9} {:>9} {:>9} {:>9}\n",
        "workload",
        "c",
        "ok",
        "errors",
        "ops/s",
        "MB/s",
        "min ms",
        "p50 ms",
        "p90 ms",
        "p99 ms",
        "max ms"
    );
    for s in rows {
        let [min, p50, p90, p99, max] = s.latency.map(|d| d.as_secs_f64() * 1e3);
        out.push_str(&format!(
            "{:<26} {:>4} {:>7} {:>6} {:>10.1} {:>9.1} {:>9.2} {:>9.2} {:>9.2} {:>9.2} {:>9.2}\n",
            s.name,
            s.concurrency,
            s.ok,
            s.errors,
            s.rate(),
            s.mb_per_sec(),
            min,
            p50,
            p90,
            p99,
            max
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: &[u64]) -> Vec<Duration> {
        v.iter().map(|&m| Duration::from_millis(m)).collect()
    }

    #[test]
    fn nearest_rank_percentiles() {
        let s = ms(&(1..=100).collect::<Vec<_>>());
        assert_eq!(percentile(&s, 50.0), Duration::from_millis(50));
        assert_eq!(percentile(&s, 90.0), Duration::from_millis(90));
        assert_eq!(percentile(&s, 99.0), Duration::from_millis(99));
        assert_eq!(percentile(&s, 100.0), Duration::from_millis(100));
        let one = ms(&[7]);
        assert_eq!(percentile(&one, 1.0), Duration::from_millis(7));
        assert_eq!(percentile(&one, 99.0), Duration::from_millis(7));
        assert_eq!(percentile(&[], 50.0), Duration::ZERO);
        let few = ms(&[1, 2, 3, 4]);
        assert_eq!(percentile(&few, 50.0), Duration::from_millis(2));
        assert_eq!(percentile(&few, 90.0), Duration::from_millis(4));
    }

    #[test]
    fn summaries() {
        let t = Tally {
            latencies: ms(&[30, 10, 20]),
            bytes: 3_000_000,
            errors: 1,
            messages: vec!["boom".into()],
        };
        let s = Summary::new("w", t, Duration::from_secs(2));
        assert_eq!((s.ok, s.errors), (3, 1));
        assert!((s.rate() - 1.5).abs() < 1e-9);
        assert!((s.mb_per_sec() - 1.5).abs() < 1e-9);
        assert_eq!(s.latency[0], Duration::from_millis(10));
        assert_eq!(s.latency[4], Duration::from_millis(30));
        let j = s.to_json();
        assert_eq!(j["latency_ms"]["p50"], 20.0);
        assert_eq!(j["errors"], 1);
        let table = text_table(&[s]);
        assert_eq!(table.lines().count(), 2);
        assert!(table.lines().nth(1).is_some_and(|l| l.starts_with("w ")));
    }
}
