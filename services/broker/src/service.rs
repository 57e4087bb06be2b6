//! The broker's RPCs: the policy enforcement point. Every call about a dossier
//! runs, in order: token (the server's layer), circle, legal basis, policy,
//! decrypt, audit append, reply. Nothing is released or changed without a
//! durable audit entry (fail closed), and denials are audited too.

use std::{collections::HashMap, sync::Arc};

use prost::Message;
use schakel_kit::{
    audit::{AuditSink, new_append_id},
    auth::{Caller, PrincipalKind, Role},
    db::Database,
    error::{ERROR_DOMAIN, ServiceError},
    time::{Clock, to_timestamp},
    validate::{self, Invalid},
};
use schakel_legal_basis::Organisations;
use schakel_proto::v1::{self as pb, broker_service_server::BrokerService, field_value::Kind};
use tonic::{Code, Request, Response, Status};
use tonic_types::{ErrorDetails, StatusExt};

use crate::{
    deps::{Basis, PolicySnapshot, PolicySource},
    keys::{Keyring, value_context},
    phase, store, values,
};

type Result<T, E = Status> = std::result::Result<T, E>;

pub(crate) struct Inner {
    pub(crate) db: Database,
    pub(crate) clock: Clock,
    pub(crate) audit: Arc<dyn AuditSink>,
    pub(crate) basis: Arc<dyn Basis>,
    pub(crate) policy: Arc<dyn PolicySource>,
    pub(crate) keys: Keyring,
    pub(crate) organisations: Arc<dyn Organisations>,
    /// What was read of recent dossiers, per dossier id (see [`Content`]).
    pub(crate) content: std::sync::Mutex<HashMap<String, Content>>,
}

/// What a dossier's circle, client system and contributions were at one
/// revision, reused while the dossier's row shows that revision: every change
/// to them moves it (by trigger, whichever instance or operator made it), and
/// the row itself is read on every call. Values stay sealed here.
#[derive(Clone, Default)]
pub(crate) struct Content {
    revision: i64,
    participants: Vec<pb::DossierParticipant>,
    persons: Vec<(String, Vec<String>)>,
    contributions: Option<Arc<Vec<store::ContributionRow>>>,
}

/// Dossiers whose content is kept at most; beyond, the cache starts afresh.
const CONTENT_CACHE_DOSSIERS: usize = 4096;

impl Inner {
    fn cached(&self, dossier_id: &str, revision: i64) -> Option<Content> {
        let cache = self.content.lock().unwrap_or_else(|e| e.into_inner());
        cache
            .get(dossier_id)
            .filter(|c| c.revision == revision)
            .cloned()
    }

    /// Only the contributions (no copy of the rest).
    fn cached_contributions(
        &self,
        dossier_id: &str,
        revision: i64,
    ) -> Option<Arc<Vec<store::ContributionRow>>> {
        let cache = self.content.lock().unwrap_or_else(|e| e.into_inner());
        cache
            .get(dossier_id)
            .filter(|c| c.revision == revision)
            .and_then(|c| c.contributions.clone())
    }

    fn remember(&self, dossier_id: &str, update: impl FnOnce(&mut Content)) {
        let mut cache = self.content.lock().unwrap_or_else(|e| e.into_inner());
        if cache.len() >= CONTENT_CACHE_DOSSIERS && !cache.contains_key(dossier_id) {
            cache.clear();
        }
        update(cache.entry(dossier_id.to_owned()).or_default());
    }
}

/// The broker service (cheap to clone).
#[derive(Clone)]
pub struct Broker {
    pub(crate) inner: Arc<Inner>,
}

/// A PERMISSION_DENIED (or other) status with its reason and metadata.
fn refusal(code: Code, reason: &str, message: &str, metadata: &[(&str, &str)]) -> Status {
    let metadata: HashMap<String, String> = metadata
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    Status::with_error_details(
        code,
        message,
        ErrorDetails::with_error_info(reason, ERROR_DOMAIN, metadata),
    )
}

fn internal(err: anyhow::Error) -> Status {
    ServiceError::Internal(err).into()
}

fn db(err: sqlx::Error) -> Status {
    ServiceError::from(err).into()
}

/// The roles that may see or write dossier content.
const CONTENT_ROLES: [Role; 3] = [Role::Aanmelder, Role::TeamMember, Role::Casusregisseur];

/// What an audit entry of a decision says.
struct Decided {
    action: pb::AuditAction,
    decision: pb::Decision,
    dossier_id: String,
    person_ids: Vec<String>,
    purpose: String,
    basis: Option<pb::LegalBasisRef>,
    policy_version: u64,
    phase: i32,
    released: Vec<String>,
    withheld: Vec<pb::WithheldField>,
    contributed: Vec<String>,
    denial: pb::AccessDenialReason,
    basis_denial: String,
    organisation: String,
}

impl Decided {
    fn new(action: pb::AuditAction, dossier_id: &str, purpose: &str) -> Self {
        Decided {
            action,
            decision: pb::Decision::Granted,
            dossier_id: dossier_id.into(),
            person_ids: vec![],
            purpose: purpose.into(),
            basis: None,
            policy_version: 0,
            phase: 0,
            released: vec![],
            withheld: vec![],
            contributed: vec![],
            denial: pb::AccessDenialReason::Unspecified,
            basis_denial: String::new(),
            organisation: String::new(),
        }
    }

    fn denied(mut self, reason: pb::AccessDenialReason) -> Self {
        self.decision = pb::Decision::Denied;
        self.denial = reason;
        self
    }
}

/// The dossier and what the checks learnt about it.
struct Loaded {
    row: store::DossierRow,
    participants: Vec<pb::DossierParticipant>,
    persons: Vec<(String, Vec<String>)>,
}

impl Loaded {
    fn to_proto(&self) -> pb::Dossier {
        let d = &self.row;
        pb::Dossier {
            dossier_id: d.dossier_id.clone(),
            district: d.district.clone(),
            requested_track: d.requested_track,
            track: d.track,
            phase: d.phase,
            phase_since: Some(to_timestamp(d.phase_since)),
            registered_at: Some(to_timestamp(d.registered_at)),
            registering_organisation_id: d.registering_org.clone(),
            participants: self.participants.clone(),
            case_director: d
                .case_director
                .as_ref()
                .map(|(user, org, at, by)| pb::CaseDirector {
                    user_id: user.clone(),
                    organisation_id: org.clone(),
                    assigned_at: Some(to_timestamp(*at)),
                    assigned_by: by.clone(),
                }),
            registration_basis: Some(d.basis.clone()),
            person_ids: self.persons.iter().map(|(p, _)| p.clone()).collect(),
            follow_up_check_at: None,
            closed_at: None,
            erase_after: None,
            updated_at: Some(to_timestamp(d.updated_at)),
            revision: d.revision as u64,
        }
    }

    fn with_role(&self, role: &str) -> Vec<String> {
        self.persons
            .iter()
            .filter(|(_, roles)| roles.iter().any(|r| r == role))
            .map(|(p, _)| p.clone())
            .collect()
    }
}

impl Broker {
    fn now(&self) -> i64 {
        self.inner.clock.now()
    }

    fn policy(&self) -> Arc<PolicySnapshot> {
        self.inner.policy.current()
    }

    /// Appends the entry of a decision; returns its index. Fails closed.
    async fn record(&self, caller: &Caller, on_behalf_of: &str, d: Decided) -> Result<u64> {
        self.record_with(caller, on_behalf_of, d, "").await
    }

    /// As [`record`](Self::record), naming the object acted on (an information request).
    async fn record_with(
        &self,
        caller: &Caller,
        on_behalf_of: &str,
        d: Decided,
        resource_id: &str,
    ) -> Result<u64> {
        let mut entry =
            schakel_kit::audit::entry(caller.to_actor(), d.action, d.decision, "broker", &[]);
        entry.on_behalf_of = on_behalf_of.into();
        entry.target = Some(pb::AuditTarget {
            dossier_id: d.dossier_id,
            person_ids: d.person_ids,
            organisation_id: d.organisation,
            resource_id: resource_id.into(),
        });
        entry.purpose = d.purpose;
        entry.legal_basis = d.basis;
        entry.policy_version = d.policy_version;
        entry.dossier_phase = d.phase;
        entry.fields_released = d.released;
        entry.fields_withheld = d.withheld;
        entry.fields_contributed = d.contributed;
        entry.denial_reason = d.denial as i32;
        entry.basis_denial_reason = d.basis_denial;
        let receipt = self
            .inner
            .audit
            .append(entry, new_append_id())
            .await
            .map_err(Status::from)?;
        Ok(receipt.index)
    }

    /// Records a refusal, then returns the status to answer with.
    async fn refuse(
        &self,
        caller: &Caller,
        on_behalf_of: &str,
        d: Decided,
        status: Status,
    ) -> Status {
        match self.record(caller, on_behalf_of, d).await {
            Ok(_) => status,
            Err(unavailable) => unavailable,
        }
    }

    /// The caller's roles that count for content, with the casusregisseur
    /// role only for the dossier's assigned case director.
    fn roles_for(caller: &Caller, dossier: Option<&store::DossierRow>) -> Vec<i32> {
        caller
            .roles
            .iter()
            .filter(|r| CONTENT_ROLES.contains(r))
            .filter(|r| {
                **r != Role::Casusregisseur
                    || dossier
                        .and_then(|d| d.case_director.as_ref())
                        .is_some_and(|(user, _, _, _)| *user == caller.subject)
            })
            .map(|r| r.to_proto() as i32)
            .collect()
    }

    /// Professionals and partner systems with a content role only.
    async fn content_caller(
        &self,
        caller: &Caller,
        on_behalf_of: &str,
        action: pb::AuditAction,
        dossier_id: &str,
    ) -> Result<()> {
        let professional = matches!(
            caller.kind,
            PrincipalKind::User | PrincipalKind::ServiceAccount
        );
        if professional && caller.roles.iter().any(|r| CONTENT_ROLES.contains(r)) {
            return Ok(());
        }
        let d =
            Decided::new(action, dossier_id, "").denied(pb::AccessDenialReason::RoleNotPermitted);
        Err(self
            .refuse(
                caller,
                on_behalf_of,
                d,
                refusal(
                    Code::PermissionDenied,
                    "ROLE_NOT_PERMITTED",
                    "this role may not see or change dossier content",
                    &[],
                ),
            )
            .await)
    }

    /// Loads a dossier for a caller in its circle; otherwise (also for an
    /// unknown or erased dossier) a recorded NOT_IN_CIRCLE refusal.
    async fn load(
        &self,
        caller: &Caller,
        on_behalf_of: &str,
        action: pb::AuditAction,
        dossier_id: &str,
        purpose: &str,
    ) -> Result<Loaded> {
        let mut conn = self.inner.db.pool().acquire().await.map_err(db)?;
        let row = store::dossier(&mut conn, dossier_id)
            .await
            .map_err(internal)?;
        let loaded = match row {
            Some(row) => {
                let cached = self.inner.cached(dossier_id, row.revision);
                let participants = match &cached {
                    Some(c) => c.participants.clone(),
                    None => store::participants(&mut conn, dossier_id)
                        .await
                        .map_err(internal)?,
                };
                let in_circle = participants
                    .iter()
                    .any(|p| p.organisation_id == caller.organisation_id);
                if in_circle && row.key.is_none() {
                    // Erased: the circle learns that much, and nothing else.
                    let d = Decided::new(action, dossier_id, purpose)
                        .denied(pb::AccessDenialReason::Erased);
                    return Err(self
                        .refuse(
                            caller,
                            on_behalf_of,
                            d,
                            refusal(Code::NotFound, "ERASED", "the dossier was erased", &[]),
                        )
                        .await);
                }
                if in_circle {
                    let persons = match cached {
                        Some(c) => c.persons,
                        None => {
                            let persons = store::persons(&mut conn, dossier_id)
                                .await
                                .map_err(internal)?;
                            self.inner.remember(dossier_id, |c| {
                                *c = Content {
                                    revision: row.revision,
                                    participants: participants.clone(),
                                    persons: persons.clone(),
                                    contributions: None,
                                };
                            });
                            persons
                        }
                    };
                    Some(Loaded {
                        row,
                        participants,
                        persons,
                    })
                } else {
                    None
                }
            }
            None => None,
        };
        match loaded {
            Some(l) => Ok(l),
            None => {
                let d = Decided::new(action, dossier_id, purpose)
                    .denied(pb::AccessDenialReason::NotInCircle);
                Err(self
                    .refuse(
                        caller,
                        on_behalf_of,
                        d,
                        refusal(
                            Code::PermissionDenied,
                            "NOT_IN_CIRCLE",
                            "your organisation is not in this dossier's circle",
                            &[],
                        ),
                    )
                    .await)
            }
        }
    }

