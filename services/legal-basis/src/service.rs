//! The legal-basis operations, and the `LegalBasisService` RPCs over them.
//!
//! Every change runs in one transaction: lock, check, write, stage the audit
//! entry, commit; the entry reaches the log after the commit and before the
//! reply (schakel_kit::outbox), so the log holds an entry for a change exactly
//! when the change committed, and no lock is held while the log is called.
//! Reads and `CheckBasis` decide on the current state with the clock.

use std::{collections::HashMap, sync::Arc};

use schakel_kit::{
    audit::{AuditSink, current_trace_id},
    auth::{Caller, Role},
    db::Database,
    error::ServiceError,
    outbox::{Change, Outbox},
    time::{Clock, to_timestamp},
    validate::{self, Invalid},
};
use schakel_proto::v1::{self as pb, legal_basis_service_server::LegalBasisService};
use sqlx::AnyConnection;
use tonic::{Request, Response, Status};

use schakel_kit::ports::Directory as Organisations;

use crate::{
    LegalBasis,
    check::{self, Answer, Denial, Time},
    model::{self, Agreement, Version},
    store::{self, Counted},
};

type Result<T, E = ServiceError> = std::result::Result<T, E>;

/// How often `CheckBasis` re-decides when the state changed under it while it
/// counted a dossier (a revocation or the last place taken meanwhile).
const COUNT_ATTEMPTS: usize = 3;

pub(crate) struct Inner {
    pub(crate) db: Database,
    pub(crate) clock: Clock,
    pub(crate) outbox: Outbox,
    organisations: Arc<dyn Organisations>,
    /// The decoded agreements and the generation they were read at.
    agreements: std::sync::Mutex<Option<(i64, Arc<Vec<model::Agreement>>)>>,
}

impl Inner {
    pub(crate) fn new(
        db: Database,
        clock: Clock,
        audit: Arc<dyn AuditSink>,
        organisations: Arc<dyn Organisations>,
    ) -> Self {
        Self {
            outbox: Outbox::new(&db, audit),
            db,
            clock,
            organisations,
            agreements: std::sync::Mutex::new(None),
        }
    }

    /// Every agreement with its versions: decoded again only when the
    /// generation counter moved (any change, by any instance, moves it).
    async fn agreements(&self) -> anyhow::Result<Arc<Vec<model::Agreement>>> {
        let pool = self.db.pool();
        // Read before the agreements: a change committed in between moves the
        // counter past what is cached, so the next call reads again.
        let generation = store::agreements_generation(pool).await?;
        if let Some((cached, agreements)) =
            &*self.agreements.lock().unwrap_or_else(|e| e.into_inner())
            && *cached == generation
        {
            return Ok(agreements.clone());
        }
        let agreements = Arc::new(store::all_agreements(pool).await?);
        *self.agreements.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((generation, agreements.clone()));
        Ok(agreements)
    }
}

