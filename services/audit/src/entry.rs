//! Audit entries: what may be appended, and their canonical bytes.
//!
//! Entries carry ids and codes only. Every string is checked against a strict
//! alphabet with no spaces, so names and free text cannot be appended by
//! mistake (DESIGN.md invariant 7); the bytes hashed into the tree are the
//! protobuf encoding of the entry with its index and time, written once and
//! served verbatim (prost encodes fields in number order and the entry has no
//! maps, so the encoding is deterministic).

use prost::Message;
use schakel_proto::v1 as pb;

/// Longest id or code accepted in an entry.
const MAX_CODE: usize = 128;
/// Most list items of one kind in an entry.
const MAX_ITEMS: usize = 1000;

/// Why an entry is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct InvalidEntry {
    /// The offending field of the AppendRequest.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

fn invalid(field: impl Into<String>, message: impl Into<String>) -> InvalidEntry {
    InvalidEntry {
        field: field.into(),
        message: message.into(),
    }
}

/// Whether `value` is an id or code: at most 128 characters from
/// `[A-Za-z0-9._:/@+=-]`, no spaces.
pub fn is_code(value: &str) -> bool {
    value.len() <= MAX_CODE
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:/@+=-".contains(&b))
}

fn code(field: &str, value: &str) -> Result<(), InvalidEntry> {
    if is_code(value) {
        Ok(())
    } else {
        Err(invalid(
            field,
            "must be an id or code (no spaces or free text, at most 128 characters)",
        ))
    }
}

fn codes(field: &str, values: &[String]) -> Result<(), InvalidEntry> {
    if values.len() > MAX_ITEMS {
        return Err(invalid(field, format!("at most {MAX_ITEMS} items")));
    }
    values
        .iter()
        .enumerate()
        .try_for_each(|(i, v)| code(&format!("{field}[{i}]"), v))
}

/// Checks an entry submitted for appending.
pub fn validate(entry: &pb::AuditEntry) -> Result<(), InvalidEntry> {
    if entry.index != 0 {
        return Err(invalid(
            "entry.index",
            "is assigned by the log; leave it unset",
        ));
    }
    if entry.time.is_some() {
        return Err(invalid(
            "entry.time",
            "is assigned by the log; leave it unset",
        ));
    }
    let actor = entry
        .actor
        .as_ref()
        .ok_or_else(|| invalid("entry.actor", "is required"))?;
    if actor.subject.is_empty() {
        return Err(invalid("entry.actor.subject", "is required"));
    }
    code("entry.actor.subject", &actor.subject)?;
    code("entry.actor.organisation_id", &actor.organisation_id)?;
    code("entry.actor.partner_type", &actor.partner_type)?;
    if pb::PrincipalKind::try_from(actor.kind).is_err()
        || actor.roles.iter().any(|r| pb::Role::try_from(*r).is_err())
    {
        return Err(invalid("entry.actor", "unknown kind or role"));
    }
    match pb::AuditAction::try_from(entry.action) {
        Ok(pb::AuditAction::Unspecified) | Err(_) => {
            return Err(invalid("entry.action", "a known action is required"));
        }
        Ok(_) => {}
    }
    match pb::Decision::try_from(entry.decision) {
        Ok(pb::Decision::Unspecified) | Err(_) => {
            return Err(invalid("entry.decision", "a known decision is required"));
        }
        Ok(_) => {}
    }
    if pb::AccessDenialReason::try_from(entry.denial_reason).is_err()
        || pb::Phase::try_from(entry.dossier_phase).is_err()
    {
        return Err(invalid("entry", "unknown denial reason or phase"));
    }
    if entry.service.is_empty() {
        return Err(invalid("entry.service", "is required"));
    }
    for (field, value) in [
        ("entry.on_behalf_of", &entry.on_behalf_of),
        ("entry.purpose", &entry.purpose),
        ("entry.basis_denial_reason", &entry.basis_denial_reason),
        ("entry.trace_id", &entry.trace_id),
        ("entry.service", &entry.service),
    ] {
        code(field, value)?;
    }
    if let Some(target) = &entry.target {
        code("entry.target.dossier_id", &target.dossier_id)?;
        code("entry.target.organisation_id", &target.organisation_id)?;
        code("entry.target.resource_id", &target.resource_id)?;
        codes("entry.target.person_ids", &target.person_ids)?;
    }
    if let Some(basis) = &entry.legal_basis {
        code("entry.legal_basis.agreement_id", &basis.agreement_id)?;
    }
    codes("entry.fields_released", &entry.fields_released)?;
    codes("entry.fields_contributed", &entry.fields_contributed)?;
    if entry.fields_withheld.len() > MAX_ITEMS || entry.attributes.len() > MAX_ITEMS {
        return Err(invalid(
            "entry",
            format!("at most {MAX_ITEMS} withheld fields and attributes"),
        ));
    }
    for (i, withheld) in entry.fields_withheld.iter().enumerate() {
        code(&format!("entry.fields_withheld[{i}].path"), &withheld.path)?;
        match pb::AccessDenialReason::try_from(withheld.reason) {
            Ok(pb::AccessDenialReason::Unspecified) | Err(_) => {
                return Err(invalid(
                    format!("entry.fields_withheld[{i}].reason"),
                    "a reason code is required",
                ));
            }
            Ok(_) => {}
        }
    }
    for (i, attribute) in entry.attributes.iter().enumerate() {
        code(&format!("entry.attributes[{i}].key"), &attribute.key)?;
        code(&format!("entry.attributes[{i}].value"), &attribute.value)?;
    }
    Ok(())
}