    /// The data key of a loaded dossier.
    fn data_key(&self, loaded: &Loaded) -> Result<schakel_kit::crypto::SecretKey> {
        let wrapped = loaded
            .row
            .key
            .as_ref()
            .ok_or_else(|| refusal(Code::NotFound, "ERASED", "the dossier was erased", &[]))?;
        self.inner
            .keys
            .unwrap(wrapped, &loaded.row.dossier_id)
            .map_err(internal)
    }

    /// The forms of violence of a dossier (for CheckBasis), from its current
    /// registration.violence_forms contributions.
    fn violence_forms(
        &self,
        key: &schakel_kit::crypto::SecretKey,
        dossier_id: &str,
        contributions: &[store::ContributionRow],
    ) -> Result<Vec<String>> {
        let mut forms = Vec::new();
        for c in contributions.iter().filter(|c| {
            c.meta.path == "registration.violence_forms"
                && c.meta.superseded_by_contribution_id.is_empty()
        }) {
            if let Some(value) = open(key, dossier_id, c)?
                && let Some(Kind::List(list)) = value.kind
            {
                for item in list.items {
                    if let Some(Kind::Code(code)) = item.kind
                        && !forms.contains(&code)
                    {
                        forms.push(code);
                    }
                }
            }
        }
        Ok(forms)
    }

    /// The dossier's stored contributions (sealed) and the caller's legal
    /// basis for `purpose` on it (a recorded refusal when there is none).
    #[allow(clippy::too_many_arguments)]
    async fn covered(
        &self,
        caller: &Caller,
        on_behalf_of: &str,
        action: pb::AuditAction,
        loaded: &Loaded,
        key: &schakel_kit::crypto::SecretKey,
        purpose: &str,
        policy_version: u64,
    ) -> Result<(Arc<Vec<store::ContributionRow>>, pb::LegalBasisRef)> {
        let dossier_id = &loaded.row.dossier_id;
        let revision = loaded.row.revision;
        let cached = self.inner.cached_contributions(dossier_id, revision);
        let stored = match cached {
            Some(stored) => stored,
            None => {
                let mut conn = self.inner.db.pool().acquire().await.map_err(db)?;
                let stored = Arc::new(
                    store::contributions(&mut conn, dossier_id)
                        .await
                        .map_err(internal)?,
                );
                drop(conn);
                self.inner.remember(dossier_id, |c| {
                    if c.revision == revision {
                        c.contributions = Some(stored.clone());
                    }
                });
                stored
            }
        };
        let forms = self.violence_forms(key, dossier_id, &stored)?;
        let basis = self
            .basis(
                caller,
                on_behalf_of,
                action,
                loaded,
                forms,
                purpose,
                policy_version,
            )
            .await?;
        Ok((stored, basis))
    }

    /// CheckBasis for the caller's organisation and purpose on this dossier;
    /// a recorded NO_LEGAL_BASIS refusal when there is none.
    #[allow(clippy::too_many_arguments)]
    async fn basis(
        &self,
        caller: &Caller,
        on_behalf_of: &str,
        action: pb::AuditAction,
        loaded: &Loaded,
        forms: Vec<String>,
        purpose: &str,
        policy_version: u64,
    ) -> Result<pb::LegalBasisRef> {
        let d = &loaded.row;
        let answer = self
            .inner
            .basis
            .check(pb::CheckBasisRequest {
                organisation_id: caller.organisation_id.clone(),
                purpose: purpose.into(),
                dossier: Some(pb::BasisDossierContext {
                    dossier_id: d.dossier_id.clone(),
                    district: d.district.clone(),
                    track: if d.track != 0 {
                        d.track
                    } else {
                        d.requested_track
                    },
                    violence_forms: forms,
                    victim_person_ids: loaded.with_role("slachtoffer"),
                    perpetrator_person_ids: loaded.with_role("pleger"),
                }),
                at: None,
                count_dossier: false,
                informing: 0,
            })
            .await?;
        if answer.allowed {
            return answer
                .agreement
                .ok_or_else(|| internal(anyhow::anyhow!("an allowed basis names its agreement")));
        }
        let reason = pb::BasisDenialReason::try_from(answer.denial_reason)
            .unwrap_or(pb::BasisDenialReason::Unspecified)
            .as_str_name();
        let mut decided = Decided::new(action, &d.dossier_id, purpose)
            .denied(pb::AccessDenialReason::NoLegalBasis);
        decided.basis_denial = reason.into();
        decided.basis = answer.agreement;
        decided.policy_version = policy_version;
        decided.phase = d.phase;
        Err(self
            .refuse(
                caller,
                on_behalf_of,
                decided,
                refusal(
                    Code::PermissionDenied,
                    "NO_LEGAL_BASIS",
                    &format!(
                        "no agreement covers this purpose for your organisation now ({reason})"
                    ),
                    &[("basis_denial_reason", reason)],
                ),
            )
            .await)
    }
}

/// Decrypts a stored contribution's value (None for a retraction).
fn open(
    key: &schakel_kit::crypto::SecretKey,
    dossier_id: &str,
    c: &store::ContributionRow,
) -> Result<Option<pb::FieldValue>> {
    let Some(sealed) = &c.sealed else {
        return Ok(None);
    };
    let context = value_context(
        dossier_id,
        &c.meta.path,
        &c.meta.person_id,
        &c.meta.contribution_id,
    );
    let bytes = key.open(sealed, &context).map_err(internal)?;
    Ok(Some(
        pb::FieldValue::decode(bytes.as_slice()).map_err(|e| internal(e.into()))?,
    ))
}

fn seal(
    key: &schakel_kit::crypto::SecretKey,
    dossier_id: &str,
    meta: &pb::Contribution,
    value: &pb::FieldValue,
) -> Result<Vec<u8>> {
    let context = value_context(
        dossier_id,
        &meta.path,
        &meta.person_id,
        &meta.contribution_id,
    );
    key.seal(&value.encode_to_vec(), &context).map_err(internal)
}

/// What storing contributions produced.
struct Stored {
    contributions: Vec<pb::Contribution>,
    basis: pb::LegalBasisRef,
    policy_version: u64,
    audit_index: u64,
    answered: Option<pb::InformationRequest>,
}

fn request_context(request: &pb::InformationRequest) -> Vec<u8> {
    value_context(
        &request.dossier_id,
        "information_request",
        "",
        &request.information_request_id,
    )
}

fn seal_request(
    key: &schakel_kit::crypto::SecretKey,
    request: &pb::InformationRequest,
) -> Result<Vec<u8>> {
    let mut stored = request.clone();
    stored.overdue = false;
    key.seal(&stored.encode_to_vec(), &request_context(&stored))
        .map_err(internal)
}

fn open_request(
    key: &schakel_kit::crypto::SecretKey,
    row: &store::RequestRow,
    now: i64,
) -> Result<pb::InformationRequest> {
    let probe = pb::InformationRequest {
        information_request_id: row.request_id.clone(),
        dossier_id: row.dossier_id.clone(),
        ..Default::default()
    };
    let bytes = key
        .open(&row.sealed, &request_context(&probe))
        .map_err(internal)?;
    let mut request =
        pb::InformationRequest::decode(bytes.as_slice()).map_err(|e| internal(e.into()))?;
    request.overdue =
        request.status == pb::InformationRequestStatus::Open as i32 && row.due_at <= now;
    Ok(request)
}

/// A new contribution of the caller's organisation (its value set apart).
fn contribution_by(
    caller: &Caller,
    path: &str,
    person_id: &str,
    purpose: &str,
    now: i64,
) -> pb::Contribution {
    pb::Contribution {
        contribution_id: uuid::Uuid::new_v4().to_string(),
        path: path.into(),
        person_id: person_id.into(),
        source_organisation_id: caller.organisation_id.clone(),
        source_partner_type: caller.partner_type.clone(),
        author: caller.subject.clone(),
        contributed_at: Some(to_timestamp(now)),
        purpose: purpose.into(),
        ..Default::default()
    }
}

/// Stores a person of the client system with their lookup hashes.
#[allow(clippy::too_many_arguments)]
async fn store_person(
    tx: &mut sqlx::AnyConnection,
    lookup: &crate::lookup::LookupKey,
    dossier_id: &str,
    person_id: &str,
    roles: &[String],
    input: &pb::ClientPersonInput,
    now: i64,
) -> Result<()> {
    store::insert_person(tx, dossier_id, person_id, roles, now)
        .await
        .map_err(internal)?;
    for token in lookup.tokens(input) {
        store::insert_lookup(tx, &token, person_id)
            .await
            .map_err(internal)?;
    }
    Ok(())
}

/// Seals and stores the values of a form (registration or a new person)
/// from sequence number `seq` on; returns the paths written.
#[allow(clippy::too_many_arguments)]
async fn store_form(
    tx: &mut sqlx::AnyConnection,
    key: &schakel_kit::crypto::SecretKey,
    caller: &Caller,
    dossier_id: &str,
    purpose: &str,
    values: &[(String, String, pb::FieldValue)],
    mut seq: i64,
    now: i64,
) -> Result<Vec<String>> {
    let mut paths: Vec<String> = Vec::new();
    for (path, person_id, value) in values {
        let meta = contribution_by(caller, path, person_id, purpose, now);
        let sealed = seal(key, dossier_id, &meta, value)?;
        store::insert_contribution(
            tx,
            dossier_id,
            seq,
            &store::ContributionRow {
                meta,
                sealed: Some(sealed),
            },
        )
        .await
        .map_err(internal)?;
        seq += 1;
        if !paths.contains(path) {
            paths.push(path.clone());
        }
    }
    Ok(paths)
}

fn on_behalf_of<T>(request: &Request<T>) -> Result<String> {
    let value = request
        .metadata()
        .get("schakel-on-behalf-of")
        .map(|v| v.to_str().unwrap_or("\u{0}").to_owned())
        .unwrap_or_default();
    let ok = value.len() <= 128
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:/@+=-".contains(&b));
    if ok {
        Ok(value)
    } else {
        Err(Invalid::new(
            "schakel-on-behalf-of",
            "an opaque reference of at most 128 characters of [A-Za-z0-9._:/@+=-], never a name",
        )
        .into())
    }
}

/// The catalogue paths a read asks for: exact paths or prefixes ending in ".".
fn requested(snapshot: &PolicySnapshot, asked: &[String]) -> Result<Vec<usize>> {
    let table = &snapshot.table;
    if asked.is_empty() {
        return Ok((0..table.fields().len()).collect());
    }
    let mut out = Vec::new();
    for a in asked {
        let matched: Vec<usize> = if a.ends_with('.') {
            table
                .fields()
                .iter()
                .enumerate()
                .filter(|(_, f)| f.starts_with(a.as_str()))
                .map(|(i, _)| i)
                .collect()
        } else {
            table.field(a).into_iter().collect()
        };
        if matched.is_empty() {
            return Err(
                Invalid::new("fields", format!("{a} is not in the field catalogue")).into(),
            );
        }
        for i in matched {
            if !out.contains(&i) {
                out.push(i);
            }
        }
    }
    out.sort_unstable();
    Ok(out)
}

fn role_codes(roles: &[pb::PersonRole]) -> Vec<String> {
    roles
        .iter()
        .map(|r| {
            r.as_str_name()
                .trim_start_matches("PERSON_ROLE_")
                .to_lowercase()
        })
        .collect()
}

fn text(t: &str) -> pb::FieldValue {
    pb::FieldValue {
        kind: Some(Kind::Text(t.into())),
    }
}

fn code_list(codes: &[String]) -> pb::FieldValue {
    pb::FieldValue {
        kind: Some(Kind::List(pb::FieldValueList {
            items: codes
                .iter()
                .map(|c| pb::FieldValue {
                    kind: Some(Kind::Code(c.clone())),
                })
                .collect(),
        })),
    }
}

fn factors(list: &[pb::ObservedFactor]) -> pb::FieldValue {
    pb::FieldValue {
        kind: Some(Kind::List(pb::FieldValueList {
            items: list
                .iter()
                .map(|f| {
                    let mut fields = HashMap::from([(
                        "code".to_owned(),
                        pb::FieldValue {
                            kind: Some(Kind::Code(f.code.clone())),
                        },
                    )]);
                    if !f.note.is_empty() {
                        fields.insert("note".into(), text(&f.note));
                    }
                    pb::FieldValue {
                        kind: Some(Kind::Record(pb::FieldRecord { fields })),
                    }
                })
                .collect(),
        })),
    }
}