/// What the audit entry of a change says beyond its actor and action.
struct Record<'a> {
    action: pb::AuditAction,
    target: pb::AuditTarget,
    basis: Option<(&'a str, u32)>,
    attributes: Vec<(&'static str, String)>,
    trace_id: Option<String>,
}

fn agreement_target(id: &str) -> pb::AuditTarget {
    pb::AuditTarget {
        resource_id: id.into(),
        ..Default::default()
    }
}

fn enum_name<E: TryFrom<i32>>(value: i32, name: impl Fn(E) -> &'static str) -> String {
    E::try_from(value).map_or_else(|_| value.to_string(), |e| name(e).to_owned())
}

fn not_found() -> ServiceError {
    ServiceError::NotFound("agreement")
}

impl LegalBasis {
    fn now(&self) -> Time {
        self.inner.clock.now()
    }

    /// Stages the audit entry of a change in its transaction (it commits
    /// with the change, and only then reaches the log).
    async fn record(&self, tx: &mut Change, actor: &pb::Actor, change: Record<'_>) -> Result<()> {
        let attributes: Vec<(&str, &str)> = change
            .attributes
            .iter()
            .map(|(k, v)| (*k, v.as_str()))
            .collect();
        let mut entry = schakel_kit::audit::entry(
            actor.clone(),
            change.action,
            pb::Decision::Granted,
            "legal-basis",
            &attributes,
        );
        entry.target = Some(change.target);
        entry.legal_basis = change.basis.map(|(id, version)| pb::LegalBasisRef {
            agreement_id: id.into(),
            agreement_version: version,
        });
        if let Some(trace_id) = change.trace_id {
            entry.trace_id = trace_id;
        }
        tx.record(entry).await?;
        Ok(())
    }

    /// A change: its entries commit with it (see [`schakel_kit::outbox`]).
    async fn begin(&self) -> Result<Change> {
        Ok(self.inner.outbox.begin().await?)
    }

    /// Fills in each party's partner type; INVALID_ARGUMENT for an unknown one.
    async fn resolve_parties(&self, terms: &mut pb::AgreementTerms) -> Result<()> {
        for party in &mut terms.parties {
            match self
                .inner
                .organisations
                .partner_type(&party.organisation_id)
                .await?
            {
                Some(partner_type) => party.partner_type = partner_type,
                None => {
                    return Err(ServiceError::invalid(
                        "terms.parties",
                        format!("no organisation {}", party.organisation_id),
                    ));
                }
            }
        }
        Ok(())
    }

    /// Locks and loads agreement `id` inside `tx`.
    async fn locked(&self, tx: &mut AnyConnection, id: &str) -> Result<Agreement> {
        if !store::lock_agreement(tx, id).await? {
            return Err(not_found());
        }
        store::agreement(tx, id).await?.ok_or_else(not_found)
    }

    fn shown(&self, agreement: &Agreement, version: u32) -> Result<pb::Agreement> {
        agreement
            .to_proto(version, self.now())
            .ok_or(ServiceError::NotFound("agreement version"))
    }

    fn terms_attributes(terms: &pb::AgreementTerms, version: u32) -> Vec<(&'static str, String)> {
        // Codes only (one attribute per district and purpose), never the
        // title, names or free text.
        let mut attributes = vec![
            ("version", version.to_string()),
            ("parties", terms.parties.len().to_string()),
            (
                "valid_from",
                terms.valid_from.map_or(0, |t| t.seconds).to_string(),
            ),
            (
                "valid_until",
                terms.valid_until.map_or(0, |t| t.seconds).to_string(),
            ),
        ];
        attributes.extend(terms.districts.iter().map(|d| ("district", d.clone())));
        attributes.extend(
            terms
                .processing_purposes
                .iter()
                .map(|p| ("purpose", p.clone())),
        );
        attributes
    }

    /// Creates version 1 of a new agreement as a draft.
    pub async fn create_agreement(
        &self,
        actor: &pb::Actor,
        terms: Option<&pb::AgreementTerms>,
    ) -> Result<pb::Agreement> {
        let mut terms = model::terms(terms)?;
        self.resolve_parties(&mut terms).await?;
        let now = self.now();
        let id = uuid::Uuid::new_v4().to_string();
        let version = Version {
            version: 1,
            terms,
            approval: None,
            approved_at: None,
            change_summary: String::new(),
            created_by: actor.subject.clone(),
            edited_by: actor.subject.clone(),
            created_at: now,
            updated_at: now,
        };
        let mut tx = self.begin().await?;
        store::insert_agreement(&mut tx, &id, &version).await?;
        self.record(
            &mut tx,
            actor,
            Record {
                action: pb::AuditAction::AgreementCreate,
                target: agreement_target(&id),
                basis: Some((&id, 1)),
                attributes: Self::terms_attributes(&version.terms, 1),
                trace_id: None,
            },
        )
        .await?;
        tx.commit().await?;
        tracing::info!(agreement = %id, "agreement created");
        let agreement = Agreement {
            agreement_id: id,
            created_at: now,
            dossier_count: 0,
            revocation: None,
            versions: vec![version],
        };
        self.shown(&agreement, 1)
    }

    /// Replaces the terms of the latest version, a draft.
    pub async fn update_draft(
        &self,
        actor: &pb::Actor,
        id: &str,
        number: u32,
        terms: Option<&pb::AgreementTerms>,
        change_summary: &str,
    ) -> Result<pb::Agreement> {
        let id = validate::id("agreement_id", id)?;
        let mut terms = model::terms(terms)?;
        let change_summary = validate::text("change_summary", change_summary, 1000)?;
        self.resolve_parties(&mut terms).await?;
        let mut tx = self.begin().await?;
        let mut agreement = self.locked(&mut tx, &id).await?;
        Self::require_open(&agreement)?;
        let latest = agreement.latest().clone();
        if latest.version != number {
            return Err(ServiceError::precondition(
                "NOT_LATEST_VERSION",
                format!("version {number} is not the latest ({})", latest.version),
            ));
        }
        if latest.approved_at.is_some() {
            return Err(ServiceError::precondition(
                "NOT_A_DRAFT",
                format!("version {number} is approved: amend it instead"),
            ));
        }
        let now = self.now();
        let version = Version {
            terms,
            change_summary,
            updated_at: now,
            edited_by: actor.subject.clone(),
            ..latest
        };
        if !store::update_draft(&mut tx, &id, &version).await? {
            return Err(ServiceError::precondition(
                "NOT_A_DRAFT",
                format!("version {number} is no longer a draft"),
            ));
        }
        self.record(
            &mut tx,
            actor,
            Record {
                action: pb::AuditAction::AgreementUpdateDraft,
                target: agreement_target(&id),
                basis: Some((&id, number)),
                attributes: Self::terms_attributes(&version.terms, number),
                trace_id: None,
            },
        )
        .await?;
        tx.commit().await?;
        if let Some(slot) = agreement.versions.iter_mut().find(|v| v.version == number) {
            *slot = version;
        }
        self.shown(&agreement, number)
    }

    /// Starts an amendment of the latest, approved version.
    pub async fn amend(
        &self,
        actor: &pb::Actor,
        id: &str,
        base: u32,
        terms: Option<&pb::AgreementTerms>,
        change_summary: &str,
    ) -> Result<pb::Agreement> {
        let id = validate::id("agreement_id", id)?;
        let mut terms = model::terms(terms)?;
        let change_summary = validate::text("change_summary", change_summary, 1000)?;
        if change_summary.is_empty() {
            return Err(ServiceError::invalid(
                "change_summary",
                "say in a sentence what the amendment changes",
            ));
        }
        self.resolve_parties(&mut terms).await?;
        let mut tx = self.begin().await?;
        let mut agreement = self.locked(&mut tx, &id).await?;
        Self::require_open(&agreement)?;
        let latest = agreement.latest();
        if latest.version != base || latest.approved_at.is_none() {
            return Err(ServiceError::precondition(
                "NOT_LATEST_APPROVED",
                format!(
                    "version {base} is not the latest approved version (latest: {}, {})",
                    latest.version,
                    if latest.approved_at.is_some() {
                        "approved"
                    } else {
                        "a draft"
                    }
                ),
            ));
        }
        let now = self.now();
        let number = base + 1;
        let version = Version {
            version: number,
            terms,
            approval: None,
            approved_at: None,
            change_summary,
            created_by: actor.subject.clone(),
            edited_by: actor.subject.clone(),
            created_at: now,
            updated_at: now,
        };
        if !store::advance_latest(&mut tx, &id, base, number).await? {
            return Err(ServiceError::precondition(
                "NOT_LATEST_APPROVED",
                "the agreement changed meanwhile",
            ));
        }
        store::insert_version(&mut tx, &id, &version).await?;
        let mut attributes = Self::terms_attributes(&version.terms, number);
        attributes.push(("base_version", base.to_string()));
        self.record(
            &mut tx,
            actor,
            Record {
                action: pb::AuditAction::AgreementAmend,
                target: agreement_target(&id),
                basis: Some((&id, number)),
                attributes,
                trace_id: None,
            },
        )
        .await?;
        tx.commit().await?;
        tracing::info!(agreement = %id, version = number, "agreement amendment drafted");
        agreement.versions.push(version);
        self.shown(&agreement, number)
    }

    /// Records the prosecutor's approval of the latest version, a draft.
    pub async fn approve(
        &self,
        actor: &pb::Actor,
        id: &str,
        number: u32,
        approval: Option<&pb::ProsecutorApproval>,
    ) -> Result<pb::Agreement> {
        let id = validate::id("agreement_id", id)?;
        let now = self.now();
        let mut approval = model::approval(approval, now)?;
        let mut tx = self.begin().await?;
        let mut agreement = self.locked(&mut tx, &id).await?;
        Self::require_open(&agreement)?;
        let latest = agreement.latest();
        if latest.version != number || latest.approved_at.is_some() {
            return Err(ServiceError::precondition(
                "NOT_A_DRAFT",
                format!("version {number} is not the latest draft"),
            ));
        }
        if latest
            .terms
            .signed_document
            .as_ref()
            .is_none_or(|d| d.sha256.is_empty())
        {
            return Err(ServiceError::precondition(
                "SIGNED_DOCUMENT_REQUIRED",
                "record the SHA-256 of the signed agreement (terms.signed_document) before approval",
            ));
        }
        if latest.edited_by == actor.subject {
            return Err(ServiceError::PermissionDenied {
                reason: "FOUR_EYES",
                message: "a coordinator other than the one who wrote the draft must approve it"
                    .into(),
            });
        }
        if latest.valid_until() <= now {
            return Err(ServiceError::precondition(
                "ALREADY_EXPIRED",
                format!("version {number}'s validity has already ended"),
            ));
        }
        approval.recorded_by = actor.subject.clone();
        approval.recorded_at = Some(to_timestamp(now));
        if !store::approve(&mut tx, &id, number, &approval, now).await? {
            return Err(ServiceError::precondition(
                "NOT_A_DRAFT",
                format!("version {number} is no longer a draft"),
            ));
        }
        self.record(
            &mut tx,
            actor,
            Record {
                action: pb::AuditAction::AgreementApprove,
                target: agreement_target(&id),
                basis: Some((&id, number)),
                attributes: vec![
                    ("version", number.to_string()),
                    (
                        "decided_at",
                        approval.decided_at.map_or(0, |t| t.seconds).to_string(),
                    ),
                ],
                trace_id: None,
            },
        )
        .await?;
        tx.commit().await?;
        tracing::info!(agreement = %id, version = number, "agreement approved");
        if let Some(v) = agreement.versions.iter_mut().find(|v| v.version == number) {
            v.approval = Some(approval);
            v.approved_at = Some(now);
            v.updated_at = now;
        }
        self.shown(&agreement, number)
    }

    /// Revokes the agreement (every version) from now on.
    pub async fn revoke(
        &self,
        actor: &pb::Actor,
        id: &str,
        expected: u32,
        reason: i32,
        explanation: &str,
    ) -> Result<pb::Agreement> {
        let id = validate::id("agreement_id", id)?;
        let reason = match pb::RevocationReason::try_from(reason) {
            Ok(r) if r != pb::RevocationReason::Unspecified => r,
            _ => return Err(ServiceError::invalid("reason", "is required")),
        };
        let explanation = validate::text("explanation", explanation, 4000)?;
        if explanation.is_empty() {
            return Err(ServiceError::invalid(
                "explanation",
                "say why the agreement is revoked",
            ));
        }
        let mut tx = self.begin().await?;
        let mut agreement = self.locked(&mut tx, &id).await?;
        Self::require_open(&agreement)?;
        let latest = agreement.latest().version;
        if latest != expected {
            return Err(ServiceError::precondition(
                "NOT_LATEST_VERSION",
                format!("the latest version is {latest}, not {expected}: review it first"),
            ));
        }
        let now = self.now();
        let revocation = pb::AgreementRevocation {
            reason: reason as i32,
            explanation,
            revoked_by: actor.subject.clone(),
            revoked_at: Some(to_timestamp(now)),
        };
        if !store::revoke(&mut tx, &id, &revocation, now).await? {
            return Err(ServiceError::precondition(
                "REVOKED",
                "the agreement is already revoked",
            ));
        }
        self.record(
            &mut tx,
            actor,
            Record {
                action: pb::AuditAction::AgreementRevoke,
                target: agreement_target(&id),
                basis: Some((&id, latest)),
                attributes: vec![
                    ("version", latest.to_string()),
                    ("reason", reason.as_str_name().to_owned()),
                ],
                trace_id: None,
            },
        )
        .await?;
        tx.commit().await?;
        tracing::info!(agreement = %id, "agreement revoked");
        agreement.revocation = Some((now, revocation));
        self.shown(&agreement, latest)
    }

    fn require_open(agreement: &Agreement) -> Result<()> {
        if agreement.revocation.is_some() {
            return Err(ServiceError::precondition(
                "REVOKED",
                "the agreement is revoked; create a new one",
            ));
        }
        Ok(())
    }

    /// One version (0 = the latest) and the status of every version.
    pub async fn get(
        &self,
        id: &str,
        number: u32,
    ) -> Result<(pb::Agreement, Vec<pb::AgreementVersionStatus>)> {
        let id = validate::id("agreement_id", id)?;
        let mut conn = self.inner.db.pool().acquire().await?;
        let agreement = store::agreement(&mut conn, &id)
            .await?
            .ok_or_else(not_found)?;
        let number = if number == 0 {
            agreement.latest().version
        } else {
            number
        };
        let now = self.now();
        let versions = agreement
            .versions
            .iter()
            .map(|v| pb::AgreementVersionStatus {
                version: v.version,
                status: agreement.status(v.version, now) as i32,
            })
            .collect();
        Ok((self.shown(&agreement, number)?, versions))
    }

    /// Agreements, filtered, ordered by id and paginated.
    pub async fn list(
        &self,
        req: &pb::ListAgreementsRequest,
    ) -> Result<pb::ListAgreementsResponse> {
        let (limit, after) = validate::page(req.page.as_ref())?;
        let district = if req.district.is_empty() {
            None
        } else {
            Some(validate::region("district", &req.district)?)
        };
        let party = if req.party_organisation_id.is_empty() {
            None
        } else {
            Some(validate::id(
                "party_organisation_id",
                &req.party_organisation_id,
            )?)
        };
        let in_force_at = req
            .in_force_at
            .as_ref()
            .map(|t| validate::timestamp("in_force_at", Some(t)))
            .transpose()?;
        for s in &req.statuses {
            if pb::AgreementStatus::try_from(*s)
                .is_ok_and(|s| s != pb::AgreementStatus::Unspecified)
            {
                continue;
            }
            return Err(ServiceError::invalid(
                "statuses",
                format!("{s} is not a status"),
            ));
        }
        let now = self.now();
        let all = store::all_agreements(self.inner.db.pool()).await?;
        let mut selected: Vec<&Agreement> = all
            .iter()
            .filter(|a| a.agreement_id.as_str() > after.as_str())
            .filter(|a| {
                let latest = a.latest();
                let status = a.status(latest.version, now) as i32;
                (req.statuses.is_empty() || req.statuses.contains(&status))
                    && district
                        .as_ref()
                        .is_none_or(|d| latest.terms.districts.contains(d))
                    && party.as_ref().is_none_or(|p| {
                        latest.terms.parties.iter().any(|q| &q.organisation_id == p)
                    })
                    && in_force_at
                        .is_none_or(|t| a.effective(t).is_some_and(|v| a.in_force(v.version, t)))
            })
            .collect();
        let next_page_token = if selected.len() as i64 > limit {
            selected.truncate(limit as usize);
            selected
                .last()
                .map(|a| a.agreement_id.clone())
                .unwrap_or_default()
        } else {
            String::new()
        };
        let mut agreements = Vec::new();
        for a in selected {
            if req.all_versions {
                agreements.extend(a.versions.iter().filter_map(|v| a.to_proto(v.version, now)));
            } else {
                agreements.extend(a.to_proto(a.latest().version, now));
            }
        }
        Ok(pb::ListAgreementsResponse {
            agreements,
            next_page_token,
        })
    }

    /// Records informing one person of a dossier, for the professional
    /// `on_behalf_of` (checked by the broker).
    pub async fn record_informing(
        &self,
        req: &pb::RecordInformingRequest,
    ) -> Result<pb::InformingRecord> {
        let dossier_id = validate::id("dossier_id", &req.dossier_id)?;
        let person_id = model::person_id("person_id", &req.person_id)?;
        let actor = req
            .on_behalf_of
            .clone()
            .filter(|a| !a.subject.is_empty() && !a.organisation_id.is_empty())
            .ok_or_else(|| {
                ServiceError::invalid(
                    "on_behalf_of",
                    "the professional (subject and organisation) is required",
                )
            })?;
        let now = self.now();
        let details = model::informing(req.details.as_ref(), &actor.organisation_id, now)?;
        let trace_id = if req.trace_id.is_empty() {
            current_trace_id()
        } else if req.trace_id.len() == 32
            && req
                .trace_id
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            req.trace_id.clone()
        } else {
            return Err(ServiceError::invalid(
                "trace_id",
                "must be a W3C trace id (32 lower-case hex digits)",
            ));
        };
        let record = pb::InformingRecord {
            record_id: uuid::Uuid::new_v4().to_string(),
            dossier_id: dossier_id.clone(),
            person_id: person_id.clone(),
            details: Some(details.clone()),
            recorded_by: Some(actor.clone()),
            recorded_at: Some(to_timestamp(now)),
        };
        let mut attributes = vec![(
            "state",
            enum_name(details.state, |s: pb::InformingState| s.as_str_name()),
        )];
        if details.method != 0 {
            attributes.push((
                "method",
                enum_name(details.method, |m: pb::InformingMethod| m.as_str_name()),
            ));
        }
        if details.deferral_reason != 0 {
            attributes.push((
                "deferral_reason",
                enum_name(details.deferral_reason, |r: pb::DeferralReason| {
                    r.as_str_name()
                }),
            ));
        }
        let mut tx = self.begin().await?;
        store::insert_informing(&mut tx, &record).await?;
        self.record(
            &mut tx,
            &actor,
            Record {
                action: pb::AuditAction::InformingRecord,
                target: pb::AuditTarget {
                    dossier_id,
                    person_ids: vec![person_id],
                    resource_id: record.record_id.clone(),
                    ..Default::default()
                },
                basis: None,
                attributes,
                trace_id: Some(trace_id),
            },
        )
        .await?;
        tx.commit().await?;
        Ok(record)
    }

    /// The informing records of a dossier: the latest per person first (by
    /// person id), then, if asked, the older ones, newest first.
    pub async fn informing_records(
        &self,
        dossier_id: &str,
        include_history: bool,
    ) -> Result<Vec<pb::InformingRecord>> {
        let dossier_id = validate::id("dossier_id", dossier_id)?;
        let mut records = store::informing_records(self.inner.db.pool(), &dossier_id).await?;
        records.reverse();
        let mut latest: Vec<pb::InformingRecord> = Vec::new();
        let mut history = Vec::new();
        for record in records {
            if latest.iter().any(|r| r.person_id == record.person_id) {
                history.push(record);
            } else {
                latest.push(record);
            }
        }
        latest.sort_by(|a, b| a.person_id.cmp(&b.person_id));
        if include_history {
            latest.extend(history);
        }
        Ok(latest)
    }

    /// Answers `CheckBasis`; counts a new dossier against the cap when asked.
    pub async fn check_basis(&self, req: &pb::CheckBasisRequest) -> Result<pb::CheckBasisResponse> {
        let organisation_id = validate::id("organisation_id", &req.organisation_id)?;
        let purpose = validate::code("purpose", &req.purpose)?;
        let context = req
            .dossier
            .as_ref()
            .ok_or_else(|| ServiceError::invalid("dossier", "is required"))?;
        let dossier_id = if context.dossier_id.is_empty() {
            String::new()
        } else {
            validate::id("dossier.dossier_id", &context.dossier_id)?
        };
        if req.count_dossier && dossier_id.is_empty() {
            return Err(ServiceError::invalid(
                "dossier.dossier_id",
                "is required to count the dossier",
            ));
        }
        let district = validate::region("dossier.district", &context.district)?;
        let track = match context.track {
            0 => None,
            t => Some(model::track(t).ok_or_else(|| {
                ServiceError::invalid("dossier.track", format!("{t} is not a track"))
            })?),
        };
        let mut violence_forms = Vec::new();
        for form in &context.violence_forms {
            violence_forms.push(validate::code("dossier.violence_forms", form)?);
        }
        let ids = |field: &'static str, values: &[String]| -> Result<Vec<String>, Invalid> {
            values.iter().map(|v| model::person_id(field, v)).collect()
        };
        let victims = ids("dossier.victim_person_ids", &context.victim_person_ids)?;
        let perpetrators = ids(
            "dossier.perpetrator_person_ids",
            &context.perpetrator_person_ids,
        )?;
        let now = self.now();
        let at = match &req.at {
            Some(t) => validate::timestamp("at", Some(t))?,
            None => now,
        };
        let pool = self.inner.db.pool();
        let informing_required = check::informing_required(
            pb::InformingRequirement::try_from(req.informing)
                .map_err(|_| Invalid::new("informing", "not a known requirement"))?,
            &purpose,
        );
        let informing = if !informing_required || dossier_id.is_empty() {
            HashMap::new()
        } else {
            latest_informing(&store::informing_records(pool, &dossier_id).await?, at)
        };
        for _ in 0..COUNT_ATTEMPTS {
            let agreements = self.inner.agreements().await?;
            let candidates: Vec<check::AgreementVersion> =
                agreements.iter().filter_map(|a| a.candidate(at)).collect();
            // Whether the dossier is counted matters only under a cap.
            let capped = candidates.iter().any(|c| c.scope.max_dossiers > 0);
            let already_counted = capped
                && !dossier_id.is_empty()
                && !store::counted_for(pool, &dossier_id).await?.is_empty();
            let dossier = check::Dossier {
                district: district.clone(),
                track,
                violence_forms: violence_forms.clone(),
                victims: victims.clone(),
                perpetrators: perpetrators.clone(),
                informing: informing.clone(),
                already_counted,
            };
            let question = check::Question {
                organisation_id: &organisation_id,
                purpose: &purpose,
                dossier: &dossier,
                at,
                new_dossier: req.count_dossier,
                informing_required,
            };
            let answer = check::check(&candidates, &question);
            if let Answer::Allowed {
                agreement_id,
                version,
                ..
            } = &answer
                && req.count_dossier
                && !already_counted
            {
                let max = candidates
                    .iter()
                    .find(|c| &c.agreement_id == agreement_id)
                    .map_or(0, |c| c.scope.max_dossiers);
                // No entry of its own: the broker's entry of the check
                // records the dossier counted.
                let mut tx = self.inner.db.pool().begin().await?;
                match store::count_dossier(&mut tx, agreement_id, *version, &dossier_id, max, now)
                    .await?
                {
                    Counted::Counted | Counted::AlreadyCounted => tx.commit().await?,
                    // The state changed meanwhile: decide again on the new state.
                    Counted::Refused => {
                        tx.rollback().await?;
                        continue;
                    }
                }
            }
            return Ok(response(answer, at));
        }
        Err(ServiceError::Internal(anyhow::anyhow!(
            "CheckBasis could not settle the dossier count after {COUNT_ATTEMPTS} attempts"
        )))
    }
}

