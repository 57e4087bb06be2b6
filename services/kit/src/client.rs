//! gRPC clients for calling Schakel services: TLS channels and an interceptor
//! that adds the bearer token and the W3C trace context.

use std::sync::Arc;

use anyhow::Context;
use tonic::{
    Request, Status,
    metadata::MetadataValue,
    service::Interceptor,
    transport::{Channel, ClientTlsConfig, Endpoint},
};

/// Opens a lazily-connecting TLS channel to `url` (`https://host:port`).
pub fn channel(url: &str, tls: ClientTlsConfig) -> anyhow::Result<Channel> {
    let endpoint = Endpoint::from_shared(url.to_owned())
        .with_context(|| format!("invalid service URL {url:?}"))?
        .tls_config(tls)?
        .connect_timeout(std::time::Duration::from_secs(5))
        .timeout(std::time::Duration::from_secs(30));
    Ok(endpoint.connect_lazy())
}

/// Where a client's bearer token comes from.
pub type TokenSource = Arc<dyn Fn() -> Option<String> + Send + Sync>;

/// Adds `authorization: Bearer <token>` (when there is a token) and the
/// current trace context to every outgoing call.
#[derive(Clone)]
pub struct CallContext {
    token: TokenSource,
}

impl CallContext {
    /// Uses a fixed token (or none).
    pub fn with_token(token: Option<String>) -> Self {
        Self {
            token: Arc::new(move || token.clone()),
        }
    }

    /// Asks `token` for the token on every call (e.g. a refreshing service token).
    pub fn with_source(token: TokenSource) -> Self {
        Self { token }
    }
}

impl Interceptor for CallContext {
    fn call(&mut self, mut request: Request<()>) -> Result<Request<()>, Status> {
        if let Some(token) = (self.token)() {
            let value = MetadataValue::try_from(format!("Bearer {token}"))
                .map_err(|_| Status::internal("token is not valid metadata"))?;
            request.metadata_mut().insert("authorization", value);
        }
        crate::telemetry::inject_trace_context(request.metadata_mut());
        Ok(request)
    }
}