/// Organisations already involved, as a list of records {organisation_id,
/// name, sector} (the parts given).
fn organisations(list: &[pb::InvolvedOrganisation]) -> pb::FieldValue {
    let items = list
        .iter()
        .map(|o| {
            let fields: HashMap<String, pb::FieldValue> = [
                ("organisation_id", &o.organisation_id),
                ("name", &o.name),
                ("sector", &o.sector),
            ]
            .into_iter()
            .filter(|(_, v)| !v.trim().is_empty())
            .map(|(k, v)| (k.to_owned(), text(v.trim())))
            .collect();
            pb::FieldValue {
                kind: Some(Kind::Record(pb::FieldRecord { fields })),
            }
        })
        .collect();
    pb::FieldValue {
        kind: Some(Kind::List(pb::FieldValueList { items })),
    }
}

/// The contributions a registration form makes: (path, client_ref, value).
fn form_values(
    form: &pb::RegistrationForm,
    refs: &HashMap<String, String>,
) -> Result<Vec<(String, String, pb::FieldValue)>> {
    let trimmed = |t: &str| (!t.trim().is_empty()).then(|| text(t.trim()));
    let codes = |c: &[String]| (!c.is_empty()).then(|| code_list(c));
    let dossier_fields = [
        ("registration.violence_types", codes(&form.violence_types)),
        ("registration.violence_forms", codes(&form.violence_forms)),
        (
            "registration.situation_description",
            trimmed(&form.situation_description),
        ),
        (
            "registration.risk_factors",
            (!form.risk_factors.is_empty()).then(|| factors(&form.risk_factors)),
        ),
        (
            "registration.protective_factors",
            (!form.protective_factors.is_empty()).then(|| factors(&form.protective_factors)),
        ),
        (
            "registration.involved_organisations",
            (!form.involved_organisations.is_empty())
                .then(|| organisations(&form.involved_organisations)),
        ),
        (
            "registration.source_reference",
            trimmed(&form.source_reference),
        ),
    ];
    let mut out: Vec<(String, String, pb::FieldValue)> = dossier_fields
        .into_iter()
        .filter_map(|(path, value)| value.map(|v| (path.to_owned(), String::new(), v)))
        .collect();
    for (i, p) in form.persons.iter().enumerate() {
        let r = &p.client_ref;
        out.push((
            "persons.roles".into(),
            r.clone(),
            code_list(&role_codes(
                &p.roles
                    .iter()
                    .filter_map(|x| pb::PersonRole::try_from(*x).ok())
                    .collect::<Vec<_>>(),
            )),
        ));
        for (path, value) in [
            ("persons.given_name", &p.given_name),
            ("persons.family_name", &p.family_name),
        ] {
            if !value.trim().is_empty() {
                out.push((path.into(), r.clone(), text(value.trim())));
            }
        }
        if let Some(b) = &p.birth_date {
            out.push((
                "persons.birth_date".into(),
                r.clone(),
                pb::FieldValue {
                    kind: Some(Kind::Date(*b)),
                },
            ));
        }
        if !p.national_number.is_empty() {
            let canonical = crate::national_number::parse(&p.national_number).map_err(|_| {
                Status::from(Invalid::at(
                    format!("form.persons[{i}].national_number"),
                    "not a valid national register number (11 digits, mod-97 check)",
                ))
            })?;
            out.push((
                "persons.national_number".into(),
                r.clone(),
                text(&canonical),
            ));
        }
        if let Some(a) = &p.address {
            out.push((
                "persons.address".into(),
                r.clone(),
                pb::FieldValue {
                    kind: Some(Kind::Address(a.clone())),
                },
            ));
        }
    }
    // Relations: each person's list of {person, kind} records.
    let mut relations: Vec<(String, Vec<pb::FieldValue>)> = Vec::new();
    for (i, r) in form.relations.iter().enumerate() {
        let (Some(_), Some(to)) = (refs.get(&r.from_person), refs.get(&r.to_person)) else {
            return Err(Invalid::at(
                format!("form.relations[{i}]"),
                "from_person and to_person must name persons of the form",
            )
            .into());
        };
        validate::code("form.relations.kind", &r.kind)?;
        let record = pb::FieldValue {
            kind: Some(Kind::Record(pb::FieldRecord {
                fields: HashMap::from([
                    (
                        "person".to_owned(),
                        pb::FieldValue {
                            kind: Some(Kind::PersonRef(to.clone())),
                        },
                    ),
                    (
                        "kind".to_owned(),
                        pb::FieldValue {
                            kind: Some(Kind::Code(r.kind.clone())),
                        },
                    ),
                ]),
            })),
        };
        match relations
            .iter_mut()
            .find(|(from, _)| *from == r.from_person)
        {
            Some((_, list)) => list.push(record),
            None => relations.push((r.from_person.clone(), vec![record])),
        }
    }
    for (from, items) in relations {
        out.push((
            "persons.relations".into(),
            from,
            pb::FieldValue {
                kind: Some(Kind::List(pb::FieldValueList { items })),
            },
        ));
    }
    for f in &form.additional_fields {
        out.push((
            f.path.clone(),
            f.client_ref.clone(),
            f.value.clone().unwrap_or_default(),
        ));
    }
    Ok(out)
}

impl Broker {
    async fn register(
        &self,
        request: Request<pb::RegisterDossierRequest>,
    ) -> Result<pb::RegisterDossierResponse> {
        let caller = Caller::of(&request)?.clone();
        let behalf = on_behalf_of(&request)?;
        let action = pb::AuditAction::DossierRegister;
        let professional = matches!(
            caller.kind,
            PrincipalKind::User | PrincipalKind::ServiceAccount
        );
        if !(professional
            && (caller.has_role(Role::Aanmelder) || caller.has_role(Role::TeamMember)))
        {
            let d =
                Decided::new(action, "", "triage").denied(pb::AccessDenialReason::RoleNotPermitted);
            return Err(self
                .refuse(
                    &caller,
                    &behalf,
                    d,
                    refusal(
                        Code::PermissionDenied,
                        "ROLE_NOT_PERMITTED",
                        "only an aanmelder or team member of a partner registers dossiers",
                        &[],
                    ),
                )
                .await);
        }
        let req = request.into_inner();
        let district = validate::region("district", &req.district)?;
        if !matches!(
            pb::Track::try_from(req.requested_track),
            Ok(pb::Track::Consult | pb::Track::CaseSupport | pb::Track::ChainApproach)
        ) {
            return Err(Invalid::new("requested_track", "spoor 1, 2 or 3 is required").into());
        }
        let key_text = req.idempotency_key.trim();
        if key_text.is_empty() || key_text.len() > 64 {
            return Err(Invalid::new("idempotency_key", "1-64 characters are required").into());
        }
        let form = req.form.unwrap_or_default();
        if form.persons.is_empty() {
            return Err(Invalid::new(
                "form.persons",
                "at least one person (a slachtoffer) is required",
            )
            .into());
        }
        let mut refs: HashMap<String, String> = HashMap::new();
        let mut people = Vec::new();
        for (i, p) in form.persons.iter().enumerate() {
            let roles: Vec<pb::PersonRole> = p
                .roles
                .iter()
                .map(|r| {
                    pb::PersonRole::try_from(*r)
                        .ok()
                        .filter(|r| *r != pb::PersonRole::Unspecified)
                })
                .collect::<Option<Vec<_>>>()
                .filter(|r| !r.is_empty())
                .ok_or_else(|| {
                    Status::from(Invalid::at(
                        format!("form.persons[{i}].roles"),
                        "known roles are required",
                    ))
                })?;
            if p.client_ref.is_empty()
                || p.client_ref.len() > 64
                || refs.contains_key(&p.client_ref)
            {
                return Err(Invalid::at(
                    format!("form.persons[{i}].client_ref"),
                    "a unique reference of 1-64 characters is required",
                )
                .into());
            }
            let id = uuid::Uuid::new_v4().to_string();
            refs.insert(p.client_ref.clone(), id.clone());
            people.push((id, role_codes(&roles), p.informing.clone()));
        }
        if !people
            .iter()
            .any(|(_, roles, _)| roles.iter().any(|r| r == "slachtoffer"))
        {
            return Err(
                Invalid::new("form.persons", "at least one slachtoffer is required").into(),
            );
        }
        for code in form.violence_forms.iter().chain(&form.violence_types) {
            validate::code("form.violence_forms", code)?;
        }
        let snapshot = self.policy();
        // The form as contributions, each checked against the catalogue.
        let mut contributions = Vec::new();
        for (i, (path, client_ref, value)) in form_values(&form, &refs)?.into_iter().enumerate() {
            let Some(field) = snapshot.fields.iter().find(|f| f.path == path) else {
                return Err(Invalid::at(
                    format!("form[{i}]"),
                    format!("{path} is not in the field catalogue"),
                )
                .into());
            };
            let person_id = if field.per_person {
                refs.get(&client_ref).cloned().ok_or_else(|| {
                    Status::from(Invalid::at(
                        format!("form[{i}].client_ref"),
                        format!("{path} needs the client_ref of a person"),
                    ))
                })?
            } else {
                String::new()
            };
            values::check(format!("form[{i}].value ({path})"), &value, field)?;
            contributions.push((path, person_id, value));
        }

        // Idempotent retry: the first registration.
        let pool = self.inner.db.pool();
        if let Some(existing) = store::by_idempotency_key(pool, &caller.organisation_id, key_text)
            .await
            .map_err(internal)?
        {
            let mut conn = pool.acquire().await.map_err(db)?;
            let row = store::dossier(&mut conn, &existing)
                .await
                .map_err(internal)?
                .ok_or_else(|| internal(anyhow::anyhow!("dossier vanished")))?;
            let loaded = Loaded {
                participants: store::participants(&mut conn, &existing)
                    .await
                    .map_err(internal)?,
                persons: store::persons(&mut conn, &existing)
                    .await
                    .map_err(internal)?,
                row,
            };
            return Ok(pb::RegisterDossierResponse {
                persons: loaded
                    .persons
                    .iter()
                    .map(|(p, _)| pb::RegisteredPerson {
                        client_ref: String::new(),
                        person_id: p.clone(),
                    })
                    .collect(),
                legal_basis: Some(loaded.row.basis.clone()),
                dossier: Some(loaded.to_proto()),
                policy_version: snapshot.version,
                audit_index: 0,
            });
        }

        // Policy: the caller may contribute every form field during registration.
        let roles = Self::roles_for(&caller, None);
        let allowed = snapshot.table.allowed(
            &caller.partner_type,
            &roles,
            pb::Phase::Registration as i32,
            pb::FieldAction::Contribute as i32,
        );
        let dossier_id = uuid::Uuid::new_v4().to_string();
        if let Some((path, _, _)) = contributions.iter().find(|(path, _, _)| {
            !snapshot
                .table
                .field(path)
                .is_some_and(|i| allowed.contains(i))
        }) {
            let mut d = Decided::new(action, &dossier_id, "triage")
                .denied(pb::AccessDenialReason::PolicyDenied);
            d.policy_version = snapshot.version;
            d.phase = pb::Phase::Registration as i32;
            return Err(self
                .refuse(
                    &caller,
                    &behalf,
                    d,
                    refusal(
                        Code::PermissionDenied,
                        "POLICY_DENIED",
                        &format!("the policy does not let you contribute {path}"),
                        &[("field", path)],
                    ),
                )
                .await);
        }

        // Legal basis for triage, counting the dossier against the cap.
        let victims: Vec<String> = people
            .iter()
            .filter(|(_, r, _)| r.iter().any(|x| x == "slachtoffer"))
            .map(|(p, _, _)| p.clone())
            .collect();
        let perpetrators: Vec<String> = people
            .iter()
            .filter(|(_, r, _)| r.iter().any(|x| x == "pleger"))
            .map(|(p, _, _)| p.clone())
            .collect();
        let answer = self
            .inner
            .basis
            .check(pb::CheckBasisRequest {
                organisation_id: caller.organisation_id.clone(),
                purpose: "triage".into(),
                dossier: Some(pb::BasisDossierContext {
                    dossier_id: dossier_id.clone(),
                    district: district.clone(),
                    track: req.requested_track,
                    violence_forms: form.violence_forms.clone(),
                    victim_person_ids: victims,
                    perpetrator_person_ids: perpetrators,
                }),
                at: None,
                count_dossier: true,
                informing: 0,
            })
            .await?;
        if !answer.allowed {
            let reason = pb::BasisDenialReason::try_from(answer.denial_reason)
                .unwrap_or(pb::BasisDenialReason::Unspecified)
                .as_str_name();
            let mut d = Decided::new(action, &dossier_id, "triage")
                .denied(pb::AccessDenialReason::NoLegalBasis);
            d.basis_denial = reason.into();
            d.basis = answer.agreement;
            d.policy_version = snapshot.version;
            return Err(self
                .refuse(
                    &caller,
                    &behalf,
                    d,
                    refusal(
                        Code::PermissionDenied,
                        "NO_LEGAL_BASIS",
                        &format!("no agreement covers registering this dossier ({reason})"),
                        &[("basis_denial_reason", reason)],
                    ),
                )
                .await);
        }
        let basis = answer
            .agreement
            .ok_or_else(|| internal(anyhow::anyhow!("an allowed basis names its agreement")))?;

        let now = self.now();
        let (data_key, wrapped) = self
            .inner
            .keys
            .new_data_key(&dossier_id)
            .map_err(internal)?;
        let row = store::DossierRow {
            dossier_id: dossier_id.clone(),
            district,
            requested_track: req.requested_track,
            track: 0,
            phase: pb::Phase::Registration as i32,
            phase_since: now,
            registered_at: now,
            registering_org: caller.organisation_id.clone(),
            basis: basis.clone(),
            case_director: None,
            updated_at: now,
            revision: 1,
            key: Some(wrapped),
        };
        let participant = pb::DossierParticipant {
            organisation_id: caller.organisation_id.clone(),
            partner_type: caller.partner_type.clone(),
            registrant: true,
            added_by: caller.subject.clone(),
            added_at: Some(to_timestamp(now)),
        };
        let mut tx = pool.begin().await.map_err(db)?;
        store::insert_dossier(&mut tx, &row, key_text)
            .await
            .map_err(internal)?;
        store::add_participant(&mut tx, &dossier_id, &participant)
            .await
            .map_err(internal)?;
        let lookup = crate::lookup::LookupKey::derive(self.inner.keys.current());
        for ((person_id, roles, _), input) in people.iter().zip(&form.persons) {
            store_person(&mut tx, &lookup, &dossier_id, person_id, roles, input, now).await?;
        }
        let paths = store_form(
            &mut tx,
            &data_key,
            &caller,
            &dossier_id,
            "triage",
            &contributions,
            1,
            now,
        )
        .await?;
        let mut d = Decided::new(action, &dossier_id, "triage");
        d.person_ids = people.iter().map(|(p, _, _)| p.clone()).collect();
        d.basis = Some(basis.clone());
        d.policy_version = snapshot.version;
        d.phase = pb::Phase::Registration as i32;
        d.contributed = paths;
        let audit_index = self.record(&caller, &behalf, d).await?;
        tx.commit().await.map_err(db)?;
        tracing::info!(dossier = %dossier_id, "dossier registered");

        // Informing goes to the legal-basis service (audited there).
        for (person_id, _, informing) in &people {
            if let Some(details) = informing
                && details.state != 0
            {
                self.inner
                    .basis
                    .record_informing(pb::RecordInformingRequest {
                        dossier_id: dossier_id.clone(),
                        person_id: person_id.clone(),
                        details: Some(details.clone()),
                        on_behalf_of: Some(caller.to_actor()),
                        trace_id: schakel_kit::audit::current_trace_id(),
                    })
                    .await?;
            }
        }
        let loaded = Loaded {
            row,
            participants: vec![participant],
            persons: people
                .iter()
                .map(|(p, r, _)| (p.clone(), r.clone()))
                .collect(),
        };
        Ok(pb::RegisterDossierResponse {
            dossier: Some(loaded.to_proto()),
            persons: form
                .persons
                .iter()
                .map(|p| pb::RegisteredPerson {
                    client_ref: p.client_ref.clone(),
                    person_id: refs[&p.client_ref].clone(),
                })
                .collect(),
            legal_basis: Some(basis),
            policy_version: snapshot.version,
            audit_index,
        })
    }

