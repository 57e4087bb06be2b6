//! Refusals and the audit log: a refused call with the audit entry that
//! records it, a refusal with its reason code, and the entries of an action.

use super::*;

impl TestApp {
    /// Awaits `call`, which must be refused with `code` and ErrorInfo
    /// `reason`, and returns the status with the audit entry of `action`
    /// appended meanwhile: decision DENIED, its denial reason as `denied` says.
    pub async fn refused<T: std::fmt::Debug>(
        &self,
        call: impl std::future::Future<Output = Result<T, tonic::Status>>,
        code: tonic::Code,
        reason: &str,
        action: pb::AuditAction,
        denied: Denied,
    ) -> (tonic::Status, pb::AuditEntry) {
        let mark = self.audit_entries().await.len();
        let status = assert_code(call.await, code);
        assert_eq!(error_reason(&status), reason, "{status:?}");
        let appended = self.audit_entries().await.split_off(mark);
        let Some(entry) = appended.iter().find(|e| e.action == action as i32).cloned() else {
            let actions: Vec<_> = appended.iter().map(|e| e.action().as_str_name()).collect();
            panic!("no {action:?} entry records the {reason} refusal (appended: {actions:?})");
        };
        assert_eq!(
            entry.decision,
            pb::Decision::Denied as i32,
            "{reason}: {entry:?}"
        );
        let expected = match denied {
            Denied::As(r) => Some(r),
            Denied::Precondition => {
                assert!(
                    entry
                        .attributes
                        .iter()
                        .any(|a| a.key == "refusal" && a.value == reason),
                    "attribute refusal={reason} missing: {:?}",
                    entry.attributes
                );
                Some(pb::AccessDenialReason::Precondition)
            }
            Denied::Any => None,
        };
        if let Some(r) = expected {
            assert_eq!(entry.denial_reason(), r, "{reason}: {entry:?}");
        }
        (status, entry)
    }

    /// [`refused`](Self::refused) for the caller's role: PERMISSION_DENIED
    /// ROLE_NOT_PERMITTED, audited as such.
    pub async fn refused_role<T: std::fmt::Debug>(
        &self,
        call: impl std::future::Future<Output = Result<T, tonic::Status>>,
        action: pb::AuditAction,
    ) -> (tonic::Status, pb::AuditEntry) {
        let denied = Denied::As(pb::AccessDenialReason::RoleNotPermitted);
        let role = "ROLE_NOT_PERMITTED";
        self.refused(call, tonic::Code::PermissionDenied, role, action, denied)
            .await
    }

    /// [`refused`](Self::refused) for the state of the dossier or request:
    /// `code` and `reason`, audited as PRECONDITION with that reason.
    pub async fn refused_state<T: std::fmt::Debug>(
        &self,
        call: impl std::future::Future<Output = Result<T, tonic::Status>>,
        code: tonic::Code,
        reason: &str,
        action: pb::AuditAction,
    ) -> (tonic::Status, pb::AuditEntry) {
        self.refused(call, code, reason, action, Denied::Precondition)
            .await
    }

    /// [`refused`](Self::refused) for want of a legal basis: PERMISSION_DENIED
    /// NO_LEGAL_BASIS, audited as such, the status and the entry both naming
    /// `basis_reason` (e.g. "BASIS_DENIAL_REASON_REVOKED").
    pub async fn refused_without_basis<T: std::fmt::Debug>(
        &self,
        call: impl std::future::Future<Output = Result<T, tonic::Status>>,
        action: pb::AuditAction,
        basis_reason: &str,
    ) -> (tonic::Status, pb::AuditEntry) {
        let (status, entry) = self
            .refused(
                call,
                tonic::Code::PermissionDenied,
                "NO_LEGAL_BASIS",
                action,
                Denied::As(pb::AccessDenialReason::NoLegalBasis),
            )
            .await;
        assert_eq!(error_metadata(&status, "basis_denial_reason"), basis_reason);
        assert_eq!(entry.basis_denial_reason, basis_reason, "{action:?}");
        (status, entry)
    }

    /// The audit entry at `index` (panics when there is none).
    pub async fn entry_at(&self, index: u64) -> pb::AuditEntry {
        let entries = self.audit_entries().await;
        let found = entries.into_iter().find(|e| e.index == index);
        found.unwrap_or_else(|| panic!("no audit entry at {index}"))
    }

    /// Every audit entry of `action`, oldest first.
    pub async fn entries_of(&self, action: pb::AuditAction) -> Vec<pb::AuditEntry> {
        let mut entries = self.audit_entries().await;
        entries.retain(|e| e.action == action as i32);
        entries
    }

    /// The oldest audit entry of `action` with decision GRANTED (panics when
    /// there is none).
    pub async fn granted(&self, action: pb::AuditAction) -> pb::AuditEntry {
        let entries = self.entries_of(action).await;
        let found = entries
            .into_iter()
            .find(|e| e.decision == pb::Decision::Granted as i32);
        found.unwrap_or_else(|| panic!("no granted {action:?} entry"))
    }

    /// Asserts that none of `secrets` stands anywhere in the bytes of the
    /// audit log's entries.
    pub async fn assert_audit_log_lacks(&self, secrets: &[&str]) {
        let log = self.audit.log();
        let size = log.checkpoint().await.unwrap().tree_size;
        let bytes: Vec<u8> = log
            .leaves(0, size)
            .await
            .unwrap()
            .into_iter()
            .flat_map(|l| l.entry_bytes)
            .collect();
        for secret in secrets {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{secret} in the audit log"
            );
        }
    }
}

/// Asserts that `result` is refused with `code` and ErrorInfo `reason`;
/// returns the status.
#[track_caller]
pub fn assert_refusal<T: std::fmt::Debug>(
    result: Result<T, tonic::Status>,
    code: tonic::Code,
    reason: &str,
) -> tonic::Status {
    let status = assert_code(result, code);
    assert_eq!(error_reason(&status), reason, "{status:?}");
    status
}

/// The denial reason a refusal's audit entry must carry.
#[derive(Clone, Copy, Debug)]
pub enum Denied {
    /// This reason.
    As(pb::AccessDenialReason),
    /// PRECONDITION, with the attribute "refusal" holding the ErrorInfo reason.
    Precondition,
    /// Any (the contract names none).
    Any,
}

/// An ErrorInfo metadata value of a status ("" when absent).
pub fn error_metadata(status: &tonic::Status, key: &str) -> String {
    use tonic_types::StatusExt;
    status
        .get_error_details()
        .error_info()
        .and_then(|i| i.metadata.get(key).cloned())
        .unwrap_or_default()
}
