//! `SubjectReport`: GDPR art. 15 with art. 23 restrictions. Each disclosure
//! names the recipient (or source) organisation by name, the date and the
//! purpose, and the fields by category (CJEU C-154/21 and C-579/21). A privacy
//! officer of a partner organisation reports on their own organisation's
//! disclosures; the all-seeing officer on the whole chain. The report, its
//! scope and its restrictions are logged before it is returned.

use std::collections::HashMap;

use schakel_kit::{error, ports::Directory, time::to_timestamp};
use schakel_proto::v1 as pb;
use sha2::{Digest, Sha256};
use tonic::Status;

use crate::{
    entry,
    postings::Kind,
    query::{Filter, check_code, ts_secs},
    reading::Review,
};

const MAX_PERSONS: usize = 50;

/// Which organisation received or supplied which fields in one entry.
fn disclosure(index: u64, e: &pb::AuditEntry) -> Option<pb::SubjectDisclosure> {
    let (kind, fields) = if !e.fields_released.is_empty() {
        (pb::DisclosureKind::Received, &e.fields_released)
    } else if !e.fields_contributed.is_empty() {
        (pb::DisclosureKind::Supplied, &e.fields_contributed)
    } else {
        return None;
    };
    let actor = e.actor.clone().unwrap_or_default();
    let mut categories: Vec<String> = fields
        .iter()
        .map(|f| f.split('.').next().unwrap_or(f).to_owned())
        .collect();
    categories.sort();
    categories.dedup();
    Some(pb::SubjectDisclosure {
        time: e.time,
        kind: kind as i32,
        organisation_id: actor.organisation_id,
        organisation_name: String::new(),
        partner_type: actor.partner_type,
        purpose: e.purpose.clone(),
        field_paths: fields.clone(),
        field_categories: categories,
        dossier_id: e
            .target
            .as_ref()
            .map(|t| t.dossier_id.clone())
            .unwrap_or_default(),
        legal_basis: e.legal_basis.clone(),
        audit_index: index,
    })
}

fn matches(r: &pb::ReportRestriction, d: &pb::SubjectDisclosure) -> bool {
    let any = |list: &[String], value: &str| list.is_empty() || list.iter().any(|x| x == value);
    let prefix = r.field_prefixes.is_empty()
        || d.field_paths
            .iter()
            .any(|p| r.field_prefixes.iter().any(|f| p.starts_with(f.as_str())));
    let time = d.time.as_ref().map_or(0, |t| t.seconds);
    let in_time = r.time_range.as_ref().is_none_or(|range| {
        ts_secs(range.from.as_ref()).is_none_or(|f| time >= f)
            && ts_secs(range.until.as_ref()).is_none_or(|u| time <= u)
    });
    any(&r.organisation_ids, &d.organisation_id)
        && any(&r.partner_types, &d.partner_type)
        && any(&r.purposes, &d.purpose)
        && any(&r.dossier_ids, &d.dossier_id)
        && prefix
        && in_time
}

fn validate_report(req: &pb::SubjectReportRequest) -> Result<(), Status> {
    if req.person_ids.is_empty() || req.person_ids.len() > MAX_PERSONS {
        return Err(error::invalid_argument(
            "person_ids",
            format!("1 to {MAX_PERSONS} pseudonymous person ids"),
        ));
    }
    for (i, p) in req.person_ids.iter().enumerate() {
        if p.is_empty() {
            return Err(error::invalid_argument(
                &format!("person_ids[{i}]"),
                "must not be empty",
            ));
        }
        check_code(&format!("person_ids[{i}]"), p)?;
    }
    check_code("request_reference", &req.request_reference)?;
    for (i, r) in req.restrictions.iter().enumerate() {
        if matches!(
            pb::RestrictionGround::try_from(r.ground),
            Ok(pb::RestrictionGround::Unspecified) | Err(_)
        ) {
            return Err(error::invalid_argument(
                &format!("restrictions[{i}].ground"),
                "a GDPR art. 23 ground is required",
            ));
        }
        let len = r.justification.trim().chars().count();
        if len == 0 || len > 4000 {
            return Err(error::invalid_argument(
                &format!("restrictions[{i}].justification"),
                "a reason (1-4000 characters) is required",
            ));
        }
    }
    Ok(())
}

