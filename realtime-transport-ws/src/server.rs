//! An HTTP/1.1 server for an axum [`Router`] that a hostile client cannot exhaust (feature
//! `axum`): the accept loop every reference server uses, in place of `axum::serve`.
//!
//! What it adds to `axum::serve`:
//!
//! * **A header-read timeout** ([`ServeConfig::header_read_timeout`], default 10 s): a
//!   connection that does not send a whole request head in that time is closed. The same
//!   clock runs while a kept-alive connection waits for its next request, so it is also
//!   the idle timeout of HTTP connections. Upgraded WebSocket connections leave hyper and
//!   follow their own heartbeat and idle rules ([`crate::WsConfig`]).
//! * **A cap on open connections** ([`ServeConfig::max_connections`]; by default the
//!   process's open-file limit less a reserve for the database, logs and outgoing
//!   connections). Past it, a new connection is accepted and closed at once, so the
//!   listener's backlog never fills with clients that wait in silence and the process
//!   keeps file descriptors for the connections it serves.
//! * `TCP_NODELAY` on every accepted socket: small realtime frames leave at once instead
//!   of waiting for the peer's delayed ACK.
//! * The client's address as axum's [`ConnectInfo<SocketAddr>`](axum::extract::ConnectInfo)
//!   in every request, for per-address rate limits.
//! * Graceful shutdown: when `shutdown` resolves the listener closes, requests in flight
//!   finish (at most [`ServeConfig::shutdown_timeout`]), and `serve` returns.
//!
//! ```no_run
//! # async fn demo() -> std::io::Result<()> {
//! use realtime_transport_ws::server::{ServeConfig, raise_open_file_limit, serve};
//! let app = axum::Router::new().route("/", axum::routing::get(|| async { "hi" }));
//! raise_open_file_limit();
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! serve(listener, app, ServeConfig::default(), std::future::pending()).await
//! # }
//! ```

use axum::Router;
use axum::extract::ConnectInfo;
use axum::extract::Request;
use hyper_util::rt::{TokioIo, TokioTimer};
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tower::ServiceExt;

/// Settings of [`serve`].
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// A connection must send a whole request head within this time of connecting or of
    /// finishing its previous request; otherwise it is closed (default 10 s).
    pub header_read_timeout: Duration,
    /// Most connections open at once, WebSockets included; `None` (default): the
    /// process's open-file soft limit less [`FD_RESERVE`] (at least 64).
    pub max_connections: Option<usize>,
    /// How long requests in flight may take to finish after shutdown starts (default 10 s).
    pub shutdown_timeout: Duration,
}

impl Default for ServeConfig {
    fn default() -> Self {
        ServeConfig {
            header_read_timeout: Duration::from_secs(10),
            max_connections: None,
            shutdown_timeout: Duration::from_secs(10),
        }
    }
}

/// File descriptors [`ServeConfig::max_connections`] leaves for everything but client
/// connections when derived from the open-file limit: database files and pools, Redis,
/// logs, the listener itself.
pub const FD_RESERVE: u64 = 128;

/// Raise the process's open-file soft limit to its hard limit (Unix; a no-op elsewhere)
/// and return the soft limit in force afterwards (`None` when it cannot be read). Call it
/// once at start-up, before [`serve`] derives its connection cap from the limit: the usual
/// soft limit of 1,024 caps a server at about 900 connections.
pub fn raise_open_file_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        use rustix::process::{Resource, getrlimit, setrlimit};
        let mut limit = getrlimit(Resource::Nofile);
        if let (Some(cur), Some(max)) = (limit.current, limit.maximum)
            && cur < max
        {
            limit.current = Some(max);
            if let Err(e) = setrlimit(Resource::Nofile, limit) {
                tracing::debug!(error = %e, "could not raise the open-file limit");
            }
        }
        getrlimit(Resource::Nofile).current
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// Resolves on Ctrl-C or, on Unix, SIGTERM: the `shutdown` future a server passes to
/// [`serve`].
pub async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        () = ctrl_c => {}
        () = term => {}
    }
}

