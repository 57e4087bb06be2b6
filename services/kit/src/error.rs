//! Mapping errors to gRPC statuses with rich details (`google.rpc.*`).
//!
//! Each service has its own `thiserror` enum and exactly one
//! `From<Error> for tonic::Status`; these helpers build the statuses so that
//! every service answers the same way: precise codes and details for the
//! caller's mistakes, an opaque `INTERNAL` for everything else.

use std::collections::HashMap;

use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

/// The `ErrorInfo.domain` of every Schakel error.
pub const ERROR_DOMAIN: &str = "schakel.v1";

/// `INVALID_ARGUMENT` naming the offending request field (a `BadRequest`
/// field violation).
pub fn invalid_argument(field: &str, description: impl Into<String>) -> Status {
    let description = description.into();
    Status::with_error_details(
        Code::InvalidArgument,
        format!("{field}: {description}"),
        ErrorDetails::with_bad_request_violation(field, description),
    )
}

/// A status carrying a machine-readable reason code (`ErrorInfo.reason`),
/// e.g. `PERMISSION_DENIED` with reason `ROLE_REQUIRED`.
pub fn with_reason(code: Code, reason: &str, message: impl Into<String>) -> Status {
    Status::with_error_details(
        code,
        message,
        ErrorDetails::with_error_info(reason, ERROR_DOMAIN, HashMap::new()),
    )
}

/// `PERMISSION_DENIED` with a reason code.
pub fn permission_denied(reason: &str, message: impl Into<String>) -> Status {
    with_reason(Code::PermissionDenied, reason, message)
}

/// `UNAUTHENTICATED` with a reason code.
pub fn unauthenticated(reason: &str, message: impl Into<String>) -> Status {
    with_reason(Code::Unauthenticated, reason, message)
}

/// `FAILED_PRECONDITION` with a reason code.
pub fn failed_precondition(reason: &str, message: impl Into<String>) -> Status {
    with_reason(Code::FailedPrecondition, reason, message)
}

/// An opaque `INTERNAL` status. The full cause chain goes to the log (which
/// never carries personal data: errors are built from ids and codes only); the
/// caller learns nothing about the internals.
pub fn internal(err: &anyhow::Error) -> Status {
    let incident = uuid::Uuid::new_v4();
    tracing::error!(%incident, error = format!("{err:#}"), "internal error");
    Status::internal(format!("internal error (incident {incident})"))
}