/// The latest informing state per person as it was at `at`.
fn latest_informing(
    records: &[pb::InformingRecord],
    at: Time,
) -> HashMap<String, check::Informing> {
    let mut latest = HashMap::new();
    // Oldest first: later records overwrite earlier ones.
    for record in records {
        if record.recorded_at.as_ref().is_some_and(|t| t.seconds > at) {
            continue;
        }
        let state = record.details.as_ref().map_or(0, |d| d.state);
        match pb::InformingState::try_from(state) {
            Ok(pb::InformingState::Informed) => {
                latest.insert(record.person_id.clone(), check::Informing::Informed);
            }
            Ok(pb::InformingState::Deferred) => {
                latest.insert(record.person_id.clone(), check::Informing::Deferred);
            }
            _ => {
                latest.remove(&record.person_id);
            }
        }
    }
    latest
}

/// The proto reason for a denial.
pub fn denial_reason(denial: Denial) -> pb::BasisDenialReason {
    match denial {
        Denial::NoAgreement => pb::BasisDenialReason::NoAgreement,
        Denial::NotAParty => pb::BasisDenialReason::NotAParty,
        Denial::PurposeNotCovered => pb::BasisDenialReason::PurposeNotCovered,
        Denial::NotYetValid => pb::BasisDenialReason::NotYetValid,
        Denial::Expired => pb::BasisDenialReason::Expired,
        Denial::Revoked => pb::BasisDenialReason::Revoked,
        Denial::DistrictNotCovered => pb::BasisDenialReason::DistrictNotCovered,
        Denial::ScopeNotCovered => pb::BasisDenialReason::ScopeNotCovered,
        Denial::DossierCapReached => pb::BasisDenialReason::DossierCapReached,
        Denial::ClientNotInformed => pb::BasisDenialReason::ClientNotInformed,
    }
}

