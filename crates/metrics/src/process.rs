//! Process metrics read from `/proc/self` at scrape time (Linux; elsewhere
//! they are left out): resident memory, open file descriptors, threads.

/// `(name, help, value)` of each process gauge that could be read.
pub(crate) fn gauges() -> Vec<(&'static str, &'static str, f64)> {
    let mut out = Vec::new();
    if let Ok(status) = std::fs::read_to_string("/proc/self/status") {
        let field = |key: &str| {
            status.lines().find_map(|l| {
                let rest = l.strip_prefix(key)?.strip_prefix(':')?;
                rest.split_whitespace().next()?.parse::<f64>().ok()
            })
        };
        if let Some(kib) = field("VmRSS") {
            out.push((
                "process_resident_memory_bytes",
                "Resident memory size in bytes.",
                kib * 1024.0,
            ));
        }
        if let Some(kib) = field("VmSize") {
            out.push((
                "process_virtual_memory_bytes",
                "Virtual memory size in bytes.",
                kib * 1024.0,
            ));
        }
        if let Some(n) = field("Threads") {
            out.push(("process_threads", "Number of OS threads.", n));
        }
    }
    if let Ok(dir) = std::fs::read_dir("/proc/self/fd") {
        // The directory's own descriptor is among the entries.
        let n = dir.count().saturating_sub(1);
        out.push((
            "process_open_fds",
            "Number of open file descriptors.",
            n as f64,
        ));
    }
    if let Ok(limits) = std::fs::read_to_string("/proc/self/limits")
        && let Some(max) = limits.lines().find_map(|l| {
            let rest = l.strip_prefix("Max open files")?;
            rest.split_whitespace().next()?.parse::<f64>().ok()
        })
    {
        out.push((
            "process_max_fds",
            "Maximum number of open file descriptors.",
            max,
        ));
    }
    out
}