    async fn read(
        &self,
        request: Request<pb::GetDossierRequest>,
    ) -> Result<pb::GetDossierResponse> {
        let caller = Caller::of(&request)?.clone();
        let behalf = on_behalf_of(&request)?;
        let action = pb::AuditAction::DossierRead;
        let req = request.into_inner();
        let dossier_id = validate::id("dossier_id", &req.dossier_id)?;
        let purpose = validate::code("purpose", &req.purpose)?;
        let snapshot = self.policy();
        let asked = requested(&snapshot, &req.fields)?;
        for p in &req.person_ids {
            validate::id("person_ids", p)?;
        }
        self.content_caller(&caller, &behalf, action, &dossier_id)
            .await?;
        // Circle.
        let loaded = self
            .load(&caller, &behalf, action, &dossier_id, &purpose)
            .await?;
        let key = self.data_key(&loaded)?;
        // Legal basis.
        let (stored, basis) = self
            .covered(
                &caller,
                &behalf,
                action,
                &loaded,
                &key,
                &purpose,
                snapshot.version,
            )
            .await?;
        // Policy.
        let roles = Self::roles_for(&caller, Some(&loaded.row));
        let decision = snapshot.table.decide(
            &caller.partner_type,
            &roles,
            loaded.row.phase,
            pb::FieldAction::Read as i32,
        );
        let fields = snapshot.table.fields();
        let mut released = Vec::new();
        let mut withheld = Vec::new();
        for i in &asked {
            if decision.allowed.contains(*i) {
                released.push(fields[*i].clone());
            } else {
                withheld.push(pb::WithheldField {
                    path: fields[*i].clone(),
                    reason: if decision.other_phase.contains(*i) {
                        pb::AccessDenialReason::Phase
                    } else {
                        pb::AccessDenialReason::PolicyDenied
                    } as i32,
                });
            }
        }
        // Decrypt what is released.
        let persons_asked: Vec<&String> = req.person_ids.iter().collect();
        let mut by_path: HashMap<&str, Vec<pb::Contribution>> = HashMap::new();
        let mut persons_in_scope: Vec<String> = Vec::new();
        for c in stored.iter() {
            if !released.contains(&c.meta.path) {
                continue;
            }
            if !c.meta.person_id.is_empty()
                && !persons_asked.is_empty()
                && !persons_asked.contains(&&c.meta.person_id)
            {
                continue;
            }
            if !req.include_history && !c.meta.superseded_by_contribution_id.is_empty() {
                continue;
            }
            let mut shown = c.meta.clone();
            shown.value = open(&key, &dossier_id, c)?;
            if !shown.person_id.is_empty() && !persons_in_scope.contains(&shown.person_id) {
                persons_in_scope.push(shown.person_id.clone());
            }
            by_path
                .entry(
                    released
                        .iter()
                        .find(|p| **p == c.meta.path)
                        .map_or("", |p| p.as_str()),
                )
                .or_default()
                .push(shown);
        }
        let outcome = match (released.is_empty(), withheld.is_empty()) {
            (false, true) => pb::Decision::Granted,
            (false, false) => pb::Decision::PartiallyGranted,
            (true, _) => pb::Decision::Denied,
        };
        let mut d = Decided::new(action, &dossier_id, &purpose);
        d.decision = outcome;
        if outcome == pb::Decision::Denied {
            d.denial = pb::AccessDenialReason::PolicyDenied;
        }
        d.person_ids = if released.iter().any(|p| p.starts_with("persons.")) {
            loaded
                .persons
                .iter()
                .map(|(p, _)| p.clone())
                .filter(|p| persons_asked.is_empty() || persons_asked.contains(&p))
                .collect()
        } else {
            persons_in_scope
        };
        d.basis = Some(basis.clone());
        d.policy_version = snapshot.version;
        d.phase = loaded.row.phase;
        d.released = released.clone();
        d.withheld = withheld.clone();
        let audit_index = self.record(&caller, &behalf, d).await?;
        Ok(pb::GetDossierResponse {
            dossier: Some(loaded.to_proto()),
            released: released
                .iter()
                .map(|p| pb::ReleasedField {
                    path: p.clone(),
                    contributions: by_path.remove(p.as_str()).unwrap_or_default(),
                })
                .collect(),
            withheld,
            decision: outcome as i32,
            policy_version: snapshot.version,
            legal_basis: Some(basis),
            audit_index,
            history: vec![],
        })
    }

    async fn contribute(
        &self,
        request: Request<pb::ContributeRequest>,
    ) -> Result<pb::ContributeResponse> {
        let caller = Caller::of(&request)?.clone();
        let behalf = on_behalf_of(&request)?;
        let req = request.into_inner();
        let dossier_id = validate::id("dossier_id", &req.dossier_id)?;
        let purpose = validate::code("purpose", &req.purpose)?;
        let stored = self
            .store_contributions(
                &caller,
                &behalf,
                pb::AuditAction::Contribute,
                &dossier_id,
                &purpose,
                &req.contributions,
                None,
            )
            .await?;
        Ok(pb::ContributeResponse {
            contributions: stored.contributions,
            policy_version: stored.policy_version,
            legal_basis: Some(stored.basis),
            audit_index: stored.audit_index,
        })
    }

