//! Series that other parts of the process keep themselves and that are
//! read when scraped: the storage layer's manifest-cache and lock-wait
//! counters, the sync extension's runs and failures. A [`Source`] reads
//! its own atomics into a [`Collected`], which renders them.
//!
//! Invariants:
//! - A source only reads counters it keeps (a few atomic loads per
//!   store or upstream): a scrape does no I/O and takes no lock that a
//!   request takes.
//! - Label values come from the configuration (store roots, upstream
//!   URLs) or fixed sets, so a source adds a bounded number of series.
//! - Samples of one family from several sources are rendered under one
//!   `# HELP`/`# TYPE`, in the order the sources were added.

use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

use crate::Metrics;
use crate::render::{bound, escape, header};

/// Something that adds series when the metrics are rendered.
pub trait Source: Send + Sync {
    fn collect(&self, out: &mut Collected);
}

enum Sample {
    Value {
        labels: String,
        value: u64,
    },
    Histogram {
        labels: String,
        bounds: &'static [f64],
        /// Per bucket alone (not cumulative); one more than `bounds`.
        buckets: Vec<u64>,
        sum: Duration,
    },
}

struct Family {
    name: &'static str,
    help: &'static str,
    kind: &'static str,
    samples: Vec<Sample>,
}

/// The series collected for one rendering.
#[derive(Default)]
pub struct Collected {
    families: Vec<Family>,
}

fn labels(pairs: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (i, (k, v)) in pairs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(out, "{k}=\"{}\"", escape(v));
    }
    out
}

impl Collected {
    fn family(
        &mut self,
        name: &'static str,
        help: &'static str,
        kind: &'static str,
    ) -> &mut Vec<Sample> {
        let i = match self.families.iter().position(|f| f.name == name) {
            Some(i) => i,
            None => {
                self.families.push(Family {
                    name,
                    help,
                    kind,
                    samples: Vec::new(),
                });
                self.families.len() - 1
            }
        };
        &mut self.families[i].samples
    }

    /// A counter sample (`name` ends in `_total`).
    pub fn counter(
        &mut self,
        name: &'static str,
        help: &'static str,
        pairs: &[(&str, &str)],
        value: u64,
    ) {
        let labels = labels(pairs);
        self.family(name, help, "counter")
            .push(Sample::Value { labels, value });
    }

    /// A histogram over `bounds`: `buckets` holds each bucket's own count
    /// (not cumulative), one more than `bounds` (the last is `+Inf`).
    pub fn histogram(
        &mut self,
        name: &'static str,
        help: &'static str,
        pairs: &[(&str, &str)],
        bounds: &'static [f64],
        buckets: &[u64],
        sum: Duration,
    ) {
        let labels = labels(pairs);
        self.family(name, help, "histogram")
            .push(Sample::Histogram {
                labels,
                bounds,
                buckets: buckets.to_vec(),
                sum,
            });
    }

    fn render(&self, out: &mut String, om: bool) {
        for f in &self.families {
            header(out, om, f.name, f.kind, f.help);
            for s in &f.samples {
                match s {
                    Sample::Value { labels, value } if labels.is_empty() => {
                        let _ = writeln!(out, "{} {value}", f.name);
                    }
                    Sample::Value { labels, value } => {
                        let _ = writeln!(out, "{}{{{labels}}} {value}", f.name);
                    }
                    Sample::Histogram {
                        labels,
                        bounds,
                        buckets,
                        sum,
                    } => histogram(out, om, f.name, labels, bounds, buckets, *sum),
                }
            }
        }
    }
}

fn histogram(
    out: &mut String,
    om: bool,
    name: &str,
    labels: &str,
    bounds: &[f64],
    buckets: &[u64],
    sum: Duration,
) {
    let sep = if labels.is_empty() { "" } else { "," };
    let mut cumulative = 0;
    for (i, le) in bounds.iter().enumerate() {
        cumulative += buckets.get(i).copied().unwrap_or(0);
        let le = bound(*le, om);
        let _ = writeln!(
            out,
            "{name}_bucket{{{labels}{sep}le=\"{le}\"}} {cumulative}"
        );
    }
    cumulative += buckets.get(bounds.len()..).map_or(0, |r| r.iter().sum());
    let _ = writeln!(
        out,
        "{name}_bucket{{{labels}{sep}le=\"+Inf\"}} {cumulative}"
    );
    let braces = |s: &str| {
        if s.is_empty() {
            String::new()
        } else {
            format!("{{{s}}}")
        }
    };
    let _ = writeln!(out, "{name}_sum{} {}", braces(labels), sum.as_secs_f64());
    let _ = writeln!(out, "{name}_count{} {cumulative}", braces(labels));
}

/// The sources added to a [`Metrics`].
#[derive(Default)]
pub(crate) struct Sources(Mutex<Vec<Box<dyn Source>>>);

impl std::fmt::Debug for Sources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.0.lock().map_or(0, |s| s.len());
        write!(f, "Sources({n})")
    }
}

impl Sources {
    pub(crate) fn render(&self, out: &mut String, om: bool) {
        let mut collected = Collected::default();
        if let Ok(sources) = self.0.lock() {
            for s in sources.iter() {
                s.collect(&mut collected);
            }
        }
        collected.render(out, om);
    }
}

impl Metrics {
    /// Adds series read from `source` at every rendering.
    pub fn add_source(&self, source: Box<dyn Source>) {
        if let Ok(mut sources) = self.sources.0.lock() {
            sources.push(source);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::BuildInfo;

    struct Fixed(&'static str);

    impl Source for Fixed {
        fn collect(&self, out: &mut Collected) {
            out.counter("t_hits_total", "Hits", &[("store", self.0)], 3);
            out.histogram(
                "t_wait_seconds",
                "Waits",
                &[("store", self.0)],
                &[0.1, 1.0],
                &[2, 1, 1],
                Duration::from_millis(2500),
            );
        }
    }

    #[test]
    fn sources_render_as_one_family_each() {
        let m = Metrics::new(BuildInfo::default(), 1);
        m.add_source(Box::new(Fixed("a")));
        m.add_source(Box::new(Fixed("b\"")));
        let text = m.render();
        assert_eq!(text.matches("# TYPE t_hits_total counter").count(), 1);
        for line in [
            "t_hits_total{store=\"a\"} 3",
            "t_hits_total{store=\"b\\\"\"} 3",
            "t_wait_seconds_bucket{store=\"a\",le=\"0.1\"} 2",
            "t_wait_seconds_bucket{store=\"a\",le=\"1\"} 3",
            "t_wait_seconds_bucket{store=\"a\",le=\"+Inf\"} 4",
            "t_wait_seconds_sum{store=\"a\"} 2.5",
            "t_wait_seconds_count{store=\"a\"} 4",
        ] {
            assert!(text.contains(&format!("\n{line}\n")), "{line} in {text}");
        }
        let om = m.render_openmetrics();
        assert!(om.contains("# TYPE t_hits counter\n"), "{om}");
        assert!(om.contains("le=\"1.0\""), "{om}");
    }
}
