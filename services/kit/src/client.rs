//! gRPC clients for calling Schakel services: TLS channels and an interceptor
//! that adds the bearer token and the W3C trace context.

use std::{future::Future, sync::Arc};

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

/// How often a service checks that its token's signing key is still
/// published (a rotation retires the old key at once, and verifiers may
/// drop it from their next refresh on): one small unaudited GetJwks call.
const KEY_CHECK: std::time::Duration = std::time::Duration::from_secs(1);

/// Keeps a service token fresh in the background, starting from `first`
/// (the token and when to renew it): `issue` gives the next one at the renewal
/// time, and at once when `published` (the kids of the signing keys now
/// published) no longer lists the key that signed the current one, so that
/// a key rotation does not leave the service with a token nobody accepts.
/// `nudge` makes it check at once (identity nudges its own token's loop when
/// it rotates). A failed renewal keeps the current token and is retried with
/// backoff. Renewal stops when the returned source is dropped.
pub fn renewing<I, IF, P, PF>(
    first: (String, std::time::Duration),
    issue: I,
    published: P,
    nudge: Arc<tokio::sync::Notify>,
) -> TokenSource
where
    I: Fn() -> IF + Send + 'static,
    IF: Future<Output = anyhow::Result<(String, std::time::Duration)>> + Send,
    P: Fn() -> PF + Send + 'static,
    PF: Future<Output = anyhow::Result<Vec<String>>> + Send,
{
    use std::time::Duration;
    const MAX_RETRY: Duration = Duration::from_secs(30);
    let (token, renew) = first;
    let slot = Arc::new(std::sync::RwLock::new(token));
    let weak = Arc::downgrade(&slot);
    tokio::spawn(async move {
        let mut due = tokio::time::Instant::now() + renew;
        let mut retry = Duration::from_millis(200);
        loop {
            let wake = due.min(tokio::time::Instant::now() + KEY_CHECK);
            tokio::select! {
                () = tokio::time::sleep_until(wake) => {}
                () = nudge.notified() => {}
            }
            let Some(slot) = weak.upgrade() else { return };
            let current = slot.read().unwrap_or_else(|e| e.into_inner()).clone();
            let kid = jsonwebtoken::decode_header(&current)
                .ok()
                .and_then(|h| h.kid);
            let retired = match published().await {
                Ok(kids) => kid.is_none_or(|kid| !kids.contains(&kid)),
                Err(_) => false,
            };
            if !retired && tokio::time::Instant::now() < due {
                continue;
            }
            match issue().await {
                Ok((token, renew)) => {
                    *slot.write().unwrap_or_else(|e| e.into_inner()) = token;
                    due = tokio::time::Instant::now() + renew;
                    retry = Duration::from_millis(200);
                }
                Err(err) => {
                    tracing::warn!(
                        error = format!("{err:#}"),
                        "renewing the service token failed"
                    );
                    due = tokio::time::Instant::now() + retry;
                    retry = (retry * 2).min(MAX_RETRY);
                }
            }
        }
    });
    Arc::new(move || Some(slot.read().unwrap_or_else(|e| e.into_inner()).clone()))
}

/// The service token of `service` (one of Schakel's own), issued by the
/// identity service behind `channel` for the client-certificate grant: the
/// channel presents this service's mTLS certificate, whose common name is
/// `service`, and the token is bound to it (RFC 8705). Waits for the first
/// token (retrying, with backoff, while identity is unreachable: a service
/// that cannot authenticate to the audit log must not serve), then keeps it
/// fresh with [`renewing`].
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
    let issue = {
        let client = client.clone();
        let service = service.to_owned();
        move || {
            let mut client = client.clone();
            let request = request.clone();
            let service = service.clone();
            async move {
                match client.issue_token(request).await {
                    Ok(response) => {
                        let response = response.into_inner();
                        let renew = Duration::from_secs(u64::from(response.expires_in).max(3) / 3);
                        Ok((response.access_token, renew))
                    }
                    Err(status) => {
                        tracing::warn!(
                            service,
                            code = ?status.code(),
                            message = status.message(),
                            "no service token from identity"
                        );
                        Err(anyhow::Error::new(status))
                    }
                }
            }
        }
    };
    let published = move || {
        let mut client = client.clone();
        async move {
            let json = client
                .get_jwks(pb::GetJwksRequest {})
                .await?
                .into_inner()
                .jwks_json;
            let set: crate::auth::JwkSet = serde_json::from_str(&json)?;
            Ok(set.keys.into_iter().map(|k| k.kid).collect())
        }
    };
    let mut retry = FIRST_RETRY;
    let first = loop {
        match issue().await {
            Ok(first) => break first,
            Err(_) => {
                tokio::time::sleep(retry).await;
                retry = (retry * 2).min(MAX_RETRY);
            }
        }
    };
    renewing(first, issue, published, Arc::default())
}