    /// Checks and stores contributions (all or nothing) under circle, basis
    /// and policy; when `answering`, also closes the answered request in the
    /// same transaction.
    #[allow(clippy::too_many_arguments)]
    async fn store_contributions(
        &self,
        caller: &Caller,
        behalf: &str,
        action: pb::AuditAction,
        dossier_id: &str,
        purpose: &str,
        inputs: &[pb::ContributionInput],
        answering: Option<(pb::InformationRequest, i32)>,
    ) -> Result<Stored> {
        let caller = caller.clone();
        let behalf = behalf.to_owned();
        let dossier_id = dossier_id.to_owned();
        let purpose = purpose.to_owned();
        if (inputs.is_empty() && answering.is_none()) || inputs.len() > 100 {
            return Err(Invalid::new("contributions", "1-100 contributions").into());
        }
        let snapshot = self.policy();
        for (i, c) in inputs.iter().enumerate() {
            let place = |what: &str| format!("contributions[{i}].{what}");
            let Some(field) = snapshot.fields.iter().find(|f| f.path == c.path) else {
                return Err(Invalid::at(
                    place("path"),
                    format!("{} is not in the field catalogue", c.path),
                )
                .into());
            };
            if field.per_person == c.person_id.is_empty() {
                return Err(Invalid::at(
                    place("person_id"),
                    if field.per_person {
                        "this field is about one person: name the person"
                    } else {
                        "this field is about the dossier: no person"
                    },
                )
                .into());
            }
            match &c.value {
                Some(v) => values::check(place("value"), v, field)?,
                None if !c.supersedes_contribution_id.is_empty() => {}
                None => {
                    return Err(Invalid::at(
                        place("value"),
                        "a value is required (or supersedes, to retract)",
                    )
                    .into());
                }
            }
            if !c.supersedes_contribution_id.is_empty() {
                validate::id(
                    "contributions.supersedes_contribution_id",
                    &c.supersedes_contribution_id,
                )?;
            }
        }
        self.content_caller(&caller, &behalf, action, &dossier_id)
            .await?;
        let loaded = self
            .load(&caller, &behalf, action, &dossier_id, &purpose)
            .await?;
        let key = self.data_key(&loaded)?;
        for c in inputs {
            if !c.person_id.is_empty() && !loaded.persons.iter().any(|(p, _)| *p == c.person_id) {
                return Err(Invalid::new(
                    "contributions.person_id",
                    "not a person of this dossier",
                )
                .into());
            }
        }
        // Legal basis.
        let (_, basis) = self
            .covered(
                &caller,
                &behalf,
                action,
                &loaded,
                &key,
                &purpose,
                snapshot.version,
            )
            .await?;
        let roles = Self::roles_for(&caller, Some(&loaded.row));
        let allowed = snapshot.table.allowed(
            &caller.partner_type,
            &roles,
            loaded.row.phase,
            pb::FieldAction::Contribute as i32,
        );
        if let Some(c) = inputs.iter().find(|c| {
            !snapshot
                .table
                .field(&c.path)
                .is_some_and(|i| allowed.contains(i))
        }) {
            let mut d = Decided::new(action, &dossier_id, &purpose)
                .denied(pb::AccessDenialReason::PolicyDenied);
            d.basis = Some(basis);
            d.policy_version = snapshot.version;
            d.phase = loaded.row.phase;
            return Err(self
                .refuse(
                    &caller,
                    &behalf,
                    d,
                    refusal(
                        Code::PermissionDenied,
                        "POLICY_DENIED",
                        &format!(
                            "the policy does not let you contribute {} in this phase",
                            c.path
                        ),
                        &[("field", &c.path)],
                    ),
                )
                .await);
        }
        let request_id = answering
            .as_ref()
            .map(|(r, _)| r.information_request_id.clone())
            .unwrap_or_default();
        let now = self.now();
        let mut tx = self.inner.db.pool().begin().await.map_err(db)?;
        store::touch(&mut tx, &dossier_id, now)
            .await
            .map_err(internal)?;
        let mut seq = store::next_seq(&mut tx, &dossier_id)
            .await
            .map_err(internal)?;
        let mut saved = Vec::new();
        for c in inputs {
            let meta = pb::Contribution {
                supersedes_contribution_id: c.supersedes_contribution_id.clone(),
                information_request_id: request_id.clone(),
                ..contribution_by(&caller, &c.path, &c.person_id, &purpose, now)
            };
            let sealed = c
                .value
                .as_ref()
                .map(|v| seal(&key, &dossier_id, &meta, v))
                .transpose()?;
            store::insert_contribution(
                &mut tx,
                &dossier_id,
                seq,
                &store::ContributionRow {
                    meta: meta.clone(),
                    sealed,
                },
            )
            .await
            .map_err(internal)?;
            seq += 1;
            if !c.supersedes_contribution_id.is_empty()
                && !store::supersede(&mut tx, &dossier_id, &c.supersedes_contribution_id, &meta)
                    .await
                    .map_err(internal)?
            {
                return Err(refusal(
                    Code::FailedPrecondition,
                    "NOT_SUPERSEDABLE",
                    "only a current contribution of your own organisation to the same field and person can be corrected",
                    &[],
                ));
            }
            saved.push(pb::Contribution {
                value: c.value.clone(),
                ..meta
            });
        }
        let answered = match answering {
            Some((mut request, status)) => {
                request.answer_contribution_ids =
                    saved.iter().map(|c| c.contribution_id.clone()).collect();
                request.status = status;
                request.closed_at = Some(to_timestamp(now));
                request.closed_by = caller.subject.clone();
                let sealed = seal_request(&key, &request)?;
                if !store::update_request(
                    &mut tx,
                    &request.information_request_id,
                    pb::InformationRequestStatus::Open as i32,
                    status,
                    &sealed,
                )
                .await
                .map_err(internal)?
                {
                    return Err(refusal(
                        Code::FailedPrecondition,
                        "NOT_OPEN",
                        "the request is no longer open",
                        &[],
                    ));
                }
                Some(request)
            }
            None => None,
        };
        let mut d = Decided::new(action, &dossier_id, &purpose);
        d.basis = Some(basis.clone());
        d.policy_version = snapshot.version;
        d.phase = loaded.row.phase;
        d.contributed = saved.iter().map(|c| c.path.clone()).collect();
        d.person_ids = saved
            .iter()
            .filter(|c| !c.person_id.is_empty())
            .map(|c| c.person_id.clone())
            .collect();
        if let Some(r) = &answered {
            d.organisation = r.from_organisation_id.clone();
        }
        let audit_index = self.record_with(&caller, &behalf, d, &request_id).await?;
        tx.commit().await.map_err(db)?;
        Ok(Stored {
            contributions: saved,
            basis,
            policy_version: snapshot.version,
            audit_index,
            answered,
        })
    }

    async fn add_participant_to(
        &self,
        request: Request<pb::AddParticipantRequest>,
    ) -> Result<pb::AddParticipantResponse> {
        let caller = Caller::of(&request)?.clone();
        let behalf = on_behalf_of(&request)?;
        let action = pb::AuditAction::ParticipantAdd;
        let req = request.into_inner();
        let dossier_id = validate::id("dossier_id", &req.dossier_id)?;
        let organisation_id = validate::id("organisation_id", &req.organisation_id)?;
        self.content_caller(&caller, &behalf, action, &dossier_id)
            .await?;
        let mut loaded = self.load(&caller, &behalf, action, &dossier_id, "").await?;
        let roles = Self::roles_for(&caller, Some(&loaded.row));
        let team = [Role::TeamMember, Role::Casusregisseur].map(|r| r.to_proto() as i32);
        if !roles.iter().any(|r| team.contains(r)) {
            return Err(refusal(
                Code::PermissionDenied,
                "ROLE_NOT_PERMITTED",
                "a team member or the casusregisseur adds organisations to the circle",
                &[],
            ));
        }
        let partner_type = self
            .inner
            .organisations
            .partner_type(&organisation_id)
            .await
            .map_err(internal)?
            .ok_or_else(|| Status::from(Invalid::new("organisation_id", "no such organisation")))?;
        let now = self.now();
        let participant = pb::DossierParticipant {
            organisation_id: organisation_id.clone(),
            partner_type,
            registrant: false,
            added_by: caller.subject.clone(),
            added_at: Some(to_timestamp(now)),
        };
        let mut tx = self.inner.db.pool().begin().await.map_err(db)?;
        store::touch(&mut tx, &dossier_id, now)
            .await
            .map_err(internal)?;
        if !store::add_participant(&mut tx, &dossier_id, &participant)
            .await
            .map_err(internal)?
        {
            return Err(Status::already_exists(
                "the organisation is already in the circle",
            ));
        }
        let mut d = Decided::new(action, &dossier_id, "");
        d.organisation = organisation_id;
        d.phase = loaded.row.phase;
        let audit_index = self.record(&caller, &behalf, d).await?;
        tx.commit().await.map_err(db)?;
        loaded.participants.push(participant);
        Ok(pb::AddParticipantResponse {
            dossier: Some(loaded.to_proto()),
            audit_index,
        })
    }

    async fn advance(
        &self,
        request: Request<pb::AdvancePhaseRequest>,
    ) -> Result<pb::AdvancePhaseResponse> {
        let caller = Caller::of(&request)?.clone();
        let behalf = on_behalf_of(&request)?;
        let action = pb::AuditAction::PhaseAdvance;
        let req = request.into_inner();
        let dossier_id = validate::id("dossier_id", &req.dossier_id)?;
        let reason = validate::text("reason", &req.reason, 2000)?;
        if reason.is_empty() {
            return Err(Invalid::new("reason", "say why").into());
        }
        let (Ok(expected), Ok(target)) = (
            pb::Phase::try_from(req.expected_phase),
            pb::Phase::try_from(req.target_phase),
        ) else {
            return Err(Invalid::new("target_phase", "a known phase is required").into());
        };
        self.content_caller(&caller, &behalf, action, &dossier_id)
            .await?;
        let mut loaded = self.load(&caller, &behalf, action, &dossier_id, "").await?;
        let roles = Self::roles_for(&caller, Some(&loaded.row));
        let team = [Role::TeamMember, Role::Casusregisseur].map(|r| r.to_proto() as i32);
        if !roles.iter().any(|r| team.contains(r)) {
            return Err(refusal(
                Code::PermissionDenied,
                "ROLE_NOT_PERMITTED",
                "a team member or the casusregisseur advances the phase",
                &[],
            ));
        }
        if loaded.row.phase != expected as i32 {
            return Err(refusal(
                Code::FailedPrecondition,
                "PHASE_CHANGED",
                "the dossier is no longer in the expected phase: re-read it",
                &[],
            ));
        }
        if !phase::allowed(expected, target) {
            return Err(refusal(
                Code::FailedPrecondition,
                "INVALID_TRANSITION",
                &format!(
                    "a dossier does not go from {} to {}",
                    expected.as_str_name(),
                    target.as_str_name()
                ),
                &[],
            ));
        }
        let track = if (expected, target) == (pb::Phase::Assessment, pb::Phase::CaseDirection) {
            match pb::Track::try_from(req.track) {
                Ok(pb::Track::CaseSupport | pb::Track::ChainApproach) => Some(req.track),
                _ => {
                    return Err(Invalid::new(
                        "track",
                        "the track decided at triage (spoor 2 or 3) is required",
                    )
                    .into());
                }
            }
        } else {
            None
        };
        let now = self.now();
        let mut tx = self.inner.db.pool().begin().await.map_err(db)?;
        store::touch(&mut tx, &dossier_id, now)
            .await
            .map_err(internal)?;
        if !store::set_phase(
            &mut tx,
            &dossier_id,
            expected as i32,
            target as i32,
            track,
            now,
        )
        .await
        .map_err(internal)?
        {
            return Err(refusal(
                Code::FailedPrecondition,
                "PHASE_CHANGED",
                "the dossier changed phase meanwhile",
                &[],
            ));
        }
        let mut d = Decided::new(action, &dossier_id, "");
        d.phase = target as i32;
        let audit_index = self.record(&caller, &behalf, d).await?;
        tx.commit().await.map_err(db)?;
        loaded.row.phase = target as i32;
        loaded.row.phase_since = now;
        if let Some(t) = track {
            loaded.row.track = t;
        }
        Ok(pb::AdvancePhaseResponse {
            dossier: Some(loaded.to_proto()),
            audit_index,
        })
    }

    async fn list(
        &self,
        request: Request<pb::ListDossiersRequest>,
    ) -> Result<pb::ListDossiersResponse> {
        let caller = Caller::of(&request)?.clone();
        let behalf = on_behalf_of(&request)?;
        let action = pb::AuditAction::DossierList;
        let req = request.into_inner();
        let (limit, after) = validate::page(req.page.as_ref())?;
        self.content_caller(&caller, &behalf, action, "").await?;
        let rows = store::dossiers_of(
            self.inner.db.pool(),
            &caller.organisation_id,
            &after,
            limit + 1,
        )
        .await
        .map_err(internal)?;
        let mut dossiers = Vec::new();
        let mut conn = self.inner.db.pool().acquire().await.map_err(db)?;
        for row in rows.into_iter().take(limit as usize) {
            let keep = (req.phases.is_empty() || req.phases.contains(&row.phase))
                && (req.tracks.is_empty() || req.tracks.contains(&row.track))
                && (req.district.is_empty() || req.district == row.district);
            if !keep {
                continue;
            }
            let id = row.dossier_id.clone();
            dossiers.push(
                Loaded {
                    participants: store::participants(&mut conn, &id)
                        .await
                        .map_err(internal)?,
                    persons: store::persons(&mut conn, &id).await.map_err(internal)?,
                    row,
                }
                .to_proto(),
            );
        }
        let next_page_token = if dossiers.len() as i64 == limit {
            dossiers
                .last()
                .map(|d| d.dossier_id.clone())
                .unwrap_or_default()
        } else {
            String::new()
        };
        let d = Decided::new(action, "", "");
        let audit_index = self.record(&caller, &behalf, d).await?;
        Ok(pb::ListDossiersResponse {
            dossiers,
            next_page_token,
            audit_index,
        })
    }
}

