//! Refusals: the only way a broker call says no. A refusal carries what the
//! audit entry of the decision needs ([`Scope`]); the dispatcher records
//! every refusal that leaves a handler, so a "no" is never silent.

use std::collections::HashMap;

use schakel_kit::error::ERROR_DOMAIN;
use schakel_proto::v1 as pb;
use tonic::{Code, Status};
use tonic_types::{ErrorDetails, StatusExt};

use super::Scope;

/// A decision against the caller, to record and then to answer with.
#[derive(Debug)]
pub(crate) struct Refusal {
    code: Code,
    reason: &'static str,
    message: String,
    metadata: Vec<(&'static str, String)>,
    pub(super) denial: pb::AccessDenialReason,
    pub(super) scope: Scope,
}

impl Refusal {
    fn new(
        code: Code,
        reason: &'static str,
        message: impl Into<String>,
        denial: pb::AccessDenialReason,
        scope: Scope,
    ) -> Self {
        Refusal {
            code,
            reason,
            message: message.into(),
            metadata: Vec::new(),
            denial,
            scope,
        }
    }

    /// Adds ErrorInfo metadata.
    pub(crate) fn with(mut self, key: &'static str, value: impl Into<String>) -> Self {
        self.metadata.push((key, value.into()));
        self
    }

    /// The caller's role may not use this RPC (or this dossier action).
    pub(crate) fn role(scope: Scope, message: &str) -> Self {
        use pb::AccessDenialReason as D;
        Self::new(
            Code::PermissionDenied,
            "ROLE_NOT_PERMITTED",
            message,
            D::RoleNotPermitted,
            scope,
        )
    }

    /// Not in the circle (also for an unknown dossier: existence is not revealed).
    pub(crate) fn not_in_circle(scope: Scope) -> Self {
        Self::new(
            Code::PermissionDenied,
            "NOT_IN_CIRCLE",
            "your organisation is not in this dossier's circle",
            pb::AccessDenialReason::NotInCircle,
            scope,
        )
    }

    /// The dossier was crypto-shredded.
    pub(crate) fn erased(scope: Scope) -> Self {
        Self::new(
            Code::NotFound,
            "ERASED",
            "the dossier was erased",
            pb::AccessDenialReason::Erased,
            scope,
        )
    }

    /// An object of another organisation, or none: the two look the same.
    pub(crate) fn not_found(scope: Scope, message: &str) -> Self {
        Self::new(
            Code::NotFound,
            "NOT_FOUND",
            message,
            pb::AccessDenialReason::NotInCircle,
            scope,
        )
    }

    /// No agreement covers the caller (`reason`: the BasisDenialReason name).
    pub(crate) fn no_basis(scope: Scope, reason: &str) -> Self {
        Self::new(
            Code::PermissionDenied,
            "NO_LEGAL_BASIS",
            format!("no agreement covers this purpose for your organisation now ({reason})"),
            pb::AccessDenialReason::NoLegalBasis,
            scope,
        )
        .with("basis_denial_reason", reason)
    }

    /// The declared purpose does not fit the dossier's phase.
    pub(crate) fn purpose(scope: Scope, allowed: &[&str]) -> Self {
        Self::new(
            Code::FailedPrecondition,
            "PURPOSE_NOT_FOR_PHASE",
            format!(
                "this purpose does not fit the dossier's phase; it allows: {}",
                allowed.join(", ")
            ),
            pb::AccessDenialReason::PurposeNotForPhase,
            scope,
        )
        .with("allowed_purposes", allowed.join(","))
    }

    /// The policy does not allow `field` for this action.
    pub(crate) fn policy(scope: Scope, field: &str, message: String) -> Self {
        Self::new(
            Code::PermissionDenied,
            "POLICY_DENIED",
            message,
            pb::AccessDenialReason::PolicyDenied,
            scope,
        )
        .with("field", field)
    }

    /// The state of the dossier or request does not allow the operation.
    pub(crate) fn precondition(scope: Scope, reason: &'static str, message: &str) -> Self {
        Self::new(
            Code::FailedPrecondition,
            reason,
            message,
            pb::AccessDenialReason::Precondition,
            scope,
        )
    }

    /// Not the party that may do this to an information request.
    pub(crate) fn not_party(scope: Scope, reason: &'static str, message: &str) -> Self {
        Self::new(
            Code::PermissionDenied,
            reason,
            message,
            pb::AccessDenialReason::Precondition,
            scope,
        )
    }

    /// The dossier is full (persons or contributions).
    pub(crate) fn limit(scope: Scope, message: String) -> Self {
        Self::new(
            Code::ResourceExhausted,
            "DOSSIER_LIMIT",
            message,
            pb::AccessDenialReason::Precondition,
            scope,
        )
    }

    /// The ErrorInfo reason code.
    pub(crate) fn reason(&self) -> &'static str {
        self.reason
    }

    /// The status to answer with.
    pub(crate) fn status(&self) -> Status {
        let metadata: HashMap<String, String> = self
            .metadata
            .iter()
            .map(|(k, v)| ((*k).to_owned(), v.clone()))
            .collect();
        Status::with_error_details(
            self.code,
            self.message.clone(),
            ErrorDetails::with_error_info(self.reason, ERROR_DOMAIN, metadata),
        )
    }
}
