//! The tower layer that authenticates every call before it reaches a handler.

use std::{
    future::Future,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
use tower::{Layer, Service};

use super::TokenVerifier;

/// Methods that need no token: obtaining one, the public keys, health checks
/// and reflection. Everything else is authenticated (deny by default).
pub const PUBLIC_METHODS: &[&str] = &[
    "/schakel.v1.IdentityService/IssueToken",
    "/schakel.v1.IdentityService/GetJwks",
    "/grpc.health.v1.Health/Check",
    "/grpc.health.v1.Health/Watch",
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
];

/// Verifies the bearer token of every non-public call and inserts the
/// [`Caller`](super::Caller) into the request extensions; refuses the call
/// with `UNAUTHENTICATED` otherwise.
#[derive(Clone)]
pub struct AuthLayer {
    verifier: Arc<TokenVerifier>,
}

impl AuthLayer {
    /// A layer using `verifier`.
    pub fn new(verifier: Arc<TokenVerifier>) -> Self {
        Self { verifier }
    }
}

impl<S> Layer<S> for AuthLayer {
    type Service = AuthService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        AuthService {
            inner,
            verifier: self.verifier.clone(),
        }
    }
}

/// The service produced by [`AuthLayer`].
#[derive(Clone)]
pub struct AuthService<S> {
    inner: S,
    verifier: Arc<TokenVerifier>,
}

impl<S, B> Service<http::Request<B>> for AuthService<S>
where
    S: Service<http::Request<B>, Response = http::Response<tonic::body::Body>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        // The clone that was driven to readiness handles this request.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let verifier = self.verifier.clone();
        Box::pin(async move {
            if PUBLIC_METHODS.contains(&request.uri().path()) {
                return inner.call(request).await;
            }
            let header = request.headers().get(http::header::AUTHORIZATION);
            let header = header.and_then(|v| v.to_str().ok());
            // The verified client certificate of this connection (mTLS), for
            // tokens bound to it (RFC 8705).
            let peer = request
                .extensions()
                .get::<TlsConnectInfo<TcpConnectInfo>>()
                .and_then(|info| info.peer_certs())
                .and_then(|certs| certs.first().map(|c| c.as_ref().to_vec()));
            match verifier.verify_header(header, peer.as_deref()).await {
                Ok(caller) => {
                    request.extensions_mut().insert(caller);
                    inner.call(request).await
                }
                Err(err) => {
                    tracing::info!(
                        reason = err.reason(),
                        path = request.uri().path(),
                        "call refused"
                    );
                    Ok(tonic::Status::from(err).into_http())
                }
            }
        })
    }
}