/// `SubjectReport`: the disclosures of one data subject's data, minus the
/// restricted ones; the report and its restrictions are logged (justifications
/// only as SHA-256, since they may name people).
pub(crate) async fn subject_report(
    review: Review<'_>,
    directory: &dyn Directory,
    req: pb::SubjectReportRequest,
) -> Result<pb::SubjectReportResponse, Status> {
    validate_report(&req)?;
    let log = review.log();
    let mut filter = Filter::new();
    filter.groups.push(
        req.person_ids
            .iter()
            .map(|p| (Kind::Person, p.clone()))
            .collect(),
    );
    filter.time_range(req.time_range.as_ref());
    let mut rows = filter.newest(log, i64::MAX as u64, None).await?;
    rows.reverse();
    let mut removed = vec![0u32; req.restrictions.len()];
    let mut disclosures = Vec::new();
    for (index, body) in rows {
        let e = entry::decode(&body).map_err(|e| error::internal(&e))?;
        if !review.scope().admits(&e) {
            continue;
        }
        let Some(d) = disclosure(index, &e) else {
            continue;
        };
        match req.restrictions.iter().position(|r| matches(r, &d)) {
            Some(i) => removed[i] += 1,
            None => disclosures.push(d),
        }
    }
    name_organisations(directory, &mut disclosures).await?;
    let restrictions: Vec<pb::AppliedRestriction> = req
        .restrictions
        .iter()
        .enumerate()
        .map(|(i, r)| pb::AppliedRestriction {
            restriction_index: i as u32,
            ground: r.ground,
            disclosures_removed: removed[i],
        })
        .collect();

    let mut record = review.entry(pb::AuditAction::SubjectReport);
    let target = record.target.get_or_insert_default();
    target.person_ids = req.person_ids.clone();
    let mut attributes = vec![
        pb::AuditAttribute {
            key: "request_reference".into(),
            value: req.request_reference.clone(),
        },
        pb::AuditAttribute {
            key: "disclosures".into(),
            value: disclosures.len().to_string(),
        },
    ];
    for (i, r) in req.restrictions.iter().enumerate() {
        let ground = pb::RestrictionGround::try_from(r.ground)
            .map(|g| g.as_str_name().to_owned())
            .unwrap_or_default();
        let digest = Sha256::digest(r.justification.as_bytes());
        let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
        attributes.push(pb::AuditAttribute {
            key: format!("restriction.{i}.ground"),
            value: ground,
        });
        attributes.push(pb::AuditAttribute {
            key: format!("restriction.{i}.justification_sha256"),
            value: hex,
        });
        attributes.push(pb::AuditAttribute {
            key: format!("restriction.{i}.removed"),
            value: removed[i].to_string(),
        });
    }
    record.attributes.extend(attributes);
    if !req.restrictions.is_empty() {
        record.decision = pb::Decision::PartiallyGranted as i32;
    }
    let audit_index = review.record(record).await?;
    Ok(pb::SubjectReportResponse {
        person_ids: req.person_ids,
        time_range: req.time_range,
        generated_at: Some(to_timestamp(log.clock().now())),
        disclosures,
        restrictions,
        audit_index,
        organisation_scope: review.scope().organisation().to_owned(),
    })
}

/// Fills in each disclosure's organisation name from the directory (one
/// lookup per distinct organisation). UNAVAILABLE when the directory cannot
/// answer: a report must not leave recipients unnamed.
async fn name_organisations(
    directory: &dyn Directory,
    disclosures: &mut [pb::SubjectDisclosure],
) -> Result<(), Status> {
    let mut names: HashMap<String, String> = HashMap::new();
    for d in disclosures.iter_mut() {
        if !names.contains_key(&d.organisation_id) {
            let name = directory
                .organisation_name(&d.organisation_id)
                .await
                .map_err(|e| {
                    tracing::warn!(
                        error = format!("{e:#}"),
                        "organisation directory unavailable"
                    );
                    error::with_reason(
                        tonic::Code::Unavailable,
                        "DIRECTORY_UNAVAILABLE",
                        "the organisation directory is unavailable; no report was made",
                    )
                })?
                // An organisation since removed is still named by its id.
                .unwrap_or_else(|| d.organisation_id.clone());
            names.insert(d.organisation_id.clone(), name);
        }
        d.organisation_name = names[&d.organisation_id].clone();
    }
    Ok(())
}
