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
    /// RFC 8705 confirmation: the token is bound to this mTLS client
    /// certificate and is refused on a connection presenting another (or none).
    /// Every certificate-grant token has one; internal-service tokens must.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cnf: Option<Confirmation>,
}

/// The RFC 8705 `cnf` claim of a certificate-bound token.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Confirmation {
    /// `x5t#S256`: the base64url SHA-256 of the certificate's DER encoding.
    #[serde(rename = "x5t#S256")]
    pub x5t_s256: String,
}

impl Confirmation {
    /// The confirmation of a DER-encoded certificate.
    pub fn of_certificate(der: &[u8]) -> Self {
        use base64::Engine;
        use sha2::Digest;
        Confirmation {
            x5t_s256: base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(sha2::Sha256::digest(der)),
        }
    }

    /// The confirmation of the first certificate in a PEM file's text.
    pub fn of_pem(pem: &str) -> anyhow::Result<Self> {
        let (_, parsed) = x509_parser::pem::parse_x509_pem(pem.as_bytes())
            .map_err(|e| anyhow::anyhow!("not a PEM certificate: {e}"))?;
        Ok(Self::of_certificate(&parsed.contents))
    }
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

/// An RFC 7517 JWK set, with Schakel's revocations as an extra member
/// (RFC 7517 section 5: members a client does not understand are ignored).
#[derive(Clone, Debug, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct JwkSet {
    /// The keys: the signing key and the next one, never a retired key.
    pub keys: Vec<Jwk>,
    /// Principals whose tokens issued at or before a time are void: disabled
    /// users and service accounts, and service accounts given a new secret,
    /// for as long as a token issued before could still be unexpired.
    #[serde(
        default,
        rename = "schakel_revoked",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub revoked: Vec<Revocation>,
}

/// Tokens of `sub` issued at or before `iat_until` are refused.
#[derive(Clone, Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Revocation {
    /// The subject (user or service-account id; random, no personal data).
    pub sub: String,
    /// Seconds since the epoch: tokens with `iat` at or before are void.
    pub iat_until: i64,
}