/// A tokio runtime with `worker_threads` threads: 1 is a current-thread runtime (what the
/// benchmarks run), 0 one worker per core.
///
/// # Errors
/// The runtime's own (no threads or timers to be had).
pub fn runtime(worker_threads: usize) -> std::io::Result<tokio::runtime::Runtime> {
    match worker_threads {
        1 => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        0 => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build(),
        n => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(n)
            .enable_all()
            .build(),
    }
}

/// A connection's place under [`ServeConfig::max_connections`], in every request's
/// extensions: the connection's slot is free again once its last holder drops it. The
/// WebSocket route keeps it for the life of an upgraded connection, which outlives the
/// HTTP connection it came from.
#[derive(Debug, Clone)]
pub struct ConnectionSlot(#[allow(dead_code)] Arc<tokio::sync::OwnedSemaphorePermit>);

fn connection_cap(config: &ServeConfig) -> usize {
    if let Some(n) = config.max_connections {
        return n.max(1);
    }
    #[cfg(unix)]
    let soft = rustix::process::getrlimit(rustix::process::Resource::Nofile).current;
    #[cfg(not(unix))]
    let soft: Option<u64> = None;
    let n = soft.map_or(10_000, |s| s.saturating_sub(FD_RESERVE).max(64));
    usize::try_from(n).unwrap_or(usize::MAX)
}

/// Serve `router` on `listener` until `shutdown` resolves (see the module docs).
///
/// # Errors
/// None in practice: failed accepts (such as running out of file descriptors) are logged
/// and retried after a short pause; the `Result` is for the listener's own failures.
pub async fn serve<F>(
    listener: TcpListener,
    router: Router,
    config: ServeConfig,
    shutdown: F,
) -> std::io::Result<()>
where
    F: Future<Output = ()> + Send,
{
    let cap = connection_cap(&config);
    let permits = Arc::new(tokio::sync::Semaphore::new(cap));
    // `true` once shutdown starts; every connection task holds a receiver, so
    // `closed()` tells when the last one has ended.
    let (stopping, _) = tokio::sync::watch::channel(false);
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(config.header_read_timeout);
    let mut shutdown = std::pin::pin!(shutdown);
    let mut refused: u64 = 0;
    tracing::debug!(max_connections = cap, "accepting connections");
    loop {
        let (tcp, addr) = tokio::select! {
            () = &mut shutdown => break,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // EMFILE and friends: wait for connections to end rather than spin.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            refused += 1;
            if refused.is_power_of_two() {
                tracing::warn!(
                    max_connections = cap,
                    refused,
                    "connection limit reached: closing new connections"
                );
            }
            drop(tcp);
            continue;
        };
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "could not set TCP_NODELAY");
        }
        let slot = ConnectionSlot(Arc::new(permit));
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut req: Request<hyper::body::Incoming>| {
            req.extensions_mut().insert(ConnectInfo(addr));
            req.extensions_mut().insert(slot.clone());
            router.clone().oneshot(req.map(axum::body::Body::new))
        });
        let conn = http
            .serve_connection(TokioIo::new(tcp), service)
            .with_upgrades();
        let mut stop = stopping.subscribe();
        tokio::spawn(async move {
            let mut conn = std::pin::pin!(conn);
            let ended = tokio::select! {
                r = conn.as_mut() => Some(r),
                _ = stop.wait_for(|s| *s) => None,
            };
            let ended = match ended {
                Some(r) => r,
                None => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            };
            if let Err(e) = ended {
                tracing::debug!(error = %e, client = %addr, "connection ended with an error");
            }
            drop(stop);
        });
    }
    drop(listener);
    stopping.send_replace(true);
    if tokio::time::timeout(config.shutdown_timeout, stopping.closed())
        .await
        .is_err()
    {
        tracing::info!("requests still running at the end of the shutdown timeout");
    }
    Ok(())
}
