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

/// Client id prefix of Schakel's own services at the identity service.
pub const INTERNAL_CLIENT_PREFIX: &str = "svc-";

/// The service token of `service` (one of Schakel's own), issued by the
/// identity service behind `channel` for the client-certificate grant: the
/// channel presents this service's mTLS certificate, whose common name is
/// `service`. Waits for the first token (retrying, with backoff, while
/// identity is unreachable: a service that cannot authenticate to the audit
/// log must not serve), then renews it in the background at a third of its
/// lifetime. Renewal stops when the returned source is dropped.
pub async fn certificate_token(channel: Channel, service: &str) -> TokenSource {
    use schakel_proto::v1::{
        self as pb, identity_service_client::IdentityServiceClient, issue_token_request::Grant,
    };
    use std::time::Duration;

    const FIRST_RETRY: Duration = Duration::from_millis(200);
    const MAX_RETRY: Duration = Duration::from_secs(30);
    let client = IdentityServiceClient::new(channel);
    let request = pb::IssueTokenRequest {
        grant: Some(Grant::ClientCertificate(pb::ClientCertificateGrant {
            client_id: format!("{INTERNAL_CLIENT_PREFIX}{service}"),
        })),
        ttl_seconds: 0,
    };
    let service = service.to_owned();
    // One attempt: the token, if issued, and how long to wait for the next.
    let fetch = move |retry: Duration| {
        let mut client = client.clone();
        let request = request.clone();
        let service = service.clone();
        async move {
            match client.issue_token(request).await {
                Ok(response) => {
                    let response = response.into_inner();
                    let renew = Duration::from_secs(u64::from(response.expires_in).max(3) / 3);
                    (Some(response.access_token), renew)
                }
                Err(status) => {
                    tracing::warn!(
                        service,
                        code = ?status.code(),
                        message = status.message(),
                        "no service token from identity; retrying"
                    );
                    (None, retry)
                }
            }
        }
    };
    let mut retry = FIRST_RETRY;
    let (first, mut wait) = loop {
        match fetch(retry).await {
            (Some(token), renew) => break (token, renew),
            (None, wait) => {
                tokio::time::sleep(wait).await;
                retry = (retry * 2).min(MAX_RETRY);
            }
        }
    };
    let slot = Arc::new(std::sync::RwLock::new(first));
    let weak = Arc::downgrade(&slot);
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(wait).await;
            let (token, next) = fetch(retry).await;
            let Some(slot) = weak.upgrade() else { return };
            match token {
                Some(token) => {
                    *slot.write().unwrap_or_else(|e| e.into_inner()) = token;
                    retry = FIRST_RETRY;
                }
                // The current token stays until it expires; keep trying.
                None => retry = (retry * 2).min(MAX_RETRY),
            }
            wait = next;
        }
    });
    Arc::new(move || Some(slot.read().unwrap_or_else(|e| e.into_inner()).clone()))
}