#[tonic::async_trait]
impl BrokerService for Broker {
    async fn register_dossier(
        &self,
        request: Request<pb::RegisterDossierRequest>,
    ) -> Result<Response<pb::RegisterDossierResponse>> {
        Ok(Response::new(self.register(request).await?))
    }
    async fn get_dossier(
        &self,
        request: Request<pb::GetDossierRequest>,
    ) -> Result<Response<pb::GetDossierResponse>> {
        Ok(Response::new(self.read(request).await?))
    }
    async fn list_dossiers(
        &self,
        request: Request<pb::ListDossiersRequest>,
    ) -> Result<Response<pb::ListDossiersResponse>> {
        Ok(Response::new(self.list(request).await?))
    }
    async fn add_person(
        &self,
        request: Request<pb::AddPersonRequest>,
    ) -> Result<Response<pb::AddPersonResponse>> {
        Ok(Response::new(self.add_person_to(request).await?))
    }
    async fn add_participant(
        &self,
        request: Request<pb::AddParticipantRequest>,
    ) -> Result<Response<pb::AddParticipantResponse>> {
        Ok(Response::new(self.add_participant_to(request).await?))
    }
    async fn remove_participant(
        &self,
        request: Request<pb::RemoveParticipantRequest>,
    ) -> Result<Response<pb::RemoveParticipantResponse>> {
        Ok(Response::new(self.remove(request).await?))
    }
    async fn assign_case_director(
        &self,
        request: Request<pb::AssignCaseDirectorRequest>,
    ) -> Result<Response<pb::AssignCaseDirectorResponse>> {
        Ok(Response::new(self.assign(request).await?))
    }
    async fn advance_phase(
        &self,
        request: Request<pb::AdvancePhaseRequest>,
    ) -> Result<Response<pb::AdvancePhaseResponse>> {
        Ok(Response::new(self.advance(request).await?))
    }
    async fn contribute(
        &self,
        request: Request<pb::ContributeRequest>,
    ) -> Result<Response<pb::ContributeResponse>> {
        Ok(Response::new(Broker::contribute(self, request).await?))
    }
    async fn update_informing(
        &self,
        request: Request<pb::UpdateInformingRequest>,
    ) -> Result<Response<pb::UpdateInformingResponse>> {
        Ok(Response::new(self.update_informing_of(request).await?))
    }
    async fn get_informing_status(
        &self,
        request: Request<pb::GetInformingStatusRequest>,
    ) -> Result<Response<pb::GetInformingStatusResponse>> {
        Ok(Response::new(self.informing_status(request).await?))
    }
    async fn request_information(
        &self,
        request: Request<pb::RequestInformationRequest>,
    ) -> Result<Response<pb::RequestInformationResponse>> {
        Ok(Response::new(self.request_information_from(request).await?))
    }
    async fn get_information_request(
        &self,
        request: Request<pb::GetInformationRequestRequest>,
    ) -> Result<Response<pb::GetInformationRequestResponse>> {
        {
            let caller = Caller::of(&request)?.clone();
            let behalf = on_behalf_of(&request)?;
            let action = pb::AuditAction::InformationRequestRead;
            let (row, information_request, loaded) = self
                .load_request(
                    &caller,
                    &behalf,
                    action,
                    &request.get_ref().information_request_id,
                )
                .await?;
            let mut d = Decided::new(action, &row.dossier_id, &information_request.purpose);
            d.phase = loaded.row.phase;
            let audit_index = self
                .record_with(&caller, &behalf, d, &row.request_id)
                .await?;
            Ok(Response::new(pb::GetInformationRequestResponse {
                information_request: Some(information_request),
                audit_index,
            }))
        }
    }
    async fn list_information_requests(
        &self,
        request: Request<pb::ListInformationRequestsRequest>,
    ) -> Result<Response<pb::ListInformationRequestsResponse>> {
        Ok(Response::new(self.list_requests(request).await?))
    }
    async fn answer_information_request(
        &self,
        request: Request<pb::AnswerInformationRequestRequest>,
    ) -> Result<Response<pb::AnswerInformationRequestResponse>> {
        Ok(Response::new(self.answer(request).await?))
    }
    async fn decline_information_request(
        &self,
        request: Request<pb::DeclineInformationRequestRequest>,
    ) -> Result<Response<pb::DeclineInformationRequestResponse>> {
        {
            let caller = Caller::of(&request)?.clone();
            let behalf = on_behalf_of(&request)?;
            let req = request.into_inner();
            let reason = match pb::InformationRequestDeclineReason::try_from(req.reason) {
                Ok(r) if r != pb::InformationRequestDeclineReason::Unspecified => r as i32,
                _ => return Err(Invalid::new("reason", "is required").into()),
            };
            let (information_request, audit_index) = self
                .close_request(
                    caller,
                    behalf,
                    &req.information_request_id,
                    Some((reason, String::new())),
                    &req.explanation,
                )
                .await?;
            Ok(Response::new(pb::DeclineInformationRequestResponse {
                information_request: Some(information_request),
                audit_index,
            }))
        }
    }
    async fn cancel_information_request(
        &self,
        request: Request<pb::CancelInformationRequestRequest>,
    ) -> Result<Response<pb::CancelInformationRequestResponse>> {
        {
            let caller = Caller::of(&request)?.clone();
            let behalf = on_behalf_of(&request)?;
            let req = request.into_inner();
            let (information_request, audit_index) = self
                .close_request(
                    caller,
                    behalf,
                    &req.information_request_id,
                    None,
                    &req.explanation,
                )
                .await?;
            Ok(Response::new(pb::CancelInformationRequestResponse {
                information_request: Some(information_request),
                audit_index,
            }))
        }
    }
    async fn erase_dossier(
        &self,
        request: Request<pb::EraseDossierRequest>,
    ) -> Result<Response<pb::EraseDossierResponse>> {
        Ok(Response::new(self.erase(request).await?))
    }
    async fn lookup_data_subject(
        &self,
        request: Request<pb::LookupDataSubjectRequest>,
    ) -> Result<Response<pb::LookupDataSubjectResponse>> {
        Ok(Response::new(self.lookup(request).await?))
    }
}

impl Broker {
    /// A request the caller's organisation sent or received, decrypted.
    async fn load_request(
        &self,
        caller: &Caller,
        behalf: &str,
        action: pb::AuditAction,
        id: &str,
    ) -> Result<(store::RequestRow, pb::InformationRequest, Loaded)> {
        let id = validate::id("information_request_id", id)?;
        let mut conn = self.inner.db.pool().acquire().await.map_err(db)?;
        let row = store::request(&mut conn, &id).await.map_err(internal)?;
        drop(conn);
        let Some(row) = row
            .filter(|r| r.from_org == caller.organisation_id || r.to_org == caller.organisation_id)
        else {
            // Unknown and someone else's look the same.
            return Err(refusal(
                Code::NotFound,
                "NOT_FOUND",
                "no such information request for your organisation",
                &[],
            ));
        };
        let loaded = self
            .load(caller, behalf, action, &row.dossier_id, "")
            .await?;
        let key = self.data_key(&loaded)?;
        let request = open_request(&key, &row, self.now())?;
        Ok((row, request, loaded))
    }

    async fn request_information_from(
        &self,
        request: Request<pb::RequestInformationRequest>,
    ) -> Result<pb::RequestInformationResponse> {
        let caller = Caller::of(&request)?.clone();
        let behalf = on_behalf_of(&request)?;
        let action = pb::AuditAction::InformationRequestCreate;
        let req = request.into_inner();
        let dossier_id = validate::id("dossier_id", &req.dossier_id)?;
        let to = validate::id("to_organisation_id", &req.to_organisation_id)?;
        let purpose = validate::code("purpose", &req.purpose)?;
        let justification = validate::text("justification", &req.justification, 2000)?;
        if justification.is_empty() {
            return Err(Invalid::new("justification", "say why the information is needed").into());
        }
        if req.fields.is_empty() {
            return Err(Invalid::new("fields", "at least one field").into());
        }
        let snapshot = self.policy();
        requested(&snapshot, &req.fields)?;
        let now = self.now();
        let due = validate::timestamp("due_at", req.due_at.as_ref())?;
        if due <= now {
            return Err(Invalid::new("due_at", "must lie in the future").into());
        }
        self.content_caller(&caller, &behalf, action, &dossier_id)
            .await?;
        let loaded = self
            .load(&caller, &behalf, action, &dossier_id, &purpose)
            .await?;
        if !loaded.participants.iter().any(|p| p.organisation_id == to)
            || to == caller.organisation_id
        {
            return Err(refusal(
                Code::FailedPrecondition,
                "NOT_IN_CIRCLE",
                "the addressee must be another organisation in the dossier's circle",
                &[],
            ));
        }
        for p in &req.person_ids {
            if !loaded.persons.iter().any(|(id, _)| id == p) {
                return Err(Invalid::new("person_ids", "not a person of this dossier").into());
            }
        }
        let key = self.data_key(&loaded)?;
        // Legal basis.
        let (_, basis) = self
            .covered(
                &caller,
                &behalf,
                action,
                &loaded,
                &key,
                &purpose,
                snapshot.version,
            )
            .await?;
        let information_request = pb::InformationRequest {
            information_request_id: uuid::Uuid::new_v4().to_string(),
            dossier_id: dossier_id.clone(),
            from_organisation_id: caller.organisation_id.clone(),
            requested_by: caller.subject.clone(),
            to_organisation_id: to.clone(),
            fields: req.fields.clone(),
            person_ids: req.person_ids.clone(),
            purpose: purpose.clone(),
            justification,
            due_at: req.due_at,
            created_at: Some(to_timestamp(now)),
            status: pb::InformationRequestStatus::Open as i32,
            ..Default::default()
        };
        let row = store::RequestRow {
            request_id: information_request.information_request_id.clone(),
            dossier_id: dossier_id.clone(),
            from_org: caller.organisation_id.clone(),
            to_org: to.clone(),
            status: pb::InformationRequestStatus::Open as i32,
            due_at: due,
            created_at: now,
            sealed: seal_request(&key, &information_request)?,
        };
        let mut tx = self.inner.db.pool().begin().await.map_err(db)?;
        store::insert_request(&mut tx, &row)
            .await
            .map_err(internal)?;
        let mut d = Decided::new(action, &dossier_id, &purpose);
        d.organisation = to;
        d.basis = Some(basis);
        d.policy_version = snapshot.version;
        d.phase = loaded.row.phase;
        d.person_ids = req.person_ids.clone();
        let audit_index = self
            .record_with(&caller, &behalf, d, &row.request_id)
            .await?;
        tx.commit().await.map_err(db)?;
        Ok(pb::RequestInformationResponse {
            information_request: Some(information_request),
            audit_index,
        })
    }

    async fn list_requests(
        &self,
        request: Request<pb::ListInformationRequestsRequest>,
    ) -> Result<pb::ListInformationRequestsResponse> {
        let caller = Caller::of(&request)?.clone();
        let behalf = on_behalf_of(&request)?;
        let action = pb::AuditAction::InformationRequestRead;
        let req = request.into_inner();
        let (limit, token) = validate::page(req.page.as_ref())?;
        let skip: usize = if token.is_empty() {
            0
        } else {
            token.parse().map_err(|_| {
                Invalid::new("page.page_token", "not a page token from this service")
            })?
        };
        let (inbox, outbox) = match pb::InformationRequestBox::try_from(req.r#box) {
            Ok(pb::InformationRequestBox::Inbox) => (true, false),
            Ok(pb::InformationRequestBox::Outbox) => (false, true),
            _ => (true, true),
        };
        self.content_caller(&caller, &behalf, action, "").await?;
        let rows = store::requests_of(self.inner.db.pool(), &caller.organisation_id, inbox, outbox)
            .await
            .map_err(internal)?;
        let now = self.now();
        let mut keys: HashMap<String, schakel_kit::crypto::SecretKey> = HashMap::new();
        let mut selected = Vec::new();
        let mut conn = self.inner.db.pool().acquire().await.map_err(db)?;
        for row in rows {
            if !req.dossier_id.is_empty() && row.dossier_id != req.dossier_id {
                continue;
            }
            if !req.statuses.is_empty() && !req.statuses.contains(&row.status) {
                continue;
            }
            let key = match keys.get(&row.dossier_id) {
                Some(k) => k.clone(),
                None => {
                    let Some(d) = store::dossier(&mut conn, &row.dossier_id)
                        .await
                        .map_err(internal)?
                    else {
                        continue;
                    };
                    let Some(wrapped) = d.key else { continue };
                    let k = self
                        .inner
                        .keys
                        .unwrap(&wrapped, &d.dossier_id)
                        .map_err(internal)?;
                    keys.insert(row.dossier_id.clone(), k.clone());
                    k
                }
            };
            let r = open_request(&key, &row, now)?;
            if req.overdue_only && !r.overdue {
                continue;
            }
            selected.push(r);
        }
        drop(conn);
        let page: Vec<pb::InformationRequest> = selected
            .iter()
            .skip(skip)
            .take(limit as usize)
            .cloned()
            .collect();
        let next_page_token = if skip + page.len() < selected.len() {
            (skip + page.len()).to_string()
        } else {
            String::new()
        };
        let d = Decided::new(action, &req.dossier_id, "");
        let audit_index = self.record(&caller, &behalf, d).await?;
        Ok(pb::ListInformationRequestsResponse {
            information_requests: page,
            next_page_token,
            audit_index,
        })
    }

