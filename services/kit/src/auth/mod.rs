//! Token verification: every call is authenticated (DESIGN.md invariant 5).
//!
//! Tokens are Ed25519-signed JWTs issued by the identity service. The
//! [`TokenVerifier`] checks them against the identity service's JWKS; the
//! [`AuthLayer`] runs it in front of every service and hands handlers a typed
//! [`Caller`].

mod caller;
mod claims;
mod layer;
mod verifier;

pub use caller::{Caller, INTERNAL_SUBJECT_PREFIX, PrincipalKind, Role};
pub use claims::{Claims, Confirmation, Jwk, JwkSet, Revocation, TOKEN_TYPE};
pub use layer::{AuthLayer, AuthService, PUBLIC_METHODS};
pub use verifier::{AuthError, JwksFetcher, TokenVerifier, remote_jwks};