fn response(answer: Answer, at: Time) -> pb::CheckBasisResponse {
    match answer {
        Answer::Allowed {
            agreement_id,
            version,
            valid_until,
        } => pb::CheckBasisResponse {
            allowed: true,
            agreement: Some(pb::LegalBasisRef {
                agreement_id,
                agreement_version: version,
            }),
            denial_reason: 0,
            uninformed_person_ids: vec![],
            checked_at: Some(to_timestamp(at)),
            valid_until: Some(to_timestamp(valid_until)),
        },
        Answer::Denied {
            reason,
            agreement,
            uninformed,
        } => pb::CheckBasisResponse {
            allowed: false,
            agreement: agreement.map(|(agreement_id, agreement_version)| pb::LegalBasisRef {
                agreement_id,
                agreement_version,
            }),
            denial_reason: denial_reason(reason) as i32,
            uninformed_person_ids: uninformed,
            checked_at: Some(to_timestamp(at)),
            valid_until: None,
        },
    }
}

fn coordinator<T>(request: &Request<T>) -> Result<pb::Actor, Status> {
    let caller = Caller::of(request)?;
    caller.require_role(Role::Coordinator)?;
    Ok(caller.to_actor())
}

/// Informing records and dossier counting are the broker's business: it
/// acts for the professional after checking their circle.
fn broker_only<T>(request: &Request<T>) -> Result<(), Status> {
    Caller::of(request)?.require_service(&["broker"])
}

