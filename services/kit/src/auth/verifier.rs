//! Verifies access tokens against the identity service's JWK set.

use std::{collections::HashMap, future::Future, pin::Pin, sync::Arc};

use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use tokio::{
    sync::{Mutex, RwLock},
    time::Instant,
};

use super::{Caller, Claims, PrincipalKind, Role};
use crate::config::AuthConfig;

/// Fetches the current JWK set (JSON). In one process this reads the identity
/// service's key store; across processes it calls `IdentityService.GetJwks`.
pub type JwksFetcher =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = anyhow::Result<String>> + Send>> + Send + Sync>;

/// Fetches the JWK set from a remote identity service (`GetJwks`, which needs
/// no token) over `channel`.
pub fn remote_jwks(channel: tonic::transport::Channel) -> JwksFetcher {
    Arc::new(move || {
        let mut client =
            schakel_proto::v1::identity_service_client::IdentityServiceClient::new(channel.clone());
        Box::pin(async move {
            let response = client
                .get_jwks(schakel_proto::v1::GetJwksRequest {})
                .await?;
            Ok(response.into_inner().jwks_json)
        })
    })
}

/// Why a token was refused. Every variant is `UNAUTHENTICATED` to the caller;
/// the variant names the reason for logs and tests.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AuthError {
    /// No `authorization: Bearer` metadata.
    #[error("missing bearer token")]
    Missing,
    /// Not a well-formed JWT.
    #[error("malformed token")]
    Malformed,
    /// `alg` other than EdDSA (including `none` and HMAC).
    #[error("token algorithm not accepted")]
    Algorithm,
    /// No `kid`, or a `kid` not in the JWK set even after a refresh.
    #[error("unknown signing key")]
    UnknownKey,
    /// Signature does not verify.
    #[error("invalid signature")]
    Signature,
    /// Expired.
    #[error("token expired")]
    Expired,
    /// `nbf` in the future.
    #[error("token not yet valid")]
    NotYetValid,
    /// Wrong `iss`.
    #[error("wrong issuer")]
    Issuer,
    /// Wrong `aud`.
    #[error("wrong audience")]
    Audience,
    /// Claims missing or not understood.
    #[error("invalid claims")]
    Claims,
}

impl AuthError {
    /// The `ErrorInfo.reason` code of this refusal.
    pub fn reason(&self) -> &'static str {
        match self {
            AuthError::Missing => "NO_TOKEN",
            AuthError::Malformed => "MALFORMED_TOKEN",
            AuthError::Algorithm => "ALGORITHM_NOT_ACCEPTED",
            AuthError::UnknownKey => "UNKNOWN_KEY",
            AuthError::Signature => "INVALID_SIGNATURE",
            AuthError::Expired => "TOKEN_EXPIRED",
            AuthError::NotYetValid => "TOKEN_NOT_YET_VALID",
            AuthError::Issuer => "WRONG_ISSUER",
            AuthError::Audience => "WRONG_AUDIENCE",
            AuthError::Claims => "INVALID_CLAIMS",
        }
    }
}

impl From<AuthError> for tonic::Status {
    fn from(err: AuthError) -> Self {
        crate::error::unauthenticated(err.reason(), err.to_string())
    }
}

struct KeyCache {
    keys: HashMap<String, DecodingKey>,
    refreshed_at: Option<Instant>,
}

/// Verifies Schakel access tokens: signature (EdDSA only), `kid`, `iss`,
/// `aud`, `exp`/`nbf` with a small leeway. Refreshes the JWK set on an
/// unknown `kid`, at most once per `jwks_refresh_interval`.
pub struct TokenVerifier {
    config: AuthConfig,
    fetch: JwksFetcher,
    cache: RwLock<KeyCache>,
    refreshing: Mutex<()>,
}

impl TokenVerifier {
    /// A verifier that loads keys with `fetch` (lazily, on first use).
    pub fn new(config: AuthConfig, fetch: JwksFetcher) -> Self {
        Self {
            config,
            fetch,
            cache: RwLock::new(KeyCache {
                keys: HashMap::new(),
                refreshed_at: None,
            }),
            refreshing: Mutex::new(()),
        }
    }

