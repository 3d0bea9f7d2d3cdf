//! `zot serve`: logging set-up, storage opening and synchronisation, the
//! HTTP server, the background tasks (see `lifecycle.rs`), metadata
//! flushes, and graceful shutdown (stop accepting, let in-flight requests
//! finish for a bounded time, then wait, for as long again at most, for
//! mutating requests still running after their clients went away; exit 0).

use anyhow::Context;
use std::sync::Arc;
use std::time::Duration;
use tracing_subscriber::EnvFilter;
use zot_config::Config;

/// How long in-flight requests may run after a shutdown signal.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
/// How often the metadata store's commits are made durable.
const META_FLUSH: Duration = Duration::from_secs(5);
/// Default time to receive a request head (and to finish a TLS handshake).
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(30);
/// Largest request head (request line and headers) accepted: 431 beyond.
/// It is also hyper's read buffer: 64 KiB cost uploads about 15% (more,
/// smaller reads and body frames), so the limit sits at 256 KiB.
const MAX_HEAD_BYTES: usize = 256 * 1024;
/// Concurrent streams per HTTP/2 connection (hyper's default is 200).
const H2_MAX_STREAMS: u32 = 100;
/// HTTP/2 keep-alive: a ping after this long without a frame from the
/// client; no answer within `H2_PING_TIMEOUT` closes the connection.
const H2_PING_EVERY: Duration = Duration::from_secs(20);
const H2_PING_TIMEOUT: Duration = Duration::from_secs(20);
/// At most one log line per this long about failing `accept` calls.
const ACCEPT_ERROR_LOG_EVERY: Duration = Duration::from_secs(10);

/// Logs a failing `accept` (out of file descriptors, say), at most once per
/// [`ACCEPT_ERROR_LOG_EVERY`]; axum-server backs off and retries. Errors of
/// one connection (refused at the cap, failed TLS handshake) are not logged
/// here.
fn log_accept_error(peer: Option<&std::net::SocketAddr>, error: &std::io::Error) {
    static LAST: std::sync::Mutex<Option<std::time::Instant>> = std::sync::Mutex::new(None);
    if peer.is_some() {
        return;
    }
    let mut last = LAST.lock().unwrap_or_else(|e| e.into_inner());
    if last.is_none_or(|at| at.elapsed() >= ACCEPT_ERROR_LOG_EVERY) {
        *last = Some(std::time::Instant::now());
        tracing::error!(error = %error, "accepting connections fails");
    }
}

/// Sets up JSON-lines logging. Lines are written by a background thread
/// (requests never wait on the terminal or disk for a log write, unless its
/// queue of 128k lines is full); the returned guard flushes it on drop.
fn init_logging(
    cfg: &Config,
) -> anyhow::Result<(
    crate::log_queue::LogGuard,
    Option<crate::reload::LogLevelSetter>,
)> {
    let for_level = |level: &str| {
        let level = match level {
            "fatal" | "panic" => "error",
            l => l,
        };
        EnvFilter::new(format!("{level},redb=warn,hyper=warn,h2=warn"))
    };
    let from_env = EnvFilter::try_from_env("ZOT_LOG").ok();
    let fixed = from_env.is_some();
    let filter = from_env.unwrap_or_else(|| for_level(cfg.log.level.as_str()));
    let sink: Box<dyn std::io::Write + Send> = match &cfg.log.output {
        Some(path) if !path.as_os_str().is_empty() => Box::new(
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("opening log.output {}", path.display()))?,
        ),
        _ => Box::new(std::io::stdout()),
    };
    // The writer thread drains every queued line, then flushes: buffered,
    // a burst of lines costs one write, not one per line.
    let sink = std::io::BufWriter::with_capacity(64 * 1024, sink);
    let (writer, guard) =
        crate::log_queue::start(Box::new(sink)).context("starting the log writer")?;
    // The filter can be swapped by a reload of `log.level`.
    let subscriber = tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_env_filter(filter)
        .with_writer(writer)
        .with_filter_reloading();
    let handle = subscriber.reload_handle();
    subscriber.init();
    let setter: crate::reload::LogLevelSetter =
        Box::new(move |level| handle.reload(for_level(level)).map_err(|e| e.to_string()));
    Ok((guard, (!fixed).then_some(setter)))
}