#[tonic::async_trait]
impl LegalBasisService for LegalBasis {
    async fn create_agreement(
        &self,
        request: Request<pb::CreateAgreementRequest>,
    ) -> Result<Response<pb::CreateAgreementResponse>, Status> {
        let actor = coordinator(&request)?;
        let agreement = self
            .create_agreement(&actor, request.get_ref().terms.as_ref())
            .await?;
        Ok(Response::new(pb::CreateAgreementResponse {
            agreement: Some(agreement),
        }))
    }

    async fn update_agreement_draft(
        &self,
        request: Request<pb::UpdateAgreementDraftRequest>,
    ) -> Result<Response<pb::UpdateAgreementDraftResponse>, Status> {
        let actor = coordinator(&request)?;
        let req = request.get_ref();
        let agreement = self
            .update_draft(
                &actor,
                &req.agreement_id,
                req.version,
                req.terms.as_ref(),
                &req.change_summary,
            )
            .await?;
        Ok(Response::new(pb::UpdateAgreementDraftResponse {
            agreement: Some(agreement),
        }))
    }

    async fn amend_agreement(
        &self,
        request: Request<pb::AmendAgreementRequest>,
    ) -> Result<Response<pb::AmendAgreementResponse>, Status> {
        let actor = coordinator(&request)?;
        let req = request.get_ref();
        let agreement = self
            .amend(
                &actor,
                &req.agreement_id,
                req.base_version,
                req.terms.as_ref(),
                &req.change_summary,
            )
            .await?;
        Ok(Response::new(pb::AmendAgreementResponse {
            agreement: Some(agreement),
        }))
    }

