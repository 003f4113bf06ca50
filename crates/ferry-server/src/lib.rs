//! ferry-server: `ferry serve`, the pipeline as a service.
//!
//! One process holds the scheduler — executions start on a push (webhooks, polling) or a
//! request and advance with no CLI attached; a restart resumes them through the engine's
//! crash recovery — and serves the JSON API under `/api/v1` ([`api`]), with Server-Sent
//! Events ([`events`]), tokens and roles ([`auth`]), an audit log and notifications
//! ([`notify`]). Every operation on a pipeline is a ferry-workflows call, the same as the
//! CLI's; this crate adds who may make it, and how it is reached.
//!
//! - [`config`]: `server.yaml`, read with ferry's YAML diagnostics.
//! - [`service`]: starting, driving, resuming executions; pushes and polling.
//! - [`repo`]: the pipelines' repositories (a bare mirror, a worktree per revision).
//! - [`hooks`]: checking and reading GitHub, GitLab and generic webhooks.
//! - [`store`]: the server's own state (token hashes, audit, deliveries).
//! - [`metrics`]: `/metrics` for Prometheus. [`tls`]: HTTPS.
//! - [`client`]: the API as the CLI's `--server` calls it.
//!
//! Architecture invariant: the server holds no pipeline logic of its own; every mutating
//! request is authenticated, authorized for its role, and in the audit log before it takes
//! effect.

pub mod api;
pub mod auth;
pub mod client;
pub mod config;
pub mod events;
pub mod hooks;
pub mod metrics;
pub mod notify;
pub mod repo;
pub mod service;
pub mod store;
pub mod tls;
pub mod ui;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use tower_http::timeout::TimeoutLayer;

use crate::config::{Channel, Config};
use crate::metrics::Metrics;
use crate::notify::Notifier;
use crate::service::Service;
use crate::store::ServerStore;

/// Largest request body: a push payload with thousands of commits fits.
pub const BODY_LIMIT: usize = 5 * 1024 * 1024;
/// Longest a request may take before its answer starts (a webhook fetches the repository).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(120);

#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error(transparent)]
    Store(#[from] store::StoreError),
    #[error(transparent)]
    Flow(#[from] ferry_workflows::Error),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("TLS: {0}")]
    Tls(String),
    /// Two servers on one state directory would both drive its executions.
    #[error(
        "another ferry serve ({holder}) holds {}; stop it, or give this one its own `state:`",
        path.display()
    )]
    Locked {
        path: std::path::PathBuf,
        holder: String,
    },
    #[error("the server stopped: {0}")]
    Io(#[from] std::io::Error),
}

/// The service over a configuration: its stores, metrics and notifier, nothing started.
pub async fn service(config: Config) -> Result<Arc<Service>, ServeError> {
    let store = Arc::new(ServerStore::open(&config.state)?);
    let engine = ferry_workflows::project::open_store(&config.state, config.state_url.as_deref())?;
    let metrics = Arc::new(Metrics::new());
    let aws = if config
        .notifications
        .iter()
        .any(|c| matches!(c, Channel::Sns(_)))
    {
        match ferry_aws::session::Aws::from_env("ferry-serve").await {
            Ok(aws) => Some(aws),
            Err(e) => {
                tracing::warn!(error = %e, "no AWS identity: SNS notifications will fail");
                None
            }
        }
    } else {
        None
    };
    let notifier = Arc::new(Notifier::new(
        config.notifications.clone(),
        config.url.clone(),
        aws,
        store.clone(),
        metrics.clone(),
    ));
    Ok(Arc::new(Service::new(
        config, store, engine, notifier, metrics,
    )))
}

/// The HTTP application: the API's router with the limits every request gets.
pub fn app(service: Arc<Service>) -> axum::Router {
    api::router(service.clone())
        .merge(ui::router(service))
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(TimeoutLayer::with_status_code(
            axum::http::StatusCode::REQUEST_TIMEOUT,
            REQUEST_TIMEOUT,
        ))
}

/// Runs the server until SIGTERM or SIGINT: it stops taking requests, ends live streams, and
/// leaves running actions for the engine to reconcile at the next start.
pub async fn serve(config: Config, listen: Option<SocketAddr>) -> Result<(), ServeError> {
    let addr = listen.unwrap_or(config.listen);
    let tls = match &config.tls {
        Some(t) => Some(tls::acceptor(&t.cert, &t.key).map_err(ServeError::Tls)?),
        None => None,
    };
    let _lock = lock_state(&config.state)?;
    let service = service(config).await?;
    let tcp = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(|source| ServeError::Listen { addr, source })?;
    let local = tcp.local_addr()?;
    service.resume_all().await;
    tokio::spawn(service.clone().supervise());
    tokio::spawn(service.clone().relay_peers());
    if service.engine.shared() {
        tokio::spawn(service.clone().work());
    }
    let app = app(service.clone());
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!(
        "listening on {scheme}://{local} ({} pipeline(s))",
        service.pipelines.len()
    );
    let shutdown = {
        let service = service.clone();
        async move {
            wait_for_signal().await;
            tracing::info!("stopping: running actions are reconciled at the next start");
            service.shutdown.cancel();
            service.abandon_all();
        }
    };
    match tls {
        Some(acceptor) => {
            let listener = tls::TlsListener::new(tcp, acceptor)?;
            axum::serve(
                listener,
                app.into_make_service_with_connect_info::<api::Peer>(),
            )
            .with_graceful_shutdown(shutdown)
            .await?;
        }
        None => {
            axum::serve(tcp, app.into_make_service_with_connect_info::<api::Peer>())
                .with_graceful_shutdown(shutdown)
                .await?;
        }
    }
    Ok(())
}

/// Holds `STATE/server.lock` for as long as the server runs (the kernel lets go of it when the
/// process ends, however it ends); the file names the holder's pid for the error above.
fn lock_state(state: &std::path::Path) -> Result<std::fs::File, ServeError> {
    use std::io::{Read, Seek, Write};
    std::fs::create_dir_all(state)?;
    let path = state.join("server.lock");
    let mut file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)?;
    match file.try_lock() {
        Ok(()) => {
            file.set_len(0)?;
            file.seek(std::io::SeekFrom::Start(0))?;
            writeln!(file, "pid {}", std::process::id())?;
            Ok(file)
        }
        Err(std::fs::TryLockError::WouldBlock) => {
            let mut holder = String::new();
            file.read_to_string(&mut holder)?;
            let holder = match holder.trim() {
                "" => "a process".to_owned(),
                h => h.to_owned(),
            };
            Err(ServeError::Locked { path, holder })
        }
        Err(std::fs::TryLockError::Error(e)) => Err(e.into()),
    }
}

async fn wait_for_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}
