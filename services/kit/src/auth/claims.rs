//! The JWT claims Schakel issues and the JWK set that verifies them.

use serde::{Deserialize, Serialize};

/// The `typ` header of Schakel access tokens.
pub const TOKEN_TYPE: &str = "JWT";

/// Claims of a Schakel access token.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Claims {
    /// Issuer.
    pub iss: String,
    /// Subject: user, service-account or service id.
    pub sub: String,
    /// Audience: always `schakel`.
    pub aud: String,
    /// Issued at (seconds since the epoch).
    pub iat: i64,
    /// Not before.
    pub nbf: i64,
    /// Expiry.
    pub exp: i64,
    /// Token id.
    pub jti: String,
    /// Organisation id.
    pub org: String,
    /// Partner type code.
    pub ptype: String,
    /// Role codes.
    pub roles: Vec<String>,
    /// Judicial district.
    pub region: String,
    /// Principal kind: `user`, `service_account` or `internal_service`.
    pub knd: String,
}

/// An Ed25519 public key as an RFC 8037 JWK.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Jwk {
    /// Always `OKP`.
    pub kty: String,
    /// Always `Ed25519`.
    pub crv: String,
    /// The public key, base64url without padding.
    pub x: String,
    /// Key id.
    pub kid: String,
    /// Always `EdDSA`.
    pub alg: String,
    /// Always `sig`.
    #[serde(rename = "use")]
    pub use_: String,
}

impl Jwk {
    /// A signing JWK for a raw 32-byte Ed25519 public key.
    pub fn ed25519(kid: &str, public_key: &[u8]) -> Self {
        use base64::Engine;
        Jwk {
            kty: "OKP".into(),
            crv: "Ed25519".into(),
            x: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(public_key),
            kid: kid.into(),
            alg: "EdDSA".into(),
            use_: "sig".into(),
        }
    }
}

/// An RFC 7517 JWK set.
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct JwkSet {
    /// The keys.
    pub keys: Vec<Jwk>,
}
