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
    /// Claims missing or not understood, or roles that break the
    /// separation of duties.
    #[error("invalid claims")]
    Claims,
    /// The subject was disabled or its credentials were replaced after this
    /// token was issued.
    #[error("token revoked")]
    Revoked,
    /// The token is bound to a client certificate (RFC 8705) this connection
    /// did not present, or is a service token without such a binding.
    #[error("token not bound to this connection's client certificate")]
    CertificateBinding,
    /// The signing keys could not be refreshed for longer than
    /// `auth.jwks_max_age`: no token is trusted until they are.
    #[error("signing keys could not be refreshed")]
    KeysStale,
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
            AuthError::Revoked => "TOKEN_REVOKED",
            AuthError::CertificateBinding => "CERTIFICATE_BINDING",
            AuthError::KeysStale => "KEYS_STALE",
        }
    }
}

impl From<AuthError> for tonic::Status {
    fn from(err: AuthError) -> Self {
        crate::error::unauthenticated(err.reason(), err.to_string())
    }
}

#[derive(Default)]
struct KeyCache {
    keys: HashMap<String, DecodingKey>,
    /// Subject -> tokens issued at or before this second are void.
    revoked: HashMap<String, i64>,
    /// The last successful fetch.
    fetched_at: Option<Instant>,
    /// The last attempt, successful or not.
    attempted_at: Option<Instant>,
}

/// Verifies Schakel access tokens: signature (EdDSA only), `kid`, `iss`,
/// `aud`, `exp`/`nbf` with a small leeway, the subject's revocation, and
/// the RFC 8705 certificate binding.
///
/// The JWK set (keys and revocations) is refreshed when it is older than
/// half of `jwks_max_age`, and on an unknown `kid`, but never more often than
/// once per `jwks_refresh_interval`. A set older than `jwks_max_age` is not
/// used at all (fail closed), so a retired key, a disabled user or a revoked
/// service account stops working everywhere within `jwks_max_age`.
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
            cache: RwLock::new(KeyCache::default()),
            refreshing: Mutex::new(()),
        }
    }

    /// Verifies a compact JWT presented on a connection whose client
    /// certificate (DER) is `peer_certificate`, and returns its caller.
    pub async fn verify(
        &self,
        token: &str,
        peer_certificate: Option<&[u8]>,
    ) -> Result<Caller, AuthError> {
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
        let claims = data.claims;
        if let Some(&until) = self.cache.read().await.revoked.get(&claims.sub)
            && claims.iat <= until
        {
            return Err(AuthError::Revoked);
        }
        check_binding(&claims, peer_certificate)?;
        caller_from_claims(claims)
    }

    /// Verifies the `authorization` metadata value (`Bearer <jwt>`).
    pub async fn verify_header(
        &self,
        value: Option<&str>,
        peer_certificate: Option<&[u8]>,
    ) -> Result<Caller, AuthError> {
        let value = value.ok_or(AuthError::Missing)?;
        let token = value
            .strip_prefix("Bearer ")
            .or_else(|| value.strip_prefix("bearer "))
            .ok_or(AuthError::Missing)?;
        self.verify(token.trim(), peer_certificate).await
    }

    async fn key(&self, kid: &str) -> Result<DecodingKey, AuthError> {
        self.keep_fresh().await?;
        if let Some(key) = self.cache.read().await.keys.get(kid) {
            return Ok(key.clone());
        }
        // Unknown kid: refresh, but not more often than the configured interval,
        // so that a flood of forged kids cannot hammer the identity service.
        let _guard = self.refreshing.lock().await;
        if let Some(key) = self.cache.read().await.keys.get(kid) {
            return Ok(key.clone());
        }
        if self.may_attempt().await {
            self.refresh().await;
        }
        self.cache
            .read()
            .await
            .keys
            .get(kid)
            .cloned()
            .ok_or(AuthError::UnknownKey)
    }

    /// Refreshes a set older than half its maximum age (one caller does; the
    /// others go on with the cached set while it is still young enough), and
    /// refuses when the set is older than `jwks_max_age`.
    async fn keep_fresh(&self) -> Result<(), AuthError> {
        let max_age = self.config.jwks_max_age;
        let age = |cache: &KeyCache| cache.fetched_at.map(|at| at.elapsed());
        let current = age(&*self.cache.read().await);
        if current.is_some_and(|a| a < max_age / 2) {
            return Ok(());
        }
        let usable = current.is_some_and(|a| a < max_age);
        let guard = if usable {
            // Someone else is refreshing: the cached set is still good.
            match self.refreshing.try_lock() {
                Ok(guard) => guard,
                Err(_) => return Ok(()),
            }
        } else {
            self.refreshing.lock().await
        };
        let current = age(&*self.cache.read().await);
        if current.is_none_or(|a| a >= max_age / 2) && self.may_attempt().await {
            self.refresh().await;
        }
        drop(guard);
        match age(&*self.cache.read().await) {
            Some(a) if a < max_age => Ok(()),
            _ => Err(AuthError::KeysStale),
        }
    }

    /// Whether the last attempt was long enough ago (or there was none).
    async fn may_attempt(&self) -> bool {
        self.cache
            .read()
            .await
            .attempted_at
            .is_none_or(|at| at.elapsed() >= self.config.jwks_refresh_interval)
    }

    /// Fetches the set; call with `refreshing` held.
    async fn refresh(&self) {
        let fetched = (self.fetch)().await;
        let mut cache = self.cache.write().await;
        cache.attempted_at = Some(Instant::now());
        match fetched.and_then(|json| parse_jwks(&json)) {
            Ok((keys, revoked)) => {
                cache.keys = keys;
                cache.revoked = revoked;
                cache.fetched_at = Some(Instant::now());
            }
            Err(err) => {
                tracing::warn!(error = format!("{err:#}"), "JWKS refresh failed");
            }
        }
    }
}

