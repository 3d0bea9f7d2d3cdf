//! The Prometheus text exposition format, version 0.0.4: `# HELP` and
//! `# TYPE` once per family, then its samples; label values escaped;
//! series never observed left out (except `zot_info` and the gauges).

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::UNIX_EPOCH;

use crate::{CODES, Histogram, METHODS, Metrics, Summary};

/// The `Content-Type` of [`Metrics::render`]'s output.
pub const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// The `Content-Type` of [`Metrics::render_openmetrics`]'s output.
pub const OPENMETRICS_CONTENT_TYPE: &str =
    "application/openmetrics-text; version=1.0.0; charset=utf-8";

pub(crate) fn load(a: &AtomicU64) -> u64 {
    a.load(Ordering::Relaxed)
}

fn secs(nanos: u64) -> f64 {
    nanos as f64 / 1e9
}

/// A label value, escaped as the format wants (`\\`, `\"`, `\n`).
pub(crate) fn escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
    out
}

/// `# HELP` and `# TYPE` of a family; in OpenMetrics a counter family is
/// named without its samples' `_total`.
pub(crate) fn header(out: &mut String, om: bool, name: &str, kind: &str, help: &str) {
    let name = match (om, kind) {
        (true, "counter") => name.strip_suffix("_total").unwrap_or(name),
        _ => name,
    };
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

pub(crate) fn summary(out: &mut String, name: &str, labels: &str, s: &Summary) {
    let labels = if labels.is_empty() {
        String::new()
    } else {
        format!("{{{labels}}}")
    };
    let _ = writeln!(out, "{name}_sum{labels} {}", secs(load(&s.sum_nanos)));
    let _ = writeln!(out, "{name}_count{labels} {}", load(&s.count));
}

/// A bucket bound: as Go's text format writes it (`1`), or canonical for
/// OpenMetrics (`1.0`).
pub(crate) fn bound(le: f64, om: bool) -> String {
    if om && le.fract() == 0.0 {
        format!("{le:.1}")
    } else {
        format!("{le}")
    }
}

/// The samples of one histogram series (`labels` without braces).
pub(crate) fn histogram(out: &mut String, om: bool, name: &str, labels: &str, h: &Histogram) {
    let mut cumulative = 0;
    for (le, b) in h.bounds.iter().zip(h.buckets.iter()) {
        cumulative += load(b);
        let le = bound(*le, om);
        let _ = writeln!(out, "{name}_bucket{{{labels},le=\"{le}\"}} {cumulative}");
    }
    cumulative += load(&h.buckets[h.bounds.len()]);
    let _ = writeln!(out, "{name}_bucket{{{labels},le=\"+Inf\"}} {cumulative}");
    // The count is the +Inf bucket's, so the two always agree.
    let _ = writeln!(
        out,
        "{name}_sum{{{labels}}} {}",
        secs(load(&h.sum.sum_nanos))
    );
    let _ = writeln!(out, "{name}_count{{{labels}}} {cumulative}");
}

/// `om`: OpenMetrics 1.0 (counter families without `_total`, canonical
/// bucket bounds, `# EOF`) instead of the text format 0.0.4.
pub(crate) fn render(m: &Metrics, om: bool) -> String {
    let mut out = String::with_capacity(4096);

    let name = "zot_http_requests_total";
    header(
        &mut out,
        om,
        name,
        "counter",
        "Total number of http request in zot",
    );
    for (mi, method) in METHODS.iter().enumerate() {
        for code in 0..CODES {
            let n = load(&m.requests[mi * CODES + code]);
            if n > 0 {
                let code = code + 100;
                let _ = writeln!(out, "{name}{{code=\"{code}\",method=\"{method}\"}} {n}");
            }
        }
    }

    let name = "zot_http_method_latency_seconds";
    header(
        &mut out,
        om,
        name,
        "histogram",
        "Latency of HTTP requests by method",
    );
    for (method, h) in METHODS.iter().zip(&m.method_latency) {
        if load(&h.sum.count) > 0 {
            histogram(&mut out, om, name, &format!("method=\"{method}\""), h);
        }
    }

    let name = "zot_http_repo_latency_seconds";
    header(
        &mut out,
        om,
        name,
        "summary",
        "Latency of serving HTTP requests per repository",
    );
    if load(&m.unlabelled_latency.count) > 0 {
        summary(&mut out, name, "repo=\"N/A\"", &m.unlabelled_latency);
    }
    for slot in m.repos.iter() {
        if load(&slot.latency.count) > 0 {
            let labels = format!("repo=\"{}\"", escape(&slot.name));
            summary(&mut out, name, &labels, &slot.latency);
        }
    }

    for (name, help, pick) in [
        (
            "zot_repo_downloads_total",
            "Total number of image downloads in a repository",
            (|s| &s.downloads) as fn(&crate::repos::RepoSlot) -> &AtomicU64,
        ),
        (
            "zot_repo_uploads_total",
            "Total number of image uploads in a repository",
            |s| &s.uploads,
        ),
    ] {
        header(&mut out, om, name, "counter", help);
        for slot in m.repos.iter() {
            let n = load(pick(slot));
            if n > 0 {
                let _ = writeln!(out, "{name}{{repo=\"{}\"}} {n}", escape(&slot.name));
            }
        }
    }

    let name = "zot_repo_storage_bytes";
    header(&mut out, om, name, "gauge", "Storage used per repository");
    for slot in m.repos.iter() {
        let n = load(&slot.storage_bytes);
        if n != u64::MAX {
            let _ = writeln!(out, "{name}{{repo=\"{}\"}} {n}", escape(&slot.name));
        }
    }

    let name = "zot_info";
    header(
        &mut out,
        om,
        name,
        "gauge",
        "Information about the zot build",
    );
    let i = &m.info;
    let _ = writeln!(
        out,
        "{name}{{binaryType=\"{}\",commit=\"{}\",goVersion=\"{}\",version=\"{}\"}} 0",
        escape(&i.binary_type),
        escape(&i.commit),
        escape(&i.go_version),
        escape(&i.version)
    );

    let gauges = [
        (
            "zot_metrics_repo_labels",
            "Repositories holding a repo label",
            m.repos.len() as f64,
        ),
        (
            "zot_metrics_repo_labels_max",
            "Most repositories that can hold a repo label",
            m.repos.cap() as f64,
        ),
    ];
    for (name, help, value) in gauges {
        header(&mut out, om, name, "gauge", help);
        let _ = writeln!(out, "{name} {value}");
    }
    let name = "zot_metrics_repo_labels_dropped_total";
    header(
        &mut out,
        om,
        name,
        "counter",
        "Successful requests about a repository left without a label by the cap",
    );
    let _ = writeln!(out, "{name} {}", load(&m.dropped_repo_labels));

    let kept = load(&m.events_outbox[0]);
    if kept != u64::MAX {
        let name = "zot_events_outbox_events";
        header(
            &mut out,
            om,
            name,
            "gauge",
            "Events kept in the outboxes, not yet acknowledged by every sink",
        );
        let _ = writeln!(out, "{name} {kept}");
        let name = "zot_events_outbox_dropped_total";
        header(
            &mut out,
            om,
            name,
            "counter",
            "Events dropped from a full outbox before delivery",
        );
        let _ = writeln!(out, "{name} {}", load(&m.events_outbox[1]));
    }
    m.background.render(&mut out, om);
    m.sources.render(&mut out, om);
    m.cve.render(&mut out, om);
    m.config.render(&mut out, om);
    for (name, help, value) in crate::process::gauges() {
        header(&mut out, om, name, "gauge", help);
        let _ = writeln!(out, "{name} {value}");
    }
    if let Ok(start) = m.started.duration_since(UNIX_EPOCH) {
        let name = "process_start_time_seconds";
        header(
            &mut out,
            om,
            name,
            "gauge",
            "Start time of the process since unix epoch in seconds.",
        );
        let _ = writeln!(out, "{name} {}", start.as_secs_f64());
    }
    if om {
        out.push_str("# EOF\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BuildInfo, Request};
    use std::time::Duration;

    #[test]
    fn events_outbox_metrics_appear_once_set() {
        let m = Metrics::new(BuildInfo::default(), 10);
        assert!(!m.render().contains("zot_events"));
        m.set_events_outbox(4, 2);
        let text = m.render();
        assert!(text.contains("\nzot_events_outbox_events 4\n"), "{text}");
        assert!(
            text.contains("# TYPE zot_events_outbox_dropped_total counter"),
            "{text}"
        );
        assert!(
            text.contains("\nzot_events_outbox_dropped_total 2\n"),
            "{text}"
        );
        let om = m.render_openmetrics();
        assert!(om.contains("zot_events_outbox_dropped_total 2"), "{om}");
    }

    #[test]
    fn renders_counters_histograms_and_labels() {
        let m = Metrics::new(
            BuildInfo {
                version: "1.1.1".into(),
                ..BuildInfo::default()
            },
            10,
        );
        for status in [200, 200, 404] {
            m.record(&Request {
                method: "GET",
                status,
                repo: Some("a/b"),
                manifest: true,
                elapsed: Duration::from_millis(100),
            });
        }
        let text = m.render();
        let om = m.render_openmetrics();
        assert!(om.ends_with("# EOF\n"));
        assert!(om.contains("# TYPE zot_http_requests counter\n"));
        assert!(om.contains("le=\"1.0\""));
        assert!(
            text.contains("zot_http_requests_total{code=\"200\",method=\"GET\"} 2\n"),
            "{text}"
        );
        assert!(text.contains("zot_http_requests_total{code=\"404\",method=\"GET\"} 1\n"));
        assert!(
            text.contains("zot_http_method_latency_seconds_bucket{method=\"GET\",le=\"0.05\"} 0\n")
        );
        assert!(
            text.contains("zot_http_method_latency_seconds_bucket{method=\"GET\",le=\"0.5\"} 3\n")
        );
        assert!(text.contains("zot_http_method_latency_seconds_count{method=\"GET\"} 3\n"));
        assert!(text.contains("zot_repo_downloads_total{repo=\"a/b\"} 2\n"));
        assert!(text.contains("zot_http_repo_latency_seconds_count{repo=\"a/b\"} 3\n"));
        assert!(text.contains("version=\"1.1.1\"} 0\n"));
        assert_eq!(escape("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