    /// Verifies a compact JWT and returns its caller.
    pub async fn verify(&self, token: &str) -> Result<Caller, AuthError> {
        let header = jsonwebtoken::decode_header(token).map_err(|e| match e.kind() {
            jsonwebtoken::errors::ErrorKind::InvalidAlgorithm
            | jsonwebtoken::errors::ErrorKind::InvalidAlgorithmName => AuthError::Algorithm,
            _ => AuthError::Malformed,
        })?;
        if header.alg != Algorithm::EdDSA {
            return Err(AuthError::Algorithm);
        }
        let kid = header.kid.ok_or(AuthError::UnknownKey)?;
        let key = self.key(&kid).await?;

        let mut validation = Validation::new(Algorithm::EdDSA);
        validation.leeway = self.config.leeway.as_secs();
        validation.validate_nbf = true;
        validation.set_issuer(&[&self.config.issuer]);
        validation.set_audience(&[&self.config.audience]);
        validation.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        let data = jsonwebtoken::decode::<Claims>(token, &key, &validation).map_err(|e| {
            use jsonwebtoken::errors::ErrorKind as K;
            match e.kind() {
                K::InvalidSignature => AuthError::Signature,
                K::ExpiredSignature => AuthError::Expired,
                K::ImmatureSignature => AuthError::NotYetValid,
                K::InvalidIssuer => AuthError::Issuer,
                K::InvalidAudience => AuthError::Audience,
                K::InvalidAlgorithm => AuthError::Algorithm,
                K::MissingRequiredClaim(_) | K::Json(_) => AuthError::Claims,
                _ => AuthError::Malformed,
            }
        })?;
        caller_from_claims(data.claims)
    }

    /// Verifies the `authorization` metadata value (`Bearer <jwt>`).
    pub async fn verify_header(&self, value: Option<&str>) -> Result<Caller, AuthError> {
        let value = value.ok_or(AuthError::Missing)?;
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .ok_or(AuthError::Missing)?;
        self.verify(token.trim()).await
    }

    async fn key(&self, kid: &str) -> Result<DecodingKey, AuthError> {
        if let Some(key) = self.cache.read().await.keys.get(kid) {
            return Ok(key.clone());
        }
        // Unknown kid: refresh, but not more often than the configured interval,
        // so that a flood of forged kids cannot hammer the identity service.
        let _guard = self.refreshing.lock().await;
        {
            let cache = self.cache.read().await;
            if let Some(key) = cache.keys.get(kid) {
                return Ok(key.clone());
            }
            if let Some(at) = cache.refreshed_at
                && at.elapsed() < self.config.jwks_refresh_interval
            {
                return Err(AuthError::UnknownKey);
            }
        }
        let fetched = (self.fetch)().await;
        let mut cache = self.cache.write().await;
        cache.refreshed_at = Some(Instant::now());
        match fetched.and_then(|json| parse_jwks(&json)) {
            Ok(keys) => cache.keys = keys,
            Err(err) => {
                tracing::warn!(error = format!("{err:#}"), "JWKS refresh failed");
            }
        }
        cache.keys.get(kid).cloned().ok_or(AuthError::UnknownKey)
    }
}

/// Parses a JWK set, keeping only Ed25519 signing keys (anything else could
/// only be used to attack the verifier).
pub(crate) fn parse_jwks(json: &str) -> anyhow::Result<HashMap<String, DecodingKey>> {
    #[derive(serde::Deserialize)]
    struct Set {
        keys: Vec<serde_json::Value>,
    }
    let set: Set = serde_json::from_str(json)?;
    let mut keys = HashMap::new();
    for value in set.keys {
        let Ok(jwk) = serde_json::from_value::<super::Jwk>(value) else {
            continue;
        };
        if jwk.kty != "OKP" || jwk.crv != "Ed25519" || jwk.alg != "EdDSA" || jwk.use_ != "sig" {
            continue;
        }
        let key = DecodingKey::from_ed_components(&jwk.x)?;
        if key.as_bytes().len() != 32 {
            anyhow::bail!("Ed25519 key {} is not 32 bytes", jwk.kid);
        }
        keys.insert(jwk.kid, key);
    }
    Ok(keys)
}

