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
fn init_logging(cfg: &Config) -> anyhow::Result<tracing_appender::non_blocking::WorkerGuard> {
    let filter = EnvFilter::try_from_env("ZOT_LOG").unwrap_or_else(|_| {
        let level = match cfg.log.level.as_str() {
            "fatal" | "panic" => "error",
            l => l,
        };
        EnvFilter::new(format!("{level},redb=warn,hyper=warn,h2=warn"))
    });
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
    let (writer, guard) = tracing_appender::non_blocking::NonBlockingBuilder::default()
        .lossy(false)
        .buffered_lines_limit(128 * 1024)
        .finish(sink);
    tracing_subscriber::fmt()
        .json()
        .flatten_event(true)
        .with_current_span(false)
        .with_env_filter(filter)
        .with_writer(writer)
        .init();
    Ok(guard)
}

pub fn run(cfg: Config) -> anyhow::Result<()> {
    let _flush_logs_on_exit = init_logging(&cfg)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the async runtime")?;
    runtime.block_on(serve(cfg))
}

async fn serve(cfg: Config) -> anyhow::Result<()> {
    let root = cfg.storage.root_directory.clone();
    // The default store and one per `storage.subPaths` root.
    let (stores, routing) = crate::lifecycle::open_stores(&cfg).await?;
    let security = zot_auth::Security::from_config(&cfg.http, cfg.log.audit.as_deref())
        .context("setting up authentication")?;
    // API keys live in the default store's metadata store (apikey_ext.rs).
    let (security, api_keys) = crate::apikey_ext::attach(security, &routing);
    for note in crate::search_ext::notes(&cfg) {
        tracing::warn!("{note}");
    }
    let discover = crate::lifecycle::discover(&cfg);
    let sync_stores = routing.clone();
    let sync = crate::sync_ext::prepare(&cfg, &sync_stores)?;
    #[cfg(feature = "search")]
    let mut state = match crate::search_ext::extension(&cfg, &routing) {
        Some(search) => zot_api::AppState::with_search(routing, discover, security, search),
        None => zot_api::AppState::with_security(routing, discover, security),
    };
    #[cfg(not(feature = "search"))]
    let mut state = zot_api::AppState::with_security(routing, discover, security);
    let metrics_endpoint = crate::metrics_ext::endpoint(&cfg);
    #[cfg(feature = "events")]
    let outbox_gauges = metrics_endpoint.as_ref().map(|m| {
        let m = m.metrics.clone();
        Box::new(move |kept, dropped| m.set_events_outbox(kept, dropped))
            as crate::events_ext::OutboxGauges
    });
    let recorder = crate::metrics_ext::Recorder::new(metrics_endpoint.as_ref());
    if let Some(metrics) = metrics_endpoint {
        tracing::info!(path = %metrics.path, "metrics served");
        match std::sync::Arc::get_mut(&mut state) {
            Some(s) => s.metrics = Some(metrics),
            None => anyhow::bail!("the API state is shared before start-up ends"),
        }
    }
    #[cfg(feature = "sync")]
    if let Some(hook) = sync.hook.clone() {
        match std::sync::Arc::get_mut(&mut state) {
            Some(s) => s.sync = Some(hook),
            None => anyhow::bail!("the API state is shared before start-up ends"),
        }
    }
    if let Some(origin) = &cfg.http.allow_origin {
        let auth = cfg.http.auth.as_ref();
        let logins = auth.is_some_and(|a| a.htpasswd.is_some() || a.ldap.is_some() || a.apikey);
        match (
            zot_api::cors::Cors::new(origin, logins),
            std::sync::Arc::get_mut(&mut state),
        ) {
            (Some(cors), Some(s)) => s.cors = Some(cors),
            (None, _) => anyhow::bail!("http.allowOrigin {origin:?} cannot be a header value"),
            (_, None) => anyhow::bail!("the API state is shared before start-up ends"),
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
        match std::sync::Arc::get_mut(&mut state) {
            Some(s) => s.cluster = Some(cluster),
            None => anyhow::bail!("the API state is shared before start-up ends"),
        }
    }
    let mutations = state.mutations.clone();
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
    let permits = crate::lifecycle::start(&cfg, &stores, &recorder);
    // Gauges no request feeds: uploads open, storage sizes (metrics_sampler.rs).
    #[cfg(feature = "metrics")]
    if let Some(metrics) = recorder.metrics() {
        crate::metrics_sampler::start(metrics.clone(), &stores);
        // Cache hits, lock waits, sync runs: read when scraped.
        crate::metrics_sources::add(metrics, &stores, &sync);
    }
    // Periodic sync of upstream registries, on the same permits.
    crate::sync_ext::start(&sync, &sync_stores, &permits, &recorder);
    // Delivery of the events outboxes (see events_ext.rs).
    #[cfg(feature = "events")]
    if let Some(delivery) = crate::events_ext::start(&cfg, &stores).await? {
        crate::events_ext::report(delivery, outbox_gauges);
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
