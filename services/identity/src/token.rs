//! Signing access tokens.

use jsonwebtoken::{Algorithm, Header};
use schakel_kit::auth::{Claims, Confirmation, PrincipalKind, Role, TOKEN_TYPE};

use crate::keys::KeyStore;

/// Who a token is for.
#[derive(Clone, Debug)]
pub struct Principal {
    /// User or service-account id.
    pub subject: String,
    /// User or service account.
    pub kind: PrincipalKind,
    /// Organisation id.
    pub organisation_id: String,
    /// The organisation's partner type.
    pub partner_type: String,
    /// The organisation's district.
    pub region: String,
    /// Roles.
    pub roles: Vec<Role>,
    /// The client certificate the token is bound to (RFC 8705 `cnf`): set
    /// for every token of the client-certificate grant.
    pub bound_to: Option<Confirmation>,
    /// Tokens of this principal issued at or before this second are revoked
    /// (a service account given a new secret): a new token is issued after it.
    pub revoked_until: Option<i64>,
}

/// A signed token and its claims.
pub struct Signed {
    /// Compact JWS.
    pub token: String,
    /// What it says.
    pub claims: Claims,
}

/// Signs a token for `principal` valid from `now` for `ttl_secs`, with the
/// active key (`alg` EdDSA, `kid` its RFC 7638 thumbprint).
pub async fn sign(
    keys: &KeyStore,
    issuer: &str,
    audience: &str,
    principal: Principal,
    now: i64,
    ttl_secs: i64,
) -> anyhow::Result<Signed> {
    let (kid, key) = keys.active().await?;
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(kid);
    header.typ = Some(TOKEN_TYPE.into());
    // Never issue a token that is void already: after a revocation in this
    // very second, the token starts in the next (within every verifier's leeway).
    let now = principal.revoked_until.map_or(now, |r| now.max(r + 1));
    let claims = Claims {
        iss: issuer.into(),
        sub: principal.subject,
        aud: audience.into(),
        iat: now,
        nbf: now,
        exp: now + ttl_secs,
        jti: uuid::Uuid::new_v4().to_string(),
        org: principal.organisation_id,
        ptype: principal.partner_type,
        roles: principal
            .roles
            .iter()
            .map(|r| r.as_str().to_owned())
            .collect(),
        region: principal.region,
        knd: principal.kind.as_str().into(),
        cnf: principal.bound_to,
    };
    let token = jsonwebtoken::encode(&header, &claims, &key)?;
    Ok(Signed { token, claims })
}
