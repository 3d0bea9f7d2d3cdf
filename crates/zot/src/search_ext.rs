//! The search extension in the binary: whether it is on, what
//! `/v2/_oci/ext/discover` lists for it, what the binary says about its
//! build (mgmt's `commit`, `releaseTag`, `binaryType`), notes on settings
//! read but not acted on yet, and the handle the API serves.
//!
//! Search is on when the binary has the `search` feature and
//! `extensions.search` is enabled (its mere presence enables it); a
//! configuration enabling it in a build without the feature is refused by
//! `zot_config` (`not available in this build`), so `enabled` only has to
//! agree with `lifecycle::AVAILABLE`.

use zot_config::Config;

/// Whether the search extension (with userprefs and mgmt) is on.
pub fn enabled(cfg: &Config) -> bool {
    crate::lifecycle::AVAILABLE.contains(&"search")
        && cfg.extension("search").is_some_and(|e| e.enabled)
}

/// The `_zot` endpoints discover lists, in zot's order: search, userprefs
/// (zot also wants its UI on; here it is on with search) and mgmt.
pub fn endpoints(cfg: &Config) -> &'static [&'static str] {
    if enabled(cfg) {
        &[
            "/v2/_zot/ext/search",
            "/v2/_zot/ext/userprefs",
            "/v2/_zot/ext/mgmt",
        ]
    } else {
        &[]
    }
}

/// zot's build tags, in the order its `binaryType` joins them.
#[cfg(feature = "search")]
const ZOT_TAGS: &[&str] = &[
    "sync",
    "search",
    "scrub",
    "metrics",
    "lint",
    "ui",
    "mgmt",
    "profile",
    "userprefs",
    "imagetrust",
    "events",
];

/// The body of `GET /v2/_zot/ext/mgmt` for `cfg`.
#[cfg(feature = "search")]
pub fn mgmt_body(cfg: &Config) -> String {
    zot_api::mgmt::render(&cfg.dist_spec_version, &cfg.http, &build_info())
}

/// What this binary reports about its build (in mgmt).
#[cfg(feature = "search")]
pub fn build_info() -> zot_api::mgmt::BuildInfo {
    let available = crate::lifecycle::AVAILABLE;
    let built: Vec<&str> = ZOT_TAGS
        .iter()
        .copied()
        .filter(|tag| match *tag {
            // Accepted in the configuration, but no UI is built in.
            "ui" => false,
            "userprefs" => available.contains(&"search"),
            tag => available.contains(&tag),
        })
        .collect();
    zot_api::mgmt::BuildInfo {
        commit: option_env!("ZOT_COMMIT").unwrap_or_default().to_owned(),
        release_tag: concat!("v", env!("CARGO_PKG_VERSION")).to_owned(),
        binary_type: built.iter().map(|t| format!("-{t}")).collect(),
    }
}

/// Settings that are valid but not acted on by this build, one line each.
pub fn notes(cfg: &Config) -> Vec<String> {
    let mut notes = Vec::new();
    if let Some(search) = cfg.extension("search").and_then(|e| e.search())
        && let Some(cve) = &search.cve
    {
        if !cfg!(feature = "cve") {
            notes.push(
                "extensions.search.cve: CVE scanning is not in this build; its settings are checked and not used"
                    .to_owned(),
            );
        }
        if cve.trivy != zot_config::TrivyConfig::default() {
            notes.push(
                "extensions.search.cve.trivy: accepted for zot's configurations and not used (this registry scans with its own OSV-based scanner)"
                    .to_owned(),
            );
        }
    }
    if cfg.extension("apikey").is_some_and(|e| e.enabled) {
        notes.push(
            "extensions.apikey: ignored, as zot does; API keys are turned on by http.auth.apikey"
                .to_owned(),
        );
    }
    if cfg.extension("ui").is_some_and(|e| e.enabled) {
        notes.push(
            "extensions.ui: this build serves no web UI; the API it uses (search, userprefs, mgmt) is on"
                .to_owned(),
        );
    }
    notes
}

/// The search extension the API serves, when it is on: GraphQL and
/// userprefs over the registry's stores, and the mgmt body.
/// With `cve` (the vulnerability scanner), its results answer the CVE
/// queries and `Vulnerabilities` summaries.
#[cfg(feature = "search")]
pub fn extension(
    cfg: &Config,
    stores: &zot_storage::Stores,
    cve: Option<std::sync::Arc<dyn zot_search::cve::CveSource>>,
) -> Option<zot_api::SearchExtension> {
    if !enabled(cfg) {
        return None;
    }
    let source = std::sync::Arc::new(zot_search::stores::StoresSource::new(stores.clone()));
    let search = std::sync::Arc::new(match cve {
        Some(cve) => zot_search::Search::with_cve(source, cve),
        None => zot_search::Search::new(source),
    });
    warm(&search);
    Some(zot_api::SearchExtension {
        search,
        mgmt: arc_swap::ArcSwap::from_pointee(mgmt_body(cfg)),
    })
}