    async fn approve_agreement(
        &self,
        request: Request<pb::ApproveAgreementRequest>,
    ) -> Result<Response<pb::ApproveAgreementResponse>, Status> {
        let actor = coordinator(&request)?;
        let req = request.get_ref();
        let agreement = self
            .approve(
                &actor,
                &req.agreement_id,
                req.version,
                req.approval.as_ref(),
            )
            .await?;
        Ok(Response::new(pb::ApproveAgreementResponse {
            agreement: Some(agreement),
        }))
    }

    async fn revoke_agreement(
        &self,
        request: Request<pb::RevokeAgreementRequest>,
    ) -> Result<Response<pb::RevokeAgreementResponse>, Status> {
        let actor = coordinator(&request)?;
        let req = request.get_ref();
        let agreement = self
            .revoke(
                &actor,
                &req.agreement_id,
                req.expected_version,
                req.reason,
                &req.explanation,
            )
            .await?;
        Ok(Response::new(pb::RevokeAgreementResponse {
            agreement: Some(agreement),
        }))
    }

    async fn get_agreement(
        &self,
        request: Request<pb::GetAgreementRequest>,
    ) -> Result<Response<pb::GetAgreementResponse>, Status> {
        Caller::of(&request)?;
        let req = request.get_ref();
        let (agreement, versions) = self.get(&req.agreement_id, req.version).await?;
        Ok(Response::new(pb::GetAgreementResponse {
            agreement: Some(agreement),
            versions,
        }))
    }