    async fn answer(
        &self,
        request: Request<pb::AnswerInformationRequestRequest>,
    ) -> Result<pb::AnswerInformationRequestResponse> {
        let caller = Caller::of(&request)?.clone();
        let behalf = on_behalf_of(&request)?;
        let action = pb::AuditAction::InformationRequestAnswer;
        let req = request.into_inner();
        let (row, mut information_request, _) = self
            .load_request(&caller, &behalf, action, &req.information_request_id)
            .await?;
        if row.to_org != caller.organisation_id {
            return Err(refusal(
                Code::PermissionDenied,
                "NOT_ADDRESSEE",
                "only the addressee answers",
                &[],
            ));
        }
        if row.status != pb::InformationRequestStatus::Open as i32 {
            return Err(refusal(
                Code::FailedPrecondition,
                "NOT_OPEN",
                "the request is no longer open",
                &[],
            ));
        }
        let snapshot = self.policy();
        let asked: Vec<usize> = requested(&snapshot, &information_request.fields)?;
        for c in &req.contributions {
            if !snapshot
                .table
                .field(&c.path)
                .is_some_and(|i| asked.contains(&i))
            {
                return Err(
                    Invalid::new("contributions", format!("{} was not asked", c.path)).into(),
                );
            }
        }
        for f in &req.declined_fields {
            if !snapshot
                .table
                .field(&f.path)
                .is_some_and(|i| asked.contains(&i))
                || pb::InformationRequestDeclineReason::try_from(f.reason)
                    .is_ok_and(|r| r == pb::InformationRequestDeclineReason::Unspecified)
                || pb::InformationRequestDeclineReason::try_from(f.reason).is_err()
            {
                return Err(Invalid::new(
                    "declined_fields",
                    format!("{}: an asked field and a reason", f.path),
                )
                .into());
            }
        }
        information_request.declined_fields = req.declined_fields.clone();
        information_request.answer_note = validate::text("note", &req.note, 2000)?;
        let status = if req.declined_fields.is_empty() {
            pb::InformationRequestStatus::Answered
        } else {
            pb::InformationRequestStatus::PartiallyAnswered
        } as i32;
        let purpose = information_request.purpose.clone();
        let stored = self
            .store_contributions(
                &caller,
                &behalf,
                action,
                &row.dossier_id,
                &purpose,
                &req.contributions,
                Some((information_request, status)),
            )
            .await?;
        Ok(pb::AnswerInformationRequestResponse {
            information_request: stored.answered,
            contributions: stored.contributions,
            policy_version: stored.policy_version,
            legal_basis: Some(stored.basis),
            audit_index: stored.audit_index,
        })
    }

    /// Declines (the addressee) or cancels (the sender) an open request.
    async fn close_request(
        &self,
        caller: Caller,
        behalf: String,
        id: &str,
        decline: Option<(i32, String)>,
        explanation: &str,
    ) -> Result<(pb::InformationRequest, u64)> {
        let action = if decline.is_some() {
            pb::AuditAction::InformationRequestDecline
        } else {
            pb::AuditAction::InformationRequestCancel
        };
        let explanation = validate::text("explanation", explanation, 2000)?;
        let (row, mut information_request, loaded) =
            self.load_request(&caller, &behalf, action, id).await?;
        let (status, owner) = match &decline {
            Some(_) => (pb::InformationRequestStatus::Declined, &row.to_org),
            None => (pb::InformationRequestStatus::Cancelled, &row.from_org),
        };
        if *owner != caller.organisation_id {
            return Err(refusal(
                Code::PermissionDenied,
                "NOT_YOURS",
                "the addressee declines; the sender cancels",
                &[],
            ));
        }
        if row.status != pb::InformationRequestStatus::Open as i32 {
            return Err(refusal(
                Code::FailedPrecondition,
                "NOT_OPEN",
                "the request is no longer open",
                &[],
            ));
        }
        let now = self.now();
        information_request.status = status as i32;
        information_request.closed_at = Some(to_timestamp(now));
        information_request.closed_by = caller.subject.clone();
        information_request.explanation = explanation;
        if let Some((reason, _)) = &decline {
            information_request.decline_reason = *reason;
            information_request.declined_fields = information_request
                .fields
                .iter()
                .map(|f| pb::DeclinedField {
                    path: f.clone(),
                    reason: *reason,
                })
                .collect();
        }
        let key = self.data_key(&loaded)?;
        let sealed = seal_request(&key, &information_request)?;
        let mut tx = self.inner.db.pool().begin().await.map_err(db)?;
        if !store::update_request(&mut tx, &row.request_id, row.status, status as i32, &sealed)
            .await
            .map_err(internal)?
        {
            return Err(refusal(
                Code::FailedPrecondition,
                "NOT_OPEN",
                "the request changed meanwhile",
                &[],
            ));
        }
        let mut d = Decided::new(action, &row.dossier_id, &information_request.purpose);
        d.organisation = if decline.is_some() {
            row.from_org.clone()
        } else {
            row.to_org.clone()
        };
        d.phase = loaded.row.phase;
        let audit_index = self
            .record_with(&caller, &behalf, d, &row.request_id)
            .await?;
        tx.commit().await.map_err(db)?;
        information_request.overdue = false;
        Ok((information_request, audit_index))
    }
}

impl Broker {
    /// A team member or the casusregisseur of a dossier in the caller's circle.
    async fn team_action(
        &self,
        caller: &Caller,
        behalf: &str,
        action: pb::AuditAction,
        dossier_id: &str,
    ) -> Result<Loaded> {
        self.content_caller(caller, behalf, action, dossier_id)
            .await?;
        let loaded = self.load(caller, behalf, action, dossier_id, "").await?;
        let roles = Self::roles_for(caller, Some(&loaded.row));
        let team = [Role::TeamMember, Role::Casusregisseur].map(|r| r.to_proto() as i32);
        if !roles.iter().any(|r| team.contains(r)) {
            return Err(refusal(
                Code::PermissionDenied,
                "ROLE_NOT_PERMITTED",
                "a team member or the casusregisseur does this",
                &[],
            ));
        }
        Ok(loaded)
    }

    async fn assign(
        &self,
        request: Request<pb::AssignCaseDirectorRequest>,
    ) -> Result<pb::AssignCaseDirectorResponse> {
        let caller = Caller::of(&request)?.clone();
        let behalf = on_behalf_of(&request)?;
        let action = pb::AuditAction::CaseDirectorAssign;
        let req = request.into_inner();
        let dossier_id = validate::id("dossier_id", &req.dossier_id)?;
        let user = validate::id("user_id", &req.user_id)?;
        let org = validate::id("organisation_id", &req.organisation_id)?;
        let mut loaded = self
            .team_action(&caller, &behalf, action, &dossier_id)
            .await?;
        if loaded.row.phase != pb::Phase::Assessment as i32
            && loaded.row.phase != pb::Phase::CaseDirection as i32
        {
            return Err(refusal(
                Code::FailedPrecondition,
                "WRONG_PHASE",
                "a casusregisseur is appointed at assessment (or replaced during case direction)",
                &[],
            ));
        }
        if !loaded.participants.iter().any(|p| p.organisation_id == org) {
            return Err(refusal(
                Code::FailedPrecondition,
                "NOT_IN_CIRCLE",
                "the casusregisseur's organisation must be in the circle",
                &[],
            ));
        }
        let now = self.now();
        let mut tx = self.inner.db.pool().begin().await.map_err(db)?;
        store::touch(&mut tx, &dossier_id, now)
            .await
            .map_err(internal)?;
        store::set_case_director(&mut tx, &dossier_id, &user, &org, &caller.subject, now)
            .await
            .map_err(internal)?;
        let mut d = Decided::new(action, &dossier_id, "");
        d.organisation = org.clone();
        d.phase = loaded.row.phase;
        let audit_index = self.record_with(&caller, &behalf, d, &user).await?;
        tx.commit().await.map_err(db)?;
        loaded.row.case_director = Some((user, org, now, caller.subject.clone()));
        Ok(pb::AssignCaseDirectorResponse {
            dossier: Some(loaded.to_proto()),
            audit_index,
        })
    }

    async fn remove(
        &self,
        request: Request<pb::RemoveParticipantRequest>,
    ) -> Result<pb::RemoveParticipantResponse> {
        let caller = Caller::of(&request)?.clone();
        let behalf = on_behalf_of(&request)?;
        let action = pb::AuditAction::ParticipantRemove;
        let req = request.into_inner();
        let dossier_id = validate::id("dossier_id", &req.dossier_id)?;
        let org = validate::id("organisation_id", &req.organisation_id)?;
        validate::text("reason", &req.reason, 2000)?;
        let mut loaded = self
            .team_action(&caller, &behalf, action, &dossier_id)
            .await?;
        let now = self.now();
        let mut tx = self.inner.db.pool().begin().await.map_err(db)?;
        store::touch(&mut tx, &dossier_id, now)
            .await
            .map_err(internal)?;
        if !store::remove_participant(&mut tx, &dossier_id, &org)
            .await
            .map_err(internal)?
        {
            return Err(refusal(
                Code::FailedPrecondition,
                "NOT_REMOVABLE",
                "not in the circle, or the registering organisation",
                &[],
            ));
        }
        let mut d = Decided::new(action, &dossier_id, "");
        d.organisation = org.clone();
        d.phase = loaded.row.phase;
        let audit_index = self.record(&caller, &behalf, d).await?;
        tx.commit().await.map_err(db)?;
        loaded.participants.retain(|p| p.organisation_id != org);
        Ok(pb::RemoveParticipantResponse {
            dossier: Some(loaded.to_proto()),
            audit_index,
        })
    }

    async fn update_informing_of(
        &self,
        request: Request<pb::UpdateInformingRequest>,
    ) -> Result<pb::UpdateInformingResponse> {
        let caller = Caller::of(&request)?.clone();
        let behalf = on_behalf_of(&request)?;
        let action = pb::AuditAction::InformingUpdate;
        let req = request.into_inner();
        let dossier_id = validate::id("dossier_id", &req.dossier_id)?;
        let person = validate::id("person_id", &req.person_id)?;
        self.content_caller(&caller, &behalf, action, &dossier_id)
            .await?;
        let loaded = self.load(&caller, &behalf, action, &dossier_id, "").await?;
        let Some((_, roles)) = loaded.persons.iter().find(|(p, _)| *p == person) else {
            return Err(Invalid::new("person_id", "not a person of this dossier").into());
        };
        let deferring = req
            .details
            .as_ref()
            .is_some_and(|d| d.state == pb::InformingState::Deferred as i32);
        if deferring && roles.iter().any(|r| r == "slachtoffer") {
            return Err(refusal(
                Code::FailedPrecondition,
                "VICTIM_NOT_DEFERRABLE",
                "a slachtoffer is informed, never deferred: only informing a pleger may wait",
                &[],
            ));
        }
        let mut d = Decided::new(action, &dossier_id, "");
        d.person_ids = vec![person.clone()];
        d.phase = loaded.row.phase;
        // The decision first (fail closed), then the change at legal-basis,
        // which records it in its own entry.
        let audit_index = self.record(&caller, &behalf, d).await?;
        let record = self
            .inner
            .basis
            .record_informing(pb::RecordInformingRequest {
                dossier_id,
                person_id: person,
                details: req.details,
                on_behalf_of: Some(caller.to_actor()),
                trace_id: schakel_kit::audit::current_trace_id(),
            })
            .await?;
        Ok(pb::UpdateInformingResponse {
            record: Some(record),
            audit_index,
        })
    }

    async fn informing_status(
        &self,
        request: Request<pb::GetInformingStatusRequest>,
    ) -> Result<pb::GetInformingStatusResponse> {
        let caller = Caller::of(&request)?.clone();
        let behalf = on_behalf_of(&request)?;
        let action = pb::AuditAction::InformingRead;
        let req = request.into_inner();
        let dossier_id = validate::id("dossier_id", &req.dossier_id)?;
        let purpose = validate::code("purpose", &req.purpose)?;
        self.content_caller(&caller, &behalf, action, &dossier_id)
            .await?;
        let loaded = self
            .load(&caller, &behalf, action, &dossier_id, &purpose)
            .await?;
        let key = self.data_key(&loaded)?;
        let snapshot = self.policy();
        let (_, basis) = self
            .covered(
                &caller,
                &behalf,
                action,
                &loaded,
                &key,
                &purpose,
                snapshot.version,
            )
            .await?;
        let records = self
            .inner
            .basis
            .informing_records(dossier_id.clone(), req.include_history)
            .await?;
        let mut d = Decided::new(action, &dossier_id, &purpose);
        d.person_ids = loaded.persons.iter().map(|(p, _)| p.clone()).collect();
        d.basis = Some(basis.clone());
        d.policy_version = snapshot.version;
        d.phase = loaded.row.phase;
        let audit_index = self.record(&caller, &behalf, d).await?;
        Ok(pb::GetInformingStatusResponse {
            records,
            policy_version: snapshot.version,
            legal_basis: Some(basis),
            audit_index,
        })
    }
}

