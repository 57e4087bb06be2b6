//! Serving one or more Schakel services on one TLS port.
//!
//! The same path runs production (`schakel serve <service>`), `schakel dev`
//! and the tests: bind (port 0 allowed), report the port, serve with TLS, the
//! [`TraceLayer`], grpc-web, the [`AuthLayer`], health and reflection, and on
//! shutdown mark health NOT_SERVING, stop accepting and drain in-flight calls
//! within the grace period.

use std::{future::Future, net::SocketAddr, sync::Arc};

use anyhow::Context;
use tokio::net::TcpListener;
use tonic::{
    service::Routes,
    transport::{Server, server::TcpIncoming},
};
use tonic_health::ServingStatus;

use crate::{
    auth::{AuthLayer, TokenVerifier},
    config::ServerConfig,
    telemetry::TraceLayer,
};

/// A bound, ready-to-run server.
pub struct App {
    listener: TcpListener,
    local_addr: SocketAddr,
    config: ServerConfig,
    routes: Routes,
    service_names: Vec<String>,
    verifier: Arc<TokenVerifier>,
    readiness: Vec<tokio::sync::watch::Receiver<bool>>,
}

impl App {
    /// Binds `config.listen` and prepares to serve `routes`, whose gRPC
    /// service names (for health) are `service_names`.
    pub async fn build(
        config: ServerConfig,
        routes: Routes,
        service_names: Vec<String>,
        verifier: Arc<TokenVerifier>,
    ) -> anyhow::Result<Self> {
        // Validate TLS before binding.
        crate::tls::server_config(&config.tls)?;
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("binding {}", config.listen))?;
        let local_addr = listener.local_addr()?;
        Ok(Self {
            listener,
            local_addr,
            config,
            routes,
            service_names,
            verifier,
            readiness: Vec::new(),
        })
    }

    /// Reports the services NOT_SERVING in health while `ready` is false (e.g.
    /// an audit instance standing by while another one writes), so that
    /// orchestrators send calls only to instances that can answer them.
    pub fn with_readiness(mut self, ready: tokio::sync::watch::Receiver<bool>) -> Self {
        self.readiness.push(ready);
        self
    }

    /// The bound port.
    pub fn port(&self) -> u16 {
        self.local_addr.port()
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Serves until `shutdown` resolves, then drains in-flight calls for at
    /// most `shutdown_grace`.
    pub async fn run_until(self, shutdown: impl Future<Output = ()> + Send) -> anyhow::Result<()> {
        let App {
            listener,
            local_addr,
            config,
            routes,
            service_names,
            verifier,
            readiness,
        } = self;
        let tls = crate::tls::server_config(&config.tls)?;
        let (reporter, health_service) = tonic_health::server::health_reporter();
        let ready = |r: &[tokio::sync::watch::Receiver<bool>]| r.iter().all(|r| *r.borrow());
        let status = |ok: bool| {
            if ok {
                ServingStatus::Serving
            } else {
                ServingStatus::NotServing
            }
        };
        set_health(&reporter, &service_names, status(ready(&readiness))).await;
        let stopping = Arc::new(std::sync::atomic::AtomicBool::new(false));
        if !readiness.is_empty() {
            let reporter = reporter.clone();
            let names = service_names.clone();
            let stopping = stopping.clone();
            let mut watched = readiness;
            tokio::spawn(async move {
                loop {
                    let changes = watched.iter_mut().map(|r| Box::pin(r.changed()));
                    let (changed, _, _) = futures::future::select_all(changes).await;
                    if changed.is_err() {
                        return;
                    }
                    if stopping.load(std::sync::atomic::Ordering::SeqCst) {
                        return;
                    }
                    let ok = ready(&watched);
                    tracing::info!(ready = ok, "readiness changed");
                    set_health(&reporter, &names, status(ok)).await;
                }
            });
        }
        // Both reflection versions: grpcurl speaks v1, Python's
        // grpcio-reflection and many other tools only v1alpha.
        let reflection_builder = || {
            tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(schakel_proto::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        };
        let reflection = reflection_builder()
            .build_v1()
            .context("building reflection service")?;
        let reflection_v1alpha = reflection_builder()
            .build_v1alpha()
            .context("building reflection service (v1alpha)")?;

        let (drain_tx, drain_rx) = tokio::sync::oneshot::channel::<()>();
        let signal = {
            let reporter = reporter.clone();
            let names = service_names.clone();
            let stopping = stopping.clone();
            async move {
                shutdown.await;
                stopping.store(true, std::sync::atomic::Ordering::SeqCst);
                tracing::info!("shutting down: health NOT_SERVING, draining calls");
                set_health(&reporter, &names, ServingStatus::NotServing).await;
                let _ = drain_tx.send(());
            }
        };

        let limits = &config.limits;
        let server = Server::builder()
            .tls_config(tls)
            .context("TLS configuration")?
            .timeout(limits.call_timeout)
            .concurrency_limit_per_connection(limits.concurrency_per_connection)
            .http2_keepalive_interval(Some(std::time::Duration::from_secs(30)))
            .accept_http1(true)
            .layer(TraceLayer)
            .layer(tonic_web::GrpcWebLayer::new())
            .layer(AuthLayer::new(verifier))
            .add_routes(routes)
            .add_service(health_service)
            .add_service(reflection)
            .add_service(reflection_v1alpha)
            // No Nagle: a reply of several TCP segments must not wait for a
            // delayed ACK (40 ms per call otherwise).
            .serve_with_incoming_shutdown(
                TcpIncoming::from(listener).with_nodelay(Some(true)),
                signal,
            );
        tracing::info!(%local_addr, services = ?service_names, "serving");

        let grace = config.shutdown_grace;
        tokio::pin!(server);
        tokio::select! {
            result = &mut server => result.context("server failed")?,
            () = async move {
                if drain_rx.await.is_ok() {
                    tokio::time::sleep(grace).await;
                } else {
                    std::future::pending::<()>().await;
                }
            } => tracing::warn!("grace period over; abandoning calls still in flight"),
        }
        Ok(())
    }
}

/// Sets the status of every served service and of the server as a whole ("").
async fn set_health(
    reporter: &tonic_health::server::HealthReporter,
    names: &[String],
    status: ServingStatus,
) {
    for name in names.iter().map(String::as_str).chain([""]) {
        reporter.set_service_status(name, status).await;
    }
}

/// Resolves on SIGINT or SIGTERM.
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
    tokio::select! { () = ctrl_c => {}, () = term => {} }
}