/// RFC 8705: a token with a `cnf` is only good on a connection presenting
/// that certificate; a token of one of Schakel's own services must have one.
fn check_binding(claims: &Claims, peer_certificate: Option<&[u8]>) -> Result<(), AuthError> {
    match (&claims.cnf, peer_certificate) {
        (Some(cnf), Some(der)) => {
            // Both are digests of public certificates: nothing secret to time.
            if super::Confirmation::of_certificate(der) == *cnf {
                Ok(())
            } else {
                Err(AuthError::CertificateBinding)
            }
        }
        (Some(_), None) => Err(AuthError::CertificateBinding),
        (None, _) if claims.knd == PrincipalKind::InternalService.as_str() => {
            Err(AuthError::CertificateBinding)
        }
        (None, _) => Ok(()),
    }
}

/// The keys and revocations of a JWK set.
pub(crate) type Published = (HashMap<String, DecodingKey>, HashMap<String, i64>);

/// Parses a JWK set, keeping only Ed25519 signing keys (anything else could
/// only be used to attack the verifier).
pub(crate) fn parse_jwks(json: &str) -> anyhow::Result<Published> {
    #[derive(serde::Deserialize)]
    struct Set {
        keys: Vec<serde_json::Value>,
        #[serde(default, rename = "schakel_revoked")]
        revoked: Vec<super::Revocation>,
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
    let mut revoked = HashMap::new();
    for r in set.revoked {
        let until = revoked.entry(r.sub).or_insert(r.iat_until);
        *until = (*until).max(r.iat_until);
    }
    Ok((keys, revoked))
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
    Role::check_separation(&roles).map_err(|_| AuthError::Claims)?;
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
            cnf: None,
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
            revoked: vec![],
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
            .verify(&sign(&key, "k1", &claims(now())), None)
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
        verifier.verify(&token, None).await.expect("valid");
        assert_eq!(fetches.load(Ordering::SeqCst), 1);
        for i in 0..20 {
            let forged = sign(&key, &format!("forged-{i}"), &claims(now()));
            assert_eq!(
                verifier.verify(&forged, None).await,
                Err(AuthError::UnknownKey)
            );
        }
        assert_eq!(
            fetches.load(Ordering::SeqCst),
            1,
            "a flood of unknown kids must not hammer identity"
        );
        verifier
            .verify(&token, None)
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
                verifier.verify(&sign(&key, "k1", &claims), None).await,
                Err(expected)
            );
        }
        // Within the leeway is fine.
        verifier
            .verify(
                &sign(
                    &key,
                    "k1",
                    &Claims {
                        exp: n - 5,
                        ..claims(n - 600)
                    },
                ),
                None,
            )
            .await
            .expect("leeway");
        assert_eq!(
            verifier.verify_header(None, None).await,
            Err(AuthError::Missing)
        );
        assert_eq!(
            verifier.verify_header(Some("Basic abc"), None).await,
            Err(AuthError::Missing)
        );
    }

    /// A JWK set served by a fetcher that can be changed, or made to fail
    /// (`None`), while the verifier runs.
    type Served = Arc<std::sync::Mutex<Option<String>>>;

    fn served(keys: &[(&str, &SigningKey)], revoked: Vec<crate::auth::Revocation>) -> String {
        serde_json::to_string(&JwkSet {
            keys: keys
                .iter()
                .map(|(kid, k)| Jwk::ed25519(kid, &k.verifying_key().to_bytes()))
                .collect(),
            revoked,
        })
        .expect("json")
    }

    fn changing_verifier(first: String) -> (TokenVerifier, Served) {
        let slot: Served = Arc::new(std::sync::Mutex::new(Some(first)));
        let source = slot.clone();
        let fetch: JwksFetcher = Arc::new(move || {
            let json = source.lock().expect("lock").clone();
            Box::pin(async move { json.ok_or_else(|| anyhow::anyhow!("identity unreachable")) })
        });
        let config = AuthConfig {
            jwks_refresh_interval: std::time::Duration::from_secs(5),
            jwks_max_age: std::time::Duration::from_secs(60),
            ..AuthConfig::default()
        };
        (TokenVerifier::new(config, fetch), slot)
    }

    #[tokio::test(start_paused = true)]
    async fn a_retired_key_stops_within_the_maximum_age() {
        let (old, new) = (
            SigningKey::from_bytes(&[1; 32]),
            SigningKey::from_bytes(&[2; 32]),
        );
        let (verifier, slot) = changing_verifier(served(&[("old", &old), ("new", &new)], vec![]));
        let token = sign(&old, "old", &claims(now()));
        verifier
            .verify(&token, None)
            .await
            .expect("old key in force");
        // Rotation: the old key leaves the set.
        *slot.lock().expect("lock") = Some(served(&[("new", &new)], vec![]));
        tokio::time::advance(std::time::Duration::from_secs(20)).await;
        verifier.verify(&token, None).await.expect("cached for now");
        tokio::time::advance(std::time::Duration::from_secs(11)).await;
        assert_eq!(
            verifier.verify(&token, None).await,
            Err(AuthError::UnknownKey),
            "past half the maximum age the set is refreshed"
        );
        verifier
            .verify(&sign(&new, "new", &claims(now())), None)
            .await
            .expect("the new key");
    }

    #[tokio::test(start_paused = true)]
    async fn a_set_that_cannot_be_refreshed_is_not_trusted_past_its_age() {
        let key = SigningKey::from_bytes(&[1; 32]);
        let (verifier, slot) = changing_verifier(served(&[("k1", &key)], vec![]));
        let token = sign(&key, "k1", &claims(now()));
        verifier.verify(&token, None).await.expect("fresh");
        *slot.lock().expect("lock") = None;
        tokio::time::advance(std::time::Duration::from_secs(45)).await;
        verifier
            .verify(&token, None)
            .await
            .expect("still young enough");
        tokio::time::advance(std::time::Duration::from_secs(16)).await;
        assert_eq!(
            verifier.verify(&token, None).await,
            Err(AuthError::KeysStale)
        );
        *slot.lock().expect("lock") = Some(served(&[("k1", &key)], vec![]));
        tokio::time::advance(std::time::Duration::from_secs(5)).await;
        verifier
            .verify(&token, None)
            .await
            .expect("identity is back");
    }

    #[tokio::test(start_paused = true)]
    async fn tokens_issued_before_a_revocation_are_refused() {
        let key = SigningKey::from_bytes(&[1; 32]);
        let (verifier, slot) = changing_verifier(served(&[("k1", &key)], vec![]));
        let n = now();
        let before = sign(&key, "k1", &claims(n));
        verifier
            .verify(&before, None)
            .await
            .expect("not yet revoked");
        let revoked = vec![crate::auth::Revocation {
            sub: "u1".into(),
            iat_until: n,
        }];
        *slot.lock().expect("lock") = Some(served(&[("k1", &key)], revoked));
        tokio::time::advance(std::time::Duration::from_secs(31)).await;
        assert_eq!(
            verifier.verify(&before, None).await,
            Err(AuthError::Revoked)
        );
        let after = sign(
            &key,
            "k1",
            &Claims {
                iat: n + 1,
                ..claims(n)
            },
        );
        verifier.verify(&after, None).await.expect("issued after");
        let other = sign(
            &key,
            "k1",
            &Claims {
                sub: "u2".into(),
                ..claims(n)
            },
        );
        verifier
            .verify(&other, None)
            .await
            .expect("another subject");
    }

    #[tokio::test]
    async fn bound_tokens_need_their_certificate_and_service_tokens_a_binding() {
        let key = SigningKey::from_bytes(&[1; 32]);
        let (verifier, _) = verifier(vec![("k1", &key)], std::time::Duration::from_secs(10));
        let (mine, theirs) = (
            b"certificate of broker".as_slice(),
            b"another one".as_slice(),
        );
        let service = |cnf: Option<crate::auth::Confirmation>| Claims {
            sub: "svc-broker".into(),
            knd: "internal_service".into(),
            roles: vec![],
            cnf,
            ..claims(now())
        };
        let bound = sign(
            &key,
            "k1",
            &service(Some(crate::auth::Confirmation::of_certificate(mine))),
        );
        let caller = verifier.verify(&bound, Some(mine)).await.expect("bound");
        assert_eq!(caller.service(), Some("broker"));
        for peer in [Some(theirs), None] {
            assert_eq!(
                verifier.verify(&bound, peer).await,
                Err(AuthError::CertificateBinding),
                "a stolen service token is useless without the key"
            );
        }
        let unbound = sign(&key, "k1", &service(None));
        assert_eq!(
            verifier.verify(&unbound, Some(mine)).await,
            Err(AuthError::CertificateBinding),
            "a service token must be bound"
        );
    }

    #[tokio::test]
    async fn oversight_and_content_roles_in_one_token_are_refused() {
        let key = SigningKey::from_bytes(&[1; 32]);
        let (verifier, _) = verifier(vec![("k1", &key)], std::time::Duration::from_secs(10));
        for roles in [
            ["privacy_officer", "team_member"],
            ["coordinator", "aanmelder"],
            ["coordinator", "casusregisseur"],
        ] {
            let token = sign(
                &key,
                "k1",
                &Claims {
                    roles: roles.map(String::from).to_vec(),
                    ..claims(now())
                },
            );
            assert_eq!(verifier.verify(&token, None).await, Err(AuthError::Claims));
        }
        let both_oversight = Claims {
            roles: vec!["coordinator".into(), "privacy_officer".into()],
            ..claims(now())
        };
        verifier
            .verify(&sign(&key, "k1", &both_oversight), None)
            .await
            .expect("two oversight roles may go together");
    }
}