/// The errors of a service call, shared by the services whose failures need
/// nothing beyond these; exactly one mapping to gRPC statuses.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// A request field is missing or malformed.
    #[error(transparent)]
    Invalid(#[from] crate::validate::Invalid),
    /// The referenced thing does not exist.
    #[error("{0} not found")]
    NotFound(&'static str),
    /// A unique value is taken.
    #[error("{0}")]
    AlreadyExists(String),
    /// The request is valid but the state does not allow it.
    #[error("{message}")]
    Precondition {
        /// Reason code, e.g. `NOT_A_DRAFT`.
        reason: &'static str,
        /// Explanation (ids and codes only).
        message: String,
    },
    /// The caller may not do this.
    #[error("{message}")]
    PermissionDenied {
        /// Reason code, e.g. `INTERNAL_ONLY`.
        reason: &'static str,
        /// Explanation.
        message: String,
    },
    /// The audit log could not record the change: nothing was done.
    #[error(transparent)]
    Audit(#[from] crate::audit::AuditError),
    /// A change did not commit, or committed with its entry still pending.
    #[error(transparent)]
    Commit(#[from] crate::outbox::CommitError),
    /// Anything unexpected (database, a peer service); logged, never shown.
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ServiceError {
    /// An invalid request field.
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        ServiceError::Invalid(crate::validate::Invalid::new(field, message))
    }

    /// A failed precondition with its reason code.
    pub fn precondition(reason: &'static str, message: impl Into<String>) -> Self {
        ServiceError::Precondition {
            reason,
            message: message.into(),
        }
    }
}

impl From<sqlx::Error> for ServiceError {
    fn from(err: sqlx::Error) -> Self {
        ServiceError::Internal(anyhow::Error::new(err).context("database"))
    }
}

impl From<ServiceError> for Status {
    fn from(err: ServiceError) -> Self {
        match err {
            ServiceError::Invalid(invalid) => invalid.into(),
            ServiceError::NotFound(what) => Status::not_found(format!("{what} not found")),
            ServiceError::AlreadyExists(message) => Status::already_exists(message),
            ServiceError::Precondition { reason, message } => failed_precondition(reason, message),
            ServiceError::PermissionDenied { reason, message } => {
                permission_denied(reason, message)
            }
            ServiceError::Audit(err) => err.into(),
            ServiceError::Commit(err) => err.into(),
            ServiceError::Internal(err) => internal(&err),
        }
    }
}

/// Gives failures to read a request the status the caller needs, before
/// any handler ran (tonic reports them in the response headers):
/// - a message over the size limit: `RESOURCE_EXHAUSTED` (tonic says
///   `OUT_OF_RANGE`);
/// - a malformed, truncated or wrongly framed message: `INVALID_ARGUMENT`
///   (tonic says `INTERNAL`, which would blame the server).
pub fn normalise_transport_status(headers: &mut http::HeaderMap) {
    const TOO_LARGE: &[&str] = &["message%20length%20too%20large", "message length too large"];
    const MALFORMED: &[&str] = &[
        "failed%20to%20decode%20Protobuf%20message",
        "failed to decode Protobuf message",
        "Unexpected%20EOF%20decoding%20stream",
        "Unexpected EOF decoding stream",
        "protocol%20error:%20received%20message",
        "protocol error: received message",
        "Error%20decompressing",
        "Error decompressing",
    ];
    let status = headers
        .get("grpc-status")
        .and_then(|s| s.to_str().ok())
        .unwrap_or("");
    let message = headers
        .get("grpc-message")
        .and_then(|m| m.to_str().ok())
        .unwrap_or("");
    let matches = |list: &[&str]| list.iter().any(|m| message.contains(m));
    let code = match status {
        "11" if matches(TOO_LARGE) => Code::ResourceExhausted,
        "13" if matches(MALFORMED) => Code::InvalidArgument,
        _ => return,
    };
    headers.insert("grpc-status", http::HeaderValue::from(code as i32));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(status: &'static str, message: &'static str) -> http::HeaderMap {
        let mut h = http::HeaderMap::new();
        h.insert("grpc-status", http::HeaderValue::from_static(status));
        h.insert("grpc-message", http::HeaderValue::from_static(message));
        normalise_transport_status(&mut h);
        h
    }

    #[test]
    fn request_decoding_failures_get_precise_codes() {
        let h = headers(
            "11",
            "Error,%20decoded%20message%20length%20too%20large:%20found%20x",
        );
        assert_eq!(h["grpc-status"], "8");
        let h = headers(
            "13",
            "failed%20to%20decode%20Protobuf%20message:%20invalid%20wire%20type",
        );
        assert_eq!(h["grpc-status"], "3");
        let h = headers("13", "Unexpected%20EOF%20decoding%20stream.");
        assert_eq!(h["grpc-status"], "3");
        // Our own internal errors and other statuses stay as they are.
        assert_eq!(
            headers("13", "internal%20error%20(incident%20x)")["grpc-status"],
            "13"
        );
        assert_eq!(
            headers("11", "page%20out%20of%20range")["grpc-status"],
            "11"
        );
    }

    #[test]
    fn invalid_argument_names_the_field() {
        let status = invalid_argument("organisation.kbo_number", "bad check digits");
        assert_eq!(status.code(), Code::InvalidArgument);
        let details = status.get_error_details();
        let violations = &details.bad_request().expect("bad request").field_violations;
        assert_eq!(violations[0].field, "organisation.kbo_number");
    }

    #[test]
    fn internal_hides_the_cause() {
        let status = internal(&anyhow::anyhow!("db password is hunter2"));
        assert_eq!(status.code(), Code::Internal);
        assert!(!status.message().contains("hunter2"));
    }

    #[test]
    fn reasons_are_carried() {
        let status = permission_denied("ROLE_REQUIRED", "coordinators only");
        assert_eq!(
            status
                .get_error_details()
                .error_info()
                .expect("info")
                .reason,
            "ROLE_REQUIRED"
        );
    }
}