    async fn list_agreements(
        &self,
        request: Request<pb::ListAgreementsRequest>,
    ) -> Result<Response<pb::ListAgreementsResponse>, Status> {
        Caller::of(&request)?;
        Ok(Response::new(self.list(request.get_ref()).await?))
    }

    async fn record_informing(
        &self,
        request: Request<pb::RecordInformingRequest>,
    ) -> Result<Response<pb::RecordInformingResponse>, Status> {
        broker_only(&request)?;
        let record = self.record_informing(request.get_ref()).await?;
        Ok(Response::new(pb::RecordInformingResponse {
            record: Some(record),
        }))
    }

    async fn list_informing_records(
        &self,
        request: Request<pb::ListInformingRecordsRequest>,
    ) -> Result<Response<pb::ListInformingRecordsResponse>, Status> {
        broker_only(&request)?;
        let req = request.get_ref();
        let records = self
            .informing_records(&req.dossier_id, req.include_history)
            .await?;
        Ok(Response::new(pb::ListInformingRecordsResponse { records }))
    }

    async fn check_basis(
        &self,
        request: Request<pb::CheckBasisRequest>,
    ) -> Result<Response<pb::CheckBasisResponse>, Status> {
        let caller = Caller::of(&request)?;
        // Of Schakel's services only the broker decides on dossiers.
        let internal = caller.service() == Some("broker");
        if !internal && !caller.has_role(Role::Coordinator) {
            return Err(schakel_kit::error::permission_denied(
                "INTERNAL_ONLY",
                "CheckBasis is for Schakel's services and coordinators",
            ));
        }
        if request.get_ref().count_dossier && !internal {
            return Err(schakel_kit::error::permission_denied(
                "INTERNAL_ONLY",
                "only the broker counts dossiers",
            ));
        }
        Ok(Response::new(self.check_basis(request.get_ref()).await?))
    }
}