/// How long an idle thread of tokio's blocking pool waits for work before
/// it exits (tokio's default is 10 s). A burst of search queries or blob
/// reads wakes dozens of them (60 to 75 after the search workloads at 16
/// clients); while they live, each holds its stack and its allocator cache
/// (glibc's tcache: freed memory `malloc_trim` cannot give back, and that
/// pins heap pages), so the process stays larger for 10 s after the burst.
/// Starting a thread again costs tens of microseconds, once per burst.
const BLOCKING_KEEP_ALIVE: std::time::Duration = std::time::Duration::from_secs(1);

/// Runs the registry on `cfg`, read from `source` (the file and the hash
/// of its content) when it came from a file, which is then watched and
/// reloaded (see `reload.rs`).
pub fn run(cfg: Config, source: Option<(std::path::PathBuf, String)>) -> anyhow::Result<()> {
    let (_flush_logs_on_exit, log_level) = init_logging(&cfg)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .thread_keep_alive(BLOCKING_KEEP_ALIVE)
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(serve(cfg, source, log_level))
}

async fn serve(
    cfg: Config,
    source: Option<(std::path::PathBuf, String)>,
    log_level: Option<crate::reload::LogLevelSetter>,
) -> anyhow::Result<()> {
    let root = cfg.storage.root_directory.clone();
    // The default store and one per `storage.subPaths` root.
    let (stores, routing) = crate::lifecycle::open_stores(&cfg).await?;
    let security = zot_auth::Security::from_config(&cfg.http, cfg.log.audit.as_deref())
        .context("setting up authentication")?;
    // API keys live in the default store's metadata store (apikey_ext.rs).
    let (mut security, api_keys) = crate::apikey_ext::attach(security, &routing);
    crate::sessions_ext::enable(&cfg, &mut security, routing.default_store())
        .await
        .context("setting up sessions")?;
    for note in crate::search_ext::notes(&cfg) {
        tracing::warn!("{note}");
    }
    let discover = crate::lifecycle::discover(&cfg);
    let sync_stores = routing.clone();
    let sync = crate::sync_ext::prepare(&cfg, &sync_stores)?;
    #[cfg(feature = "cve")]
    let cve = crate::cve_ext::open(&cfg, &routing)?;
    #[cfg(feature = "cve")]
    let cve_source = cve
        .clone()
        .map(|c| c as std::sync::Arc<dyn zot_search::cve::CveSource>);
    #[cfg(all(feature = "search", not(feature = "cve")))]
    let cve_source = None;
    #[cfg(feature = "cve")]
    let cve_stores = routing.clone();
    let sync_handle = crate::sync_ext::hook(&sync);
    let sync_upstreams = crate::sync_ext::live_upstreams(&sync);
    #[cfg(feature = "search")]
    let state = match crate::search_ext::extension(&cfg, &routing, cve_source) {
        Some(search) => zot_api::AppState::with_search(routing, discover, security, search),
        None => zot_api::AppState::with_security(routing, discover, security),
    };
    #[cfg(not(feature = "search"))]
    let state = zot_api::AppState::with_security(routing, discover, security);
    // Metrics on or off, now and at each reload (metrics_ext.rs).
    let recorder = crate::metrics_ext::Recorder::default();
    let mut metrics =
        crate::metrics_ext::MetricsSwitch::new(recorder.clone(), &stores, &sync_upstreams);
    metrics.apply(&cfg, &state);
    #[cfg(feature = "events")]
    let outbox_gauges = {
        let rec = recorder.clone();
        Some(
            Box::new(move |kept, dropped| rec.set_events_outbox(kept, dropped))
                as crate::events_ext::OutboxGauges,
        )
    };
    // What only start-up sets, before the state is shared.
    let state = {
        let mut state = state;
        let Some(s) = std::sync::Arc::get_mut(&mut state) else {
            anyhow::bail!("the API state is shared before start-up ends");
        };
        #[cfg(feature = "sync")]
        {
            s.sync = Some(sync_handle.api());
        }
        if let Some(origin) = &cfg.http.allow_origin {
            let auth = cfg.http.auth.as_ref();
            let logins = auth.is_some_and(|a| a.htpasswd.is_some() || a.ldap.is_some() || a.apikey);
            match zot_api::cors::Cors::new(origin, logins) {
                Some(cors) => s.cors = Some(cors),
                None => anyhow::bail!("http.allowOrigin {origin:?} cannot be a header value"),
            }
        }
        if let Some(cluster) = &cfg.cluster {
            let cluster =
                zot_api::cluster::Cluster::new(cluster, cfg.http.port, cfg.http.tls.is_some())
                    .context("cluster mode")?;
            tracing::info!(
                member = %cluster.local().name,
                members = cluster.peers().count() + 1,
                "cluster mode: repositories of other members are proxied to them"
            );
            s.cluster = Some(cluster);
        }
        state
    };
    let mutations = state.mutations.clone();
    let live_state = state.clone();
    let app =
        zot_api::router(state).layer(axum::middleware::from_fn(crate::listener::peer_certificate));

    let addr = format!("{}:{}", cfg.http.address, cfg.http.port);
    let listener = std::net::TcpListener::bind(&addr).with_context(|| format!("binding {addr}"))?;
    listener.set_nonblocking(true)?;
    let local = listener.local_addr()?;
    let extensions: Vec<&str> = cfg
        .extensions
        .iter()
        .filter(|e| e.enabled)
        .map(|e| e.name.as_str())
        .collect();
    let stop = shutdown_signal()?;
    let reloads = crate::reload::listen(source.is_some())?;
    tracing::info!(
        address = %local,
        root = %root.display(),
        extensions = ?extensions,
        dedupe = cfg.storage.dedupe,
        sub_paths = ?cfg.storage.sub_paths.keys().collect::<Vec<_>>(),
        commit = cfg.storage.commit,
        compat = ?cfg.http.compat.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
        tls = cfg.http.tls.is_some(),
        mtls = cfg.http.tls.as_ref().is_some_and(|t| t.cacert.is_some()),
        auth = cfg.http.auth.is_some(),
        version = env!("CARGO_PKG_VERSION"),
        "listening"
    );
    if cfg
        .log
        .output
        .as_ref()
        .is_some_and(|p| !p.as_os_str().is_empty())
    {
        // The log goes to a file: say where the registry is on the terminal too.
        eprintln!(
            "zot {}: listening on {local}, storage at {}, extensions: {}",
            env!("CARGO_PKG_VERSION"),
            root.display(),
            if extensions.is_empty() {
                "none".to_owned()
            } else {
                extensions.join(", ")
            }
        );
    }

    // Upload expiry, GC, scrub and pull-time flushes (see lifecycle.rs).
    let lifecycle = crate::lifecycle::start(&cfg, &stores, &recorder);
    // Vulnerability scanning: the scan queue and the database refresh,
    // on the same permits (see cve_ext.rs).
    #[cfg(feature = "cve")]
    let cve = cve.as_ref().and_then(|scanner| {
        crate::cve_ext::start(&cfg, scanner, &cve_stores, &lifecycle.permits, &recorder)
    });
    // Periodic sync of upstream registries, on the same permits.
    let sync = crate::sync_ext::start(
        sync_handle,
        sync,
        (&sync_stores, &sync_upstreams),
        &lifecycle.permits,
        &recorder,
    );
    // Delivery of the events outboxes (see events_ext.rs).
    #[cfg(feature = "events")]
    let events = match crate::events_ext::start(&cfg, &stores).await? {
        Some(delivery) => {
            let delivery = Arc::new(delivery);
            crate::events_ext::report(delivery.clone(), outbox_gauges);
            Some(delivery)
        }
        None => None,
    };
    // Reloads on a change of the file and on SIGHUP (reload.rs).
    if let (Some(triggers), Some((path, hash))) = (reloads, source) {
        tracing::info!(file = %path.display(), hash, "configuration loaded; reloaded on change and on SIGHUP");
        let reloader = crate::reload::Reloader {
            path,
            running: cfg.clone(),
            hash,
            state: live_state,
            log_level,
            metrics,
            lifecycle,
            sync,
            stores: sync_stores,
            #[cfg(feature = "events")]
            events,
            #[cfg(feature = "cve")]
            cve,
            succeeded: 0,
            failed: 0,
        };
        crate::reload::start(triggers, reloader);
    }

    let registries: Vec<Arc<zot_storage::Registry>> =
        stores.iter().map(|s| s.registry.clone()).collect();
    let flushers = registries.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(META_FLUSH);
        loop {
            tick.tick().await;
            for reg in &flushers {
                let r = reg.clone();
                match tokio::task::spawn_blocking(move || r.flush_metadata()).await {
                    Ok(Ok(())) => {}
                    Ok(Err(e)) => tracing::warn!(error = %e, "flushing the metadata store"),
                    Err(e) => tracing::warn!(error = %e, "flushing the metadata store"),
                }
                // After an I/O error (a full disk), reopen the store and
                // resynchronise it; /readyz answers 503 until then.
                if let Err(e) = reg.recover_metadata().await {
                    tracing::error!(error = %e, "metadata store unusable; retrying in a few seconds");
                }
            }
        }
    });

    let handle = axum_server::Handle::new();
    let on_signal = handle.clone();
    tokio::spawn(async move {
        stop.await;
        on_signal.graceful_shutdown(Some(SHUTDOWN_GRACE));
    });
    let service = app.into_make_service_with_connect_info::<std::net::SocketAddr>();
    // The connection cap, idle and stall limits (see connections.rs).
    let nofile = crate::connections::raise_nofile_limit();
    let connections = crate::connections::Connections::new(
        crate::connections::connection_cap(nofile),
        cfg.http
            .read_timeout
            .unwrap_or(crate::connections::IDLE_TIMEOUT),
        cfg.http
            .write_timeout
            .unwrap_or(crate::connections::STALL_TIMEOUT),
        cfg.http
            .read_timeout
            .unwrap_or(crate::connections::STALL_TIMEOUT),
    );
    connections.start_sweeping();
    // Also sets TCP_NODELAY: a small response after a large one on the same
    // connection would otherwise wait for the peer's delayed ACK.
    let slow = crate::connections::Acceptor {
        connections,
        read: cfg.http.read_timeout,
        write: cfg.http.write_timeout,
    };
    let mut server = axum_server::from_tcp(listener)?.accept_error_handler(log_accept_error);
    let http = server.http_builder();
    // Slowloris: a request head must arrive within readTimeout (30 s by default).
    http.http1()
        .header_read_timeout(cfg.http.read_timeout.unwrap_or(HEADER_READ_TIMEOUT))
        .max_buf_size(MAX_HEAD_BYTES);
    http.http2()
        .max_header_list_size(MAX_HEAD_BYTES as u32)
        .max_concurrent_streams(H2_MAX_STREAMS)
        .keep_alive_interval(H2_PING_EVERY)
        .keep_alive_timeout(H2_PING_TIMEOUT);
    match &cfg.http.tls {
        Some(tls) => {
            let config = crate::listener::rustls_config(tls)?;
            crate::listener::watch_tls(tls.clone(), config.clone());
            let acceptor = axum_server::tls_rustls::RustlsAcceptor::new(config)
                .handshake_timeout(HEADER_READ_TIMEOUT)
                .acceptor(slow);
            server
                .acceptor(acceptor)
                .handle(handle)
                .serve(service)
                .await
        }
        None => server.acceptor(slow).handle(handle).serve(service).await,
    }
    .context("serving HTTP")?;
    // Writes whose clients went away (or were cut at the grace period's
    // end) still run: let them finish before the stores close.
    if !mutations.wait_idle(SHUTDOWN_GRACE).await {
        tracing::warn!(
            running = mutations.running(),
            "shutting down with mutating requests still running"
        );
    }
    if let Some(keys) = &api_keys {
        crate::apikey_ext::flush(keys).await;
    }
    for registry in &registries {
        if let Err(e) = registry.flush_pulls().await {
            tracing::warn!(error = %e, "recording pull times at shutdown");
        }
        if let Err(e) = registry.flush_metadata() {
            tracing::warn!(error = %e, "flushing the metadata store at shutdown");
        }
    }
    tracing::info!("stopped");
    Ok(())
}

/// Listens for SIGINT and SIGTERM from now on (registered before the
/// registry says it listens, so a signal sent right after that is never
/// lost to the default action); the returned future resolves on either.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("listening for SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("listening for SIGINT")?;
    Ok(async move {
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
        tracing::info!(
            grace_secs = SHUTDOWN_GRACE.as_secs(),
            "shutting down: no new connections, finishing requests"
        );
    })
}
