//! Wiring of the metrics extension (Cargo feature `metrics`): with the
//! feature off nothing of it is compiled, and an enabled
//! `extensions.metrics` is refused by `zot verify` as not available.
//! Recording happens in the API layer; this builds the registry from
//! `extensions.metrics` and the build's description for `zot_info`.

use zot_config::Config;

/// The metrics endpoint, when the extension is built in and enabled.
#[cfg(feature = "metrics")]
pub fn endpoint(cfg: &Config) -> Option<zot_api::MetricsEndpoint> {
    let settings = cfg.extension("metrics").and_then(|e| e.metrics())?;
    let built: String = crate::lifecycle::AVAILABLE
        .iter()
        .filter(|tag| **tag != "ui")
        .map(|tag| format!("-{tag}"))
        .collect();
    let info = zot_metrics::BuildInfo {
        version: cfg.dist_spec_version.clone(),
        commit: option_env!("ZOT_COMMIT").unwrap_or_default().to_owned(),
        binary_type: built,
        go_version: "rust".to_owned(),
    };
    Some(zot_api::MetricsEndpoint {
        path: settings.path,
        metrics: std::sync::Arc::new(zot_metrics::Metrics::new(
            info,
            settings.max_repository_labels,
        )),
    })
}

/// Without the feature: never on.
#[cfg(not(feature = "metrics"))]
pub fn endpoint(_cfg: &Config) -> Option<zot_api::MetricsEndpoint> {
    None
}
