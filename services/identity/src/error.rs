//! The identity service's errors and their one mapping to gRPC statuses.

use schakel_kit::error as status;
use tonic::{Code, Status};

/// Everything an identity call can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A request field is missing or malformed.
    #[error(transparent)]
    Invalid(#[from] schakel_kit::validate::Invalid),
    /// Credentials did not match (one message for every cause: unknown user,
    /// wrong password, disabled account).
    #[error("invalid credentials")]
    BadCredentials,
    /// Too many failed attempts for this account or peer.
    #[error("too many failed attempts; retry in {retry_after_secs} s")]
    RateLimited {
        /// Seconds until the next attempt is considered.
        retry_after_secs: u64,
    },
    /// Every password-hashing slot is taken and the queue for them is full.
    #[error("too many logins at once; retry shortly")]
    Busy,
    /// The referenced thing does not exist.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A unique value is taken.
    #[error("{0}")]
    AlreadyExists(String),
    /// The request is valid but the state does not allow it.
    #[error("{message}")]
    Precondition {
        /// Reason code.
        reason: &'static str,
        /// Explanation.
        message: String,
    },
    /// The caller may call this, but not for this object (four-eyes).
    #[error("{message}")]
    PermissionDenied {
        /// Reason code.
        reason: &'static str,
        /// Explanation.
        message: String,
    },
    /// The audit log could not record the change: nothing was done.
    #[error(transparent)]
    Audit(schakel_kit::audit::AuditError),
    /// A change did not commit, or committed with its entry still pending.
    #[error(transparent)]
    Commit(#[from] schakel_kit::outbox::CommitError),
    /// Anything unexpected (database, crypto); logged, never shown.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl Error {
    /// An invalid request field.
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        Error::Invalid(schakel_kit::validate::Invalid::new(field, message))
    }
}

impl From<sqlx::Error> for Error {
    fn from(err: sqlx::Error) -> Self {
        Error::Internal(anyhow::Error::new(err).context("database"))
    }
}

impl From<Error> for Status {
    fn from(err: Error) -> Self {
        match err {
            Error::Invalid(invalid) => invalid.into(),
            Error::BadCredentials => {
                status::unauthenticated("INVALID_CREDENTIALS", err.to_string())
            }
            Error::RateLimited { .. } => status::with_reason(
                Code::ResourceExhausted,
                "TOO_MANY_ATTEMPTS",
                err.to_string(),
            ),
            Error::Busy => {
                status::with_reason(Code::ResourceExhausted, "HASHING_BUSY", err.to_string())
            }
            Error::NotFound(what) => Status::not_found(format!("{what} not found")),
            Error::AlreadyExists(message) => Status::already_exists(message),
            Error::Precondition { reason, message } => status::failed_precondition(reason, message),
            Error::PermissionDenied { reason, message } => {
                status::permission_denied(reason, message)
            }
            Error::Audit(err) => err.into(),
            Error::Commit(err) => err.into(),
            Error::Internal(err) => status::internal(&err),
        }
    }
}

/// Shorthand for identity results.
pub type Result<T, E = Error> = std::result::Result<T, E>;