/// The canonical bytes of `entry` once the log has set its index and time.
pub fn encode(entry: &pb::AuditEntry) -> Vec<u8> {
    entry.encode_to_vec()
}

/// Decodes stored entry bytes.
pub fn decode(bytes: &[u8]) -> anyhow::Result<pb::AuditEntry> {
    Ok(pb::AuditEntry::decode(bytes)?)
}

/// The query columns the log stores beside `entry`, computed from the entry
/// itself: what a verifier compares the stored index with.
pub fn index_row(entry: &pb::AuditEntry) -> pb::IndexRow {
    let actor = entry.actor.clone().unwrap_or_default();
    let target = entry.target.clone().unwrap_or_default();
    let mut person_ids = target.person_ids;
    person_ids.sort_unstable();
    person_ids.dedup();
    pb::IndexRow {
        time: entry.time.map_or(0, |t| t.seconds),
        actor_organisation_id: actor.organisation_id,
        actor_subject: actor.subject,
        target_organisation_id: target.organisation_id,
        dossier_id: target.dossier_id,
        action: entry.action,
        decision: entry.decision,
        purpose: entry.purpose.clone(),
        trace_id: entry.trace_id.clone(),
        person_ids,
    }
}

/// For a retention record: the frontier below which bodies were dropped.
pub fn retention_frontier(entry: &pb::AuditEntry) -> Option<u64> {
    if entry.action != pb::AuditAction::RetentionApply as i32 {
        return None;
    }
    entry
        .attributes
        .iter()
        .find(|a| a.key == "frontier")
        .and_then(|a| a.value.parse().ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> pb::AuditEntry {
        pb::AuditEntry {
            actor: Some(pb::Actor {
                subject: "4f7c2c56-3a52-4d3e-9b47-6a0e5b1f2d11".into(),
                kind: pb::PrincipalKind::User as i32,
                organisation_id: "org-1".into(),
                partner_type: "caw".into(),
                roles: vec![pb::Role::TeamMember as i32],
            }),
            action: pb::AuditAction::DossierRead as i32,
            decision: pb::Decision::PartiallyGranted as i32,
            service: "broker".into(),
            purpose: "case_building".into(),
            fields_released: vec!["registration.violence_forms".into()],
            fields_withheld: vec![pb::WithheldField {
                path: "ggz.clinical_notes".into(),
                reason: pb::AccessDenialReason::PolicyDenied as i32,
            }],
            ..Default::default()
        }
    }

    #[test]
    fn accepts_ids_and_codes() {
        validate(&valid()).expect("valid");
    }

    #[test]
    fn refuses_free_text_and_log_owned_fields() {
        type Change = Box<dyn Fn(&mut pb::AuditEntry)>;
        let cases: Vec<(Change, &str)> = vec![
            (
                Box::new(|e| e.purpose = "help Jan Peeters".into()),
                "entry.purpose",
            ),
            (
                Box::new(|e| e.fields_released.push("naam: Jan".into())),
                "entry.fields_released[1]",
            ),
            (Box::new(|e| e.index = 3), "entry.index"),
            (
                Box::new(|e| e.time = Some(prost_types::Timestamp::default())),
                "entry.time",
            ),
            (Box::new(|e| e.action = 0), "entry.action"),
            (Box::new(|e| e.decision = 99), "entry.decision"),
            (Box::new(|e| e.actor = None), "entry.actor"),
            (Box::new(|e| e.service.clear()), "entry.service"),
            (
                Box::new(|e| e.fields_withheld[0].reason = 0),
                "entry.fields_withheld[0].reason",
            ),
            (
                Box::new(|e| {
                    e.attributes.push(pb::AuditAttribute {
                        key: "note".into(),
                        value: "slaat de kinderen".into(),
                    })
                }),
                "entry.attributes[0].value",
            ),
        ];
        for (change, field) in cases {
            let mut entry = valid();
            change(&mut entry);
            assert_eq!(validate(&entry).expect_err(field).field, field);
        }
    }

    #[test]
    fn encoding_is_deterministic_and_round_trips() {
        let mut entry = valid();
        entry.index = 7;
        entry.time = Some(prost_types::Timestamp {
            seconds: 1_800_000_000,
            nanos: 0,
        });
        let bytes = encode(&entry);
        assert_eq!(bytes, encode(&entry.clone()));
        assert_eq!(decode(&bytes).expect("decodes"), entry);
    }
}