/// A reference of a privacy officer or the retention job: an id or code, never a name.
fn reference(field: &'static str, value: &str) -> Result<String> {
    let ok = (1..=64).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:/@+=-".contains(&b));
    if ok {
        Ok(value.to_owned())
    } else {
        Err(Invalid::new(
            field,
            "1-64 characters of [A-Za-z0-9._:/@+=-], a case number, never a name",
        )
        .into())
    }
}

impl Broker {
    /// Privacy officers (for their organisation's dossiers) and Schakel's own
    /// services (the retention job); nobody else.
    fn oversight(caller: &Caller) -> Result<String> {
        if caller.kind == PrincipalKind::InternalService {
            return Ok(String::new());
        }
        if caller.has_role(Role::PrivacyOfficer) {
            return Ok(caller.organisation_id.clone());
        }
        Err(refusal(
            Code::PermissionDenied,
            "ROLE_NOT_PERMITTED",
            "for privacy officers (and the retention job) only",
            &[],
        ))
    }

    async fn erase(
        &self,
        request: Request<pb::EraseDossierRequest>,
    ) -> Result<pb::EraseDossierResponse> {
        let caller = Caller::of(&request)?.clone();
        let behalf = on_behalf_of(&request)?;
        let org = Self::oversight(&caller)?;
        let req = request.into_inner();
        let dossier_id = validate::id("dossier_id", &req.dossier_id)?;
        let reason = match pb::ErasureReason::try_from(req.reason) {
            Ok(r) if r != pb::ErasureReason::Unspecified => r,
            _ => return Err(Invalid::new("reason", "is required").into()),
        };
        let reference = reference("reference", &req.reference)?;
        let mut conn = self.inner.db.pool().acquire().await.map_err(db)?;
        let visible = match store::dossier(&mut conn, &dossier_id)
            .await
            .map_err(internal)?
        {
            Some(_) if org.is_empty() => true,
            Some(_) => store::participants(&mut conn, &dossier_id)
                .await
                .map_err(internal)?
                .iter()
                .any(|p| p.organisation_id == org),
            None => false,
        };
        drop(conn);
        if !visible {
            return Err(refusal(
                Code::NotFound,
                "NOT_FOUND",
                "no such dossier for your organisation",
                &[],
            ));
        }
        let now = self.now();
        let mut tx = self.inner.db.pool().begin().await.map_err(db)?;
        if !store::erase(&mut tx, &dossier_id, now)
            .await
            .map_err(internal)?
        {
            return Err(refusal(
                Code::NotFound,
                "ERASED",
                "the dossier was erased before",
                &[],
            ));
        }
        let mut entry = schakel_kit::audit::entry(
            caller.to_actor(),
            pb::AuditAction::DossierErase,
            pb::Decision::Granted,
            "broker",
            &[("reason", reason.as_str_name()), ("reference", &reference)],
        );
        entry.on_behalf_of = behalf;
        entry.target = Some(pb::AuditTarget {
            dossier_id: dossier_id.clone(),
            ..Default::default()
        });
        let receipt = self
            .inner
            .audit
            .append(entry, schakel_kit::audit::new_append_id())
            .await
            .map_err(Status::from)?;
        tx.commit().await.map_err(db)?;
        tracing::info!(dossier = %dossier_id, "dossier erased");
        Ok(pb::EraseDossierResponse {
            dossier_id,
            erased_at: Some(to_timestamp(now)),
            audit_index: receipt.index,
        })
    }

    async fn lookup(
        &self,
        request: Request<pb::LookupDataSubjectRequest>,
    ) -> Result<pb::LookupDataSubjectResponse> {
        let caller = Caller::of(&request)?.clone();
        let behalf = on_behalf_of(&request)?;
        let org = Self::oversight(&caller)?;
        let req = request.into_inner();
        let reference = reference("request_reference", &req.request_reference)?;
        let key = crate::lookup::LookupKey::derive(self.inner.keys.current());
        use pb::lookup_data_subject_request::Subject;
        let token = match &req.subject {
            Some(Subject::NationalNumber(n)) => {
                key.national_number(&crate::national_number::parse(n).map_err(|_| {
                    Status::from(Invalid::new(
                        "national_number",
                        "not a valid national register number",
                    ))
                })?)
            }
            Some(Subject::NameAndBirthDate(p)) => key
                .name_and_birth_date(&p.given_name, &p.family_name, p.birth_date.as_ref())
                .ok_or_else(|| {
                    Status::from(Invalid::new(
                        "name_and_birth_date",
                        "given name, family name and a full birth date are required",
                    ))
                })?,
            None => {
                return Err(
                    Invalid::new("subject", "a national number or a name and birth date").into(),
                );
            }
        };
        let found = store::find_by_token(self.inner.db.pool(), &token, &org)
            .await
            .map_err(internal)?;
        let mut entry = schakel_kit::audit::entry(
            caller.to_actor(),
            pb::AuditAction::DataSubjectLookup,
            pb::Decision::Granted,
            "broker",
            &[("reference", &reference)],
        );
        entry.on_behalf_of = behalf;
        entry.target = Some(pb::AuditTarget {
            person_ids: found.iter().map(|(_, p)| p.clone()).collect(),
            ..Default::default()
        });
        let receipt = self
            .inner
            .audit
            .append(entry, schakel_kit::audit::new_append_id())
            .await
            .map_err(Status::from)?;
        Ok(pb::LookupDataSubjectResponse {
            matches: found
                .into_iter()
                .map(|(dossier_id, person_id)| pb::DataSubjectMatch {
                    dossier_id,
                    person_id,
                })
                .collect(),
            audit_index: receipt.index,
        })
    }
}

impl Broker {
    async fn add_person_to(
        &self,
        request: Request<pb::AddPersonRequest>,
    ) -> Result<pb::AddPersonResponse> {
        let caller = Caller::of(&request)?.clone();
        let behalf = on_behalf_of(&request)?;
        let action = pb::AuditAction::PersonAdd;
        let req = request.into_inner();
        let dossier_id = validate::id("dossier_id", &req.dossier_id)?;
        let purpose = validate::code("purpose", &req.purpose)?;
        let mut person = req
            .person
            .ok_or_else(|| Status::from(Invalid::new("person", "is required")))?;
        let roles: Vec<pb::PersonRole> = person
            .roles
            .iter()
            .map(|r| {
                pb::PersonRole::try_from(*r)
                    .ok()
                    .filter(|r| *r != pb::PersonRole::Unspecified)
            })
            .collect::<Option<Vec<_>>>()
            .filter(|r| !r.is_empty())
            .ok_or_else(|| {
                Status::from(Invalid::new("person.roles", "known roles are required"))
            })?;
        self.content_caller(&caller, &behalf, action, &dossier_id)
            .await?;
        let loaded = self
            .load(&caller, &behalf, action, &dossier_id, &purpose)
            .await?;
        let key = self.data_key(&loaded)?;
        // "" names the new person in relations; other values existing persons.
        const NEW: &str = "\u{0}new";
        let person_id = uuid::Uuid::new_v4().to_string();
        let mut refs: HashMap<String, String> = loaded
            .persons
            .iter()
            .map(|(p, _)| (p.clone(), p.clone()))
            .collect();
        refs.insert(NEW.into(), person_id.clone());
        person.client_ref = NEW.into();
        let relations = req
            .relations
            .iter()
            .map(|r| {
                let side = |s: &str| {
                    if s.is_empty() {
                        NEW.to_owned()
                    } else {
                        s.to_owned()
                    }
                };
                pb::PersonRelation {
                    from_person: side(&r.from_person),
                    to_person: side(&r.to_person),
                    kind: r.kind.clone(),
                }
            })
            .collect();
        let form = pb::RegistrationForm {
            persons: vec![person.clone()],
            relations,
            ..Default::default()
        };
        let snapshot = self.policy();
        let mut contributions = Vec::new();
        for (i, (path, client_ref, value)) in form_values(&form, &refs)?.into_iter().enumerate() {
            let Some(field) = snapshot.fields.iter().find(|f| f.path == path) else {
                return Err(Invalid::at(
                    format!("person[{i}]"),
                    format!("{path} is not in the field catalogue"),
                )
                .into());
            };
            values::check(format!("person[{i}].value ({path})"), &value, field)?;
            contributions.push((path, refs[&client_ref].clone(), value));
        }
        // Legal basis.
        let (_, basis) = self
            .covered(
                &caller,
                &behalf,
                action,
                &loaded,
                &key,
                &purpose,
                snapshot.version,
            )
            .await?;
        let allowed = snapshot.table.allowed(
            &caller.partner_type,
            &Self::roles_for(&caller, Some(&loaded.row)),
            loaded.row.phase,
            pb::FieldAction::Contribute as i32,
        );
        if let Some((path, _, _)) = contributions.iter().find(|(path, _, _)| {
            !snapshot
                .table
                .field(path)
                .is_some_and(|i| allowed.contains(i))
        }) {
            let mut d = Decided::new(action, &dossier_id, &purpose)
                .denied(pb::AccessDenialReason::PolicyDenied);
            d.basis = Some(basis);
            d.policy_version = snapshot.version;
            d.phase = loaded.row.phase;
            return Err(self
                .refuse(
                    &caller,
                    &behalf,
                    d,
                    refusal(
                        Code::PermissionDenied,
                        "POLICY_DENIED",
                        &format!("the policy does not let you contribute {path} in this phase"),
                        &[("field", path)],
                    ),
                )
                .await);
        }
        let now = self.now();
        let mut tx = self.inner.db.pool().begin().await.map_err(db)?;
        store::touch(&mut tx, &dossier_id, now)
            .await
            .map_err(internal)?;
        let lookup = crate::lookup::LookupKey::derive(self.inner.keys.current());
        store_person(
            &mut tx,
            &lookup,
            &dossier_id,
            &person_id,
            &role_codes(&roles),
            &person,
            now,
        )
        .await?;
        let seq = store::next_seq(&mut tx, &dossier_id)
            .await
            .map_err(internal)?;
        let paths = store_form(
            &mut tx,
            &key,
            &caller,
            &dossier_id,
            &purpose,
            &contributions,
            seq,
            now,
        )
        .await?;
        let mut d = Decided::new(action, &dossier_id, &purpose);
        d.person_ids = vec![person_id.clone()];
        d.basis = Some(basis.clone());
        d.policy_version = snapshot.version;
        d.phase = loaded.row.phase;
        d.contributed = paths;
        let audit_index = self.record(&caller, &behalf, d).await?;
        tx.commit().await.map_err(db)?;
        if let Some(details) = person.informing.filter(|d| d.state != 0) {
            self.inner
                .basis
                .record_informing(pb::RecordInformingRequest {
                    dossier_id: dossier_id.clone(),
                    person_id: person_id.clone(),
                    details: Some(details),
                    on_behalf_of: Some(caller.to_actor()),
                    trace_id: schakel_kit::audit::current_trace_id(),
                })
                .await?;
        }
        let mut loaded = loaded;
        loaded.persons.push((person_id.clone(), role_codes(&roles)));
        Ok(pb::AddPersonResponse {
            person_id,
            dossier: Some(loaded.to_proto()),
            policy_version: snapshot.version,
            legal_basis: Some(basis),
            audit_index,
        })
    }
}

impl Broker {
    /// The retention job: erases (crypto-shreds) every dossier closed or not
    /// retained longer than `retention` ago, each with its audit entry (a
    /// dossier whose entry cannot be appended stays, for the next run).
    /// Returns how many were erased.
    pub async fn erase_expired(&self, retention: std::time::Duration) -> anyhow::Result<usize> {
        let cutoff = self.now() - i64::try_from(retention.as_secs())?;
        let due = store::closed_before(self.inner.db.pool(), cutoff).await?;
        let actor = pb::Actor {
            subject: "svc-broker-retention".into(),
            kind: pb::PrincipalKind::InternalService as i32,
            ..Default::default()
        };
        let mut erased = 0;
        for dossier_id in due {
            let now = self.now();
            let mut tx = self.inner.db.pool().begin().await?;
            if !store::erase(&mut tx, &dossier_id, now).await? {
                continue;
            }
            let mut entry = schakel_kit::audit::entry(
                actor.clone(),
                pb::AuditAction::DossierErase,
                pb::Decision::Granted,
                "broker",
                &[("reason", pb::ErasureReason::RetentionExpired.as_str_name())],
            );
            entry.target = Some(pb::AuditTarget {
                dossier_id: dossier_id.clone(),
                ..Default::default()
            });
            self.inner
                .audit
                .append(entry, schakel_kit::audit::new_append_id())
                .await?;
            tx.commit().await?;
            erased += 1;
        }
        Ok(erased)
    }
}
