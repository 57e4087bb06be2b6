//! Helpers of the pipeline tests (issue 12): other Schakel services, a
//! dossier with a circle, questions, audited refusals, and walking a dossier
//! through its phases.

use super::*;

impl TestApp {
    /// Another Schakel service, e.g. `as_service("policy")`: an
    /// internal-service token with subject `svc-<service>`.
    pub fn as_service(&self, service: &str) -> Client {
        let token = self.issuer.token(
            PrincipalKind::InternalService,
            &format!("svc-{service}"),
            "",
            "",
            &[],
        );
        self.client(token)
    }

    /// The seeded family registered under `key` by the police, with the
    /// organisations of `partners` added to its circle by the police's team.
    pub async fn family_with(&self, key: &str, partners: &[&str]) -> pb::RegisterDossierResponse {
        let registered = self.register_family(key).await;
        let id = &registered.dossier.as_ref().unwrap().dossier_id;
        for partner in partners {
            self.team("politie")
                .add_participant(pb::AddParticipantRequest {
                    dossier_id: id.clone(),
                    organisation_id: self.orgs[partner].clone(),
                })
                .await
                .unwrap();
        }
        registered
    }

    /// A question of the caller's organisation to `to` (a partner) about
    /// `fields` of a dossier, due in a week.
    pub fn ask(
        &self,
        dossier_id: &str,
        to: &str,
        fields: &[&str],
        purpose: &str,
    ) -> pb::RequestInformationRequest {
        pb::RequestInformationRequest {
            dossier_id: dossier_id.into(),
            to_organisation_id: self.orgs[to].clone(),
            fields: fields.iter().map(|f| (*f).to_owned()).collect(),
            person_ids: vec![],
            purpose: purpose.into(),
            justification: "Zicht op de toestand van Tom voor het veiligheidsplan.".into(),
            due_at: Some(to_timestamp(self.clock.now() + 7 * DAY)),
            idempotency_key: String::new(),
        }
    }

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

/// The pseudonymous id of a registered person by the client_ref it had.
pub fn person(registered: &pb::RegisterDossierResponse, client_ref: &str) -> String {
    registered
        .persons
        .iter()
        .find(|p| p.client_ref == client_ref)
        .unwrap_or_else(|| panic!("no person {client_ref}"))
        .person_id
        .clone()
}

/// A text value.
pub fn text_value(t: &str) -> pb::FieldValue {
    pb::FieldValue {
        kind: Some(pb::field_value::Kind::Text(t.into())),
    }
}

/// Moves a dossier from registration along case_building, assessment and
/// case_direction (track chain approach) until it is in `target`.
pub async fn advance_to(client: &Client, dossier_id: &str, target: pb::Phase) {
    use pb::Phase::*;
    for (from, to) in [
        (Registration, CaseBuilding),
        (CaseBuilding, Assessment),
        (Assessment, CaseDirection),
    ] {
        let track = if to == CaseDirection {
            pb::Track::ChainApproach
        } else {
            pb::Track::Unspecified
        };
        client
            .clone()
            .advance_phase(pb::AdvancePhaseRequest {
                dossier_id: dossier_id.into(),
                expected_phase: from as i32,
                target_phase: to as i32,
                track: track as i32,
                reason: "teamoverleg".into(),
            })
            .await
            .unwrap();
        if to == target {
            return;
        }
    }
    panic!("advance_to goes up to case_direction, not {target:?}");
}
