//! What an audit entry of a broker decision says: the dossier, persons and
//! objects concerned, purpose, legal basis, policy version, phase and the
//! fields released, withheld or contributed. Gates fill it as they pass;
//! handlers add what their change concerned.

use schakel_proto::v1 as pb;

/// The subject matter of one decision.
#[derive(Clone, Debug, Default)]
pub(crate) struct Scope {
    pub(crate) dossier_id: String,
    pub(crate) person_ids: Vec<String>,
    /// Organisation affected when it is not the caller's own.
    pub(crate) organisation: String,
    /// The object acted on when it is not the dossier.
    pub(crate) resource_id: String,
    pub(crate) purpose: String,
    pub(crate) basis: Option<pb::LegalBasisRef>,
    pub(crate) basis_denial: String,
    pub(crate) policy_version: u64,
    pub(crate) phase: i32,
    pub(crate) released: Vec<String>,
    pub(crate) withheld: Vec<pb::WithheldField>,
    pub(crate) contributed: Vec<String>,
    /// Codes only, never personal data.
    pub(crate) attributes: Vec<(&'static str, String)>,
}

impl Scope {
    /// The scope of a call about `dossier_id` (possibly unknown).
    pub(crate) fn of_dossier(dossier_id: &str, policy_version: u64) -> Self {
        Scope {
            dossier_id: dossier_id.to_owned(),
            policy_version,
            ..Default::default()
        }
    }

    /// The audit entry of this scope.
    pub(crate) fn entry(
        self,
        actor: pb::Actor,
        on_behalf_of: &str,
        action: pb::AuditAction,
        decision: pb::Decision,
        denial: pb::AccessDenialReason,
    ) -> pb::AuditEntry {
        let attributes: Vec<(&str, &str)> = self
            .attributes
            .iter()
            .map(|(k, v)| (*k, v.as_str()))
            .collect();
        let mut entry = schakel_kit::audit::entry(actor, action, decision, "broker", &attributes);
        entry.on_behalf_of = on_behalf_of.into();
        entry.target = Some(pb::AuditTarget {
            dossier_id: self.dossier_id,
            person_ids: self.person_ids,
            organisation_id: self.organisation,
            resource_id: self.resource_id,
        });
        entry.purpose = self.purpose;
        entry.legal_basis = self.basis;
        entry.policy_version = self.policy_version;
        entry.dossier_phase = self.phase;
        entry.fields_released = self.released;
        entry.fields_withheld = self.withheld;
        entry.fields_contributed = self.contributed;
        entry.denial_reason = denial as i32;
        entry.basis_denial_reason = self.basis_denial;
        entry
    }
}