/// Builds the search summaries of every repository on a thread of its
/// own, so that the server listens meanwhile and the first queries find
/// them built (a query arriving first waits for the same build, it does
/// not start another).
#[cfg(feature = "search")]
fn warm(search: &std::sync::Arc<zot_search::Search>) {
    let search = std::sync::Arc::clone(search);
    let spawned = std::thread::Builder::new()
        .name("search-warm".into())
        .spawn(move || {
            let started = std::time::Instant::now();
            match search.warm() {
                Ok(n) => tracing::info!(
                    repositories = n,
                    ms = started.elapsed().as_millis(),
                    "search summaries built"
                ),
                Err(e) => tracing::warn!(error = %e, "search: building the summaries failed"),
            }
        });
    if let Err(e) = spawned {
        tracing::warn!(error = %e, "search: cannot start building the summaries; the first query will");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use zot_config::Format;

    fn config(extensions: &str) -> Config {
        let text =
            format!(r#"{{"storage": {{"rootDirectory": "/d"}}, "extensions": {extensions}}}"#);
        match Config::from_str_with(&text, Format::Json, crate::lifecycle::AVAILABLE) {
            Ok(c) => c,
            Err(p) => panic!("{extensions}: {p:?}"),
        }
    }

    fn discover_json(cfg: &Config) -> serde_json::Value {
        serde_json::json!({ "extensions": crate::lifecycle::discover(cfg) })
    }

    #[cfg(feature = "search")]
    #[test]
    fn discover_lists_zot_endpoints_when_search_is_on() {
        for on in [
            r#"{"search": {}}"#,
            r#"{"search": {"enable": true, "cve": {}}}"#,
        ] {
            assert_eq!(
                discover_json(&config(on)),
                serde_json::json!({"extensions": [{
                    "name": "_zot",
                    "url": "https://github.com/project-zot/zot/blob/main/pkg/extensions/_zot.md",
                    "description": "zot registry extensions",
                    "endpoints": ["/v2/_zot/ext/search", "/v2/_zot/ext/userprefs", "/v2/_zot/ext/mgmt"],
                }]}),
                "{on}"
            );
        }
        // _zot first, then this registry's own entries.
        let both = discover_json(&config(r#"{"scrub": {}, "search": {}}"#));
        let names: Vec<&str> = both["extensions"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e["name"].as_str())
            .collect();
        assert_eq!(names, ["_zot", "_zot_scrub"]);
    }

    #[test]
    fn discover_omits_zot_when_search_is_off() {
        for off in ["{}", r#"{"search": {"enable": false}}"#] {
            assert_eq!(
                discover_json(&config(off)),
                serde_json::json!({"extensions": []}),
                "{off}"
            );
        }
    }

    #[cfg(feature = "search")]
    #[test]
    fn build_info_names_the_built_extensions_in_zots_order() {
        let info = build_info();
        assert_eq!(info.release_tag, concat!("v", env!("CARGO_PKG_VERSION")));
        let mut expected = String::new();
        if cfg!(feature = "sync") {
            expected.push_str("-sync");
        }
        expected.push_str("-search");
        if cfg!(feature = "scrub") {
            expected.push_str("-scrub");
        }
        if cfg!(feature = "metrics") {
            expected.push_str("-metrics");
        }
        if cfg!(feature = "lint") {
            expected.push_str("-lint");
        }
        expected.push_str("-mgmt-userprefs");
        if cfg!(feature = "events") {
            expected.push_str("-events");
        }
        assert_eq!(info.binary_type, expected);
    }

    #[cfg(feature = "search")]
    #[test]
    fn notes_name_settings_not_acted_on() {
        assert!(notes(&config(r#"{"search": {}}"#)).is_empty());
        let notes = notes(&config(
            r#"{"search": {"cve": {}}, "ui": {"enable": true}}"#,
        ));
        let cve_note = usize::from(!cfg!(feature = "cve"));
        assert_eq!(notes.len(), 1 + cve_note, "{notes:?}");
        if cve_note == 1 {
            assert!(notes[0].starts_with("extensions.search.cve: "));
        }
        assert!(notes[cve_note].starts_with("extensions.ui: "));
    }

    #[cfg(feature = "cve")]
    #[test]
    fn notes_name_the_unused_trivy_keys() {
        let notes = notes(&config(
            r#"{"search": {"cve": {"osv": {"repository": "localhost:5000/osv:all"}, "trivy": {"dbRepository": "x/y"}}}}"#,
        ));
        assert_eq!(notes.len(), 1, "{notes:?}");
        assert!(notes[0].starts_with("extensions.search.cve.trivy: "));
    }
}