fn caller_from_claims(claims: Claims) -> Result<Caller, AuthError> {
    let roles = claims
        .roles
        .iter()
        .map(|r| r.parse::<Role>())
        .collect::<Result<Vec<_>, _>>()
        .map_err(|_| AuthError::Claims)?;
    let kind = claims
        .knd
        .parse::<PrincipalKind>()
        .map_err(|_| AuthError::Claims)?;
    if claims.sub.is_empty() || claims.jti.is_empty() {
        return Err(AuthError::Claims);
    }
    Ok(Caller {
        subject: claims.sub,
        kind,
        organisation_id: claims.org,
        partner_type: claims.ptype,
        roles,
        region: claims.region,
        token_id: claims.jti,
        expires_at: claims.exp,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use ed25519_dalek::{SigningKey, pkcs8::EncodePrivateKey};
    use jsonwebtoken::{EncodingKey, Header};

    use super::*;
    use crate::auth::{Jwk, JwkSet};

    fn claims(now: i64) -> Claims {
        Claims {
            iss: AuthConfig::default().issuer,
            sub: "u1".into(),
            aud: "schakel".into(),
            iat: now,
            nbf: now,
            exp: now + 600,
            jti: "t1".into(),
            org: "o1".into(),
            ptype: "caw".into(),
            roles: vec!["team_member".into()],
            region: "leuven".into(),
            knd: "user".into(),
        }
    }

    fn sign(key: &SigningKey, kid: &str, claims: &Claims) -> String {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(kid.into());
        let der = key.to_pkcs8_der().expect("der");
        jsonwebtoken::encode(&header, claims, &EncodingKey::from_ed_der(der.as_bytes()))
            .expect("sign")
    }

    /// A verifier whose JWKS holds `keys` and counts fetches.
    fn verifier(
        keys: Vec<(&str, &SigningKey)>,
        interval: std::time::Duration,
    ) -> (TokenVerifier, Arc<AtomicUsize>) {
        let set = JwkSet {
            keys: keys
                .iter()
                .map(|(kid, k)| Jwk::ed25519(kid, &k.verifying_key().to_bytes()))
                .collect(),
        };
        let mut json: serde_json::Value = serde_json::to_value(&set).expect("json");
        // A foreign key type in the set is ignored, not an error.
        json["keys"]
            .as_array_mut()
            .expect("keys")
            .push(serde_json::json!({"kty": "oct", "k": "c2VjcmV0", "kid": "hmac"}));
        let json = json.to_string();
        let fetches = Arc::new(AtomicUsize::new(0));
        let counter = fetches.clone();
        let fetch: JwksFetcher = Arc::new(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            let json = json.clone();
            Box::pin(async move { Ok(json) })
        });
        let config = AuthConfig {
            jwks_refresh_interval: interval,
            ..AuthConfig::default()
        };
        (TokenVerifier::new(config, fetch), fetches)
    }

    fn now() -> i64 {
        crate::time::Clock::System.now()
    }

    #[tokio::test]
    async fn verifies_and_types_the_caller() {
        let key = SigningKey::from_bytes(&[1; 32]);
        let (verifier, _) = verifier(vec![("k1", &key)], std::time::Duration::from_secs(10));
        let caller = verifier
            .verify(&sign(&key, "k1", &claims(now())))
            .await
            .expect("valid");
        assert_eq!(caller.roles, vec![Role::TeamMember]);
        assert_eq!(caller.kind, PrincipalKind::User);
        assert_eq!(caller.partner_type, "caw");
    }

    #[tokio::test]
    async fn unknown_kids_refresh_at_most_once_per_interval() {
        let key = SigningKey::from_bytes(&[1; 32]);
        let (verifier, fetches) =
            verifier(vec![("k1", &key)], std::time::Duration::from_secs(3600));
        let token = sign(&key, "k1", &claims(now()));
        verifier.verify(&token).await.expect("valid");
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
        for i in 0..20 {
            let forged = sign(&key, &format!("forged-{i}"), &claims(now()));
            assert_eq!(verifier.verify(&forged).await, Err(AuthError::UnknownKey));
        }
        assert_eq!(
            fetches.load(Ordering::SeqCst),
            1,
            "a flood of unknown kids must not hammer identity"
        );
        verifier
            .verify(&token)
            .await
            .expect("known kid needs no fetch");
    }

    #[tokio::test]
    async fn refused_tokens_name_their_reason() {
        let key = SigningKey::from_bytes(&[1; 32]);
        let (verifier, _) = verifier(vec![("k1", &key)], std::time::Duration::ZERO);
        let n = now();
        let cases = [
            (
                Claims {
                    exp: n - 100,
                    ..claims(n - 1000)
                },
                AuthError::Expired,
            ),
            (
                Claims {
                    nbf: n + 1000,
                    ..claims(n)
                },
                AuthError::NotYetValid,
            ),
            (
                Claims {
                    aud: "other".into(),
                    ..claims(n)
                },
                AuthError::Audience,
            ),
            (
                Claims {
                    iss: "other".into(),
                    ..claims(n)
                },
                AuthError::Issuer,
            ),
            (
                Claims {
                    roles: vec!["citizen".into()],
                    ..claims(n)
                },
                AuthError::Claims,
            ),
            (
                Claims {
                    knd: "robot".into(),
                    ..claims(n)
                },
                AuthError::Claims,
            ),
        ];
        for (claims, expected) in cases {
            assert_eq!(
                verifier.verify(&sign(&key, "k1", &claims)).await,
                Err(expected)
            );
        }
        // Within the leeway is fine.
        verifier
            .verify(&sign(
                &key,
                "k1",
                &Claims {
                    exp: n - 5,
                    ..claims(n - 600)
                },
            ))
            .await
            .expect("leeway");
        assert_eq!(verifier.verify_header(None).await, Err(AuthError::Missing));
        assert_eq!(
            verifier.verify_header(Some("Basic abc")).await,
            Err(AuthError::Missing)
        );
    }
}
