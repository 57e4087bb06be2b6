//! The policy service: versions with four-eyes approval, the active version
//! followed by every broker, and the read-only questions (explain, evaluate,
//! matrix, diff).

use std::{
    collections::HashMap,
    pin::Pin,
    sync::{Arc, Mutex},
    time::Duration,
};

use futures::Stream;
use schakel_kit::{
    audit::AuditSink,
    auth::{Caller, Role},
    config::Limits,
    db::{Database, Migrations},
    error::ServiceError,
    outbox::{Change, Outbox},
    time::Clock,
    validate::{self, Invalid},
};
use schakel_proto::v1::{
    self as pb,
    policy_service_server::{PolicyService, PolicyServiceServer},
};
use sqlx::migrate::Migrator;
use tokio::sync::watch;
use tokio_stream::StreamExt;
use tonic::{Request, Response, Status};

use crate::{
    Compiled, analysis, compile, compile_unproven,
    document::{content_sha256, repository_files},
    store::{self, StoredVersion},
};

type Result<T, E = ServiceError> = std::result::Result<T, E>;

/// The database schema this service owns.
pub const SCHEMA: &str = "policy";

/// The gRPC service name (for health).
pub const SERVICE_NAME: &str = schakel_proto::v1::policy_service_server::SERVICE_NAME;

static SQLITE: Migrator = sqlx::migrate!("./migrations/sqlite");
static POSTGRES: Migrator = sqlx::migrate!("./migrations/postgres");

/// The policy migrations for both backends.
pub fn migrations() -> Migrations {
    Migrations {
        sqlite: &SQLITE,
        postgres: &POSTGRES,
    }
}

/// Largest policy file accepted.
const MAX_FILE_BYTES: usize = 512 * 1024;
/// How often an instance checks whether another instance activated a version.
const POLL: Duration = Duration::from_millis(500);
/// Who creates version 1.
const SYSTEM: &str = "svc-policy";

/// The active version with its compiled table.
#[derive(Clone, Debug)]
pub struct Active {
    /// The stored version.
    pub version: StoredVersion,
    /// Its compilation.
    pub compiled: Arc<Compiled>,
}

impl Active {
    /// The version with its files and parsed catalogue.
    pub fn to_proto(&self) -> pb::PolicyVersion {
        full(&self.version, &self.compiled)
    }
}

fn full(version: &StoredVersion, compiled: &Compiled) -> pb::PolicyVersion {
    pb::PolicyVersion {
        document: Some(version.document.clone()),
        fields: compiled.policy.fields.clone(),
        ..version.summary()
    }
}

struct Inner {
    db: Database,
    clock: Clock,
    outbox: Outbox,
    active: watch::Sender<Arc<Active>>,
    compiled: Mutex<HashMap<u64, Arc<Compiled>>>,
}

/// The policy service (cheap to clone).
#[derive(Clone)]
pub struct Policies {
    inner: Arc<Inner>,
}

fn internal(err: impl std::fmt::Display) -> ServiceError {
    ServiceError::Internal(anyhow::anyhow!("{err}"))
}

impl Policies {
    /// Connects to `database_url`, migrates, makes the repository's files
    /// version 1 on first start (proven equal to casbin, audited), and follows
    /// the active version.
    pub async fn connect(
        database_url: &str,
        clock: Clock,
        audit: Arc<dyn AuditSink>,
    ) -> anyhow::Result<Self> {
        let db = Database::connect(database_url, SCHEMA, migrations()).await?;
        let outbox = Outbox::new(&db, audit);
        if store::active_version(db.pool()).await?.is_none() {
            initial_version(&clock, &outbox).await?;
        }
        let version = store::active_version(db.pool())
            .await?
            .ok_or_else(|| anyhow::anyhow!("no active policy version"))?;
        let active = load(&db, version).await?;
        let (sender, _) = watch::channel(Arc::new(active));
        let policies = Policies {
            inner: Arc::new(Inner {
                db,
                clock,
                outbox,
                active: sender,
                compiled: Mutex::new(HashMap::new()),
            }),
        };
        policies.follow_other_instances();
        Ok(policies)
    }

    /// The tonic service with the message size limits applied.
    pub fn into_server(self, limits: &Limits) -> PolicyServiceServer<Policies> {
        PolicyServiceServer::new(self)
            .max_decoding_message_size(limits.max_request_bytes)
            .max_encoding_message_size(limits.max_response_bytes)
    }

    /// The active version now.
    pub fn active(&self) -> Arc<Active> {
        self.inner.active.borrow().clone()
    }

    /// Follows the active version (in-process brokers).
    pub fn subscribe(&self) -> watch::Receiver<Arc<Active>> {
        self.inner.active.subscribe()
    }

    /// The database (for tests).
    pub fn database(&self) -> &Database {
        &self.inner.db
    }

    /// Where this service's changes stage their audit entries (pending
    /// entries, delivering them now).
    pub fn audit_outbox(&self) -> &schakel_kit::outbox::Outbox {
        &self.inner.outbox
    }

    /// Another instance may activate a version: check now and then, and
    /// switch within a second.
    fn follow_other_instances(&self) {
        let weak = Arc::downgrade(&self.inner);
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(POLL).await;
                let Some(inner) = weak.upgrade() else { return };
                let this = Policies { inner };
                if let Err(err) = this.refresh().await {
                    tracing::warn!(error = %err, "checking the active policy version failed");
                }
            }
        });
    }

    async fn refresh(&self) -> anyhow::Result<()> {
        let Some(version) = store::active_version(self.inner.db.pool()).await? else {
            return Ok(());
        };
        if version != self.active().version.version {
            let active = load(&self.inner.db, version).await?;
            self.publish(active);
        }
        Ok(())
    }

    fn publish(&self, active: Active) {
        let version = active.version.version;
        self.inner.active.send_if_modified(|current| {
            if current.version.version == version {
                false
            } else {
                *current = Arc::new(active);
                true
            }
        });
        tracing::info!(version, "policy version active");
    }

    async fn compiled(&self, version: u64) -> Result<(StoredVersion, Arc<Compiled>)> {
        let active = self.active();
        if version == 0 || version == active.version.version {
            return Ok((active.version.clone(), active.compiled.clone()));
        }
        let mut conn = self.inner.db.pool().acquire().await?;
        let stored = store::get(&mut conn, version)
            .await?
            .ok_or(ServiceError::NotFound("policy version"))?;
        if let Some(c) = self.cache().get(&version) {
            return Ok((stored, c.clone()));
        }
        let compiled =
            Arc::new(compile_unproven(version, stored.document.clone()).map_err(internal)?);
        self.cache().insert(version, compiled.clone());
        Ok((stored, compiled))
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, HashMap<u64, Arc<Compiled>>> {
        self.inner
            .compiled
            .lock()
            .unwrap_or_else(|e| e.into_inner())
    }

    /// Proposes new files (empty = unchanged) against the active version.
    pub async fn propose(
        &self,
        actor: pb::Actor,
        req: &pb::ProposePolicyRequest,
    ) -> Result<(Option<pb::PolicyVersion>, pb::PolicyDiff)> {
        let description = validate::text("description", &req.description, 1000)?;
        if description.is_empty() && !req.validate_only {
            return Err(ServiceError::invalid(
                "description",
                "say what the change is for",
            ));
        }
        let active = self.active();
        if req.base_version != active.version.version {
            return Err(ServiceError::precondition(
                "BASE_NOT_ACTIVE",
                format!(
                    "version {} is not the active version ({}): re-read it and propose again",
                    req.base_version, active.version.version
                ),
            ));
        }
        let proposed = req.document.clone().unwrap_or_default();
        let base = &active.version.document;
        let pick = |new: &str, old: &str| {
            if new.is_empty() {
                old.to_owned()
            } else {
                new.to_owned()
            }
        };
        let document = pb::PolicyDocument {
            model_conf: pick(&proposed.model_conf, &base.model_conf),
            policy_csv: pick(&proposed.policy_csv, &base.policy_csv),
            fields_csv: pick(&proposed.fields_csv, &base.fields_csv),
        };
        for (name, file) in [
            ("document.model_conf", &document.model_conf),
            ("document.policy_csv", &document.policy_csv),
            ("document.fields_csv", &document.fields_csv),
        ] {
            if file.len() > MAX_FILE_BYTES {
                return Err(ServiceError::Invalid(Invalid::at(
                    name.into(),
                    format!("larger than {MAX_FILE_BYTES} bytes"),
                )));
            }
        }
        // Parse, compile and prove equal to casbin: CPU work, off the runtime.
        let to_prove = document.clone();
        let compiled = tokio::task::spawn_blocking(move || {
            tokio::runtime::Handle::current().block_on(compile(0, to_prove))
        })
        .await
        .map_err(internal)??;
        let diff = analysis::diff(&active.compiled, &compiled, 0);
        if req.validate_only {
            return Ok((None, diff));
        }
        let now = self.inner.clock.now();
        let mut tx = self.inner.outbox.begin().await?;
        store::lock(&mut tx).await?;
        let number = store::max_version(&mut tx).await? + 1;
        let stored = StoredVersion {
            version: number,
            status: pb::PolicyVersionStatus::Proposed,
            base_version: active.version.version,
            description,
            content_sha256: content_sha256(&document),
            document,
            proposed_by: actor.subject.clone(),
            proposed_at: now,
            decided_by: String::new(),
            decided_at: None,
            rejection_reason: String::new(),
            activated_at: None,
        };
        if !store::insert(&mut tx, &stored).await? {
            return Err(ServiceError::precondition(
                "CONCURRENT_PROPOSAL",
                "another proposal took this version number; propose again",
            ));
        }
        let changes = diff.changes.len().to_string();
        let base = active.version.version.to_string();
        record(
            &mut tx,
            actor,
            pb::AuditAction::PolicyPropose,
            number,
            &[("base_version", &base), ("decision_changes", &changes)],
        )
        .await?;
        tx.commit().await?;
        let compiled = Arc::new(Compiled {
            table: crate::table::compile(number, &compiled.policy),
            ..compiled
        });
        self.cache().insert(number, compiled.clone());
        let diff = pb::PolicyDiff {
            to_version: number,
            ..diff
        };
        tracing::info!(version = number, "policy version proposed");
        Ok((Some(full(&stored, &compiled)), diff))
    }

    /// Approves a proposal by a second coordinator; it becomes active.
    pub async fn approve(&self, actor: pb::Actor, version: u64) -> Result<pb::PolicyVersion> {
        let now = self.inner.clock.now();
        let mut tx = self.inner.outbox.begin().await?;
        store::lock(&mut tx).await?;
        let stored = store::get(&mut tx, version)
            .await?
            .ok_or(ServiceError::NotFound("policy version"))?;
        if stored.status != pb::PolicyVersionStatus::Proposed {
            return Err(ServiceError::precondition(
                "NOT_PROPOSED",
                format!(
                    "version {version} is {}",
                    stored.status.as_str_name().to_lowercase()
                ),
            ));
        }
        if stored.proposed_by == actor.subject {
            return Err(ServiceError::PermissionDenied {
                reason: "FOUR_EYES",
                message: "a different coordinator than the proposer must approve".into(),
            });
        }
        let active = store::active_version(self.inner.db.pool()).await?;
        if active != Some(stored.base_version) {
            store::mark_stale(&mut tx, version).await?;
            tx.commit().await?;
            return Err(ServiceError::precondition(
                "STALE",
                format!(
                    "version {version} was proposed against version {}, which is no longer active: propose again",
                    stored.base_version
                ),
            ));
        }
        if !store::activate(&mut tx, version, &actor.subject, now).await? {
            return Err(ServiceError::precondition(
                "NOT_PROPOSED",
                format!("version {version} is no longer proposed"),
            ));
        }
        let base = stored.base_version.to_string();
        record(
            &mut tx,
            actor,
            pb::AuditAction::PolicyApprove,
            version,
            &[("base_version", &base)],
        )
        .await?;
        // Committed is active, whether or not its entry reached the log yet.
        let pending = match tx.commit().await {
            Ok(_) => None,
            Err(err) if err.committed() => Some(err),
            Err(err) => return Err(err.into()),
        };
        let active = load(&self.inner.db, version).await?;
        let shown = active.to_proto();
        self.publish(active);
        match pending {
            None => Ok(shown),
            Some(err) => Err(err.into()),
        }
    }

    /// Rejects a proposal with a reason.
    pub async fn reject(
        &self,
        actor: pb::Actor,
        version: u64,
        reason: &str,
    ) -> Result<pb::PolicyVersion> {
        let reason = validate::text("reason", reason, 1000)?;
        if reason.is_empty() {
            return Err(ServiceError::invalid("reason", "say why"));
        }
        let now = self.inner.clock.now();
        let mut tx = self.inner.outbox.begin().await?;
        store::lock(&mut tx).await?;
        if !store::reject(&mut tx, version, &actor.subject, &reason, now).await? {
            return Err(ServiceError::precondition(
                "NOT_PROPOSED",
                format!("version {version} is not a proposal"),
            ));
        }
        record(&mut tx, actor, pb::AuditAction::PolicyReject, version, &[]).await?;
        let stored = store::get(&mut tx, version)
            .await?
            .ok_or(ServiceError::NotFound("policy version"))?;
        tx.commit().await?;
        Ok(stored.summary())
    }
}

/// Stages the audit entry of a policy change in its transaction.
async fn record(
    tx: &mut Change,
    actor: pb::Actor,
    action: pb::AuditAction,
    version: u64,
    attributes: &[(&str, &str)],
) -> Result<()> {
    let mut entry =
        schakel_kit::audit::entry(actor, action, pb::Decision::Granted, "policy", attributes);
    entry.policy_version = version;
    entry.target = Some(pb::AuditTarget {
        resource_id: version.to_string(),
        ..Default::default()
    });
    tx.record(entry).await?;
    Ok(())
}

/// Makes the repository's files version 1 (first start; a concurrent start
/// of another instance wins harmlessly).
async fn initial_version(clock: &Clock, outbox: &Outbox) -> anyhow::Result<()> {
    // The repository's files are built into the binary; the test suite proves
    // exactly these equal to casbin (table::tests), so they are not proven
    // again here.
    let document = repository_files();
    let compiled = compile_unproven(1, document.clone())
        .map_err(|e| anyhow::anyhow!("the repository's policy is invalid: {e}"))?;
    let now = clock.now();
    let stored = StoredVersion {
        version: 1,
        status: pb::PolicyVersionStatus::Active,
        base_version: 0,
        description: "The repository's policies/ at first start".into(),
        content_sha256: content_sha256(&document),
        document,
        proposed_by: SYSTEM.into(),
        proposed_at: now,
        decided_by: SYSTEM.into(),
        decided_at: Some(now),
        rejection_reason: String::new(),
        activated_at: Some(now),
    };
    let mut tx = outbox.begin().await?;
    if !store::insert(&mut tx, &stored).await? {
        return Ok(());
    }
    let actor = pb::Actor {
        subject: SYSTEM.into(),
        kind: pb::PrincipalKind::InternalService as i32,
        ..Default::default()
    };
    let rules = compiled.policy.rules.len().to_string();
    record(
        &mut tx,
        actor,
        pb::AuditAction::PolicyApprove,
        1,
        &[("initial", "repository"), ("rules", &rules)],
    )
    .await
    .map_err(|e| anyhow::anyhow!("{e}"))?;
    tx.commit().await?;
    tracing::info!("policy version 1 created from the repository's files");
    Ok(())
}

async fn load(db: &Database, version: u64) -> anyhow::Result<Active> {
    let mut conn = db.pool().acquire().await?;
    let stored = store::get(&mut conn, version)
        .await?
        .ok_or_else(|| anyhow::anyhow!("policy version {version} is missing"))?;
    let compiled = compile_unproven(version, stored.document.clone())
        .map_err(|e| anyhow::anyhow!("stored policy version {version} is invalid: {e}"))?;
    Ok(Active {
        version: stored,
        compiled: Arc::new(compiled),
    })
}

fn coordinator<T>(request: &Request<T>) -> Result<pb::Actor, Status> {
    let caller = Caller::of(request)?;
    caller.require_role(Role::Coordinator)?;
    Ok(caller.to_actor())
}

type WatchStream =
    Pin<Box<dyn Stream<Item = Result<pb::WatchActivePolicyResponse, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl PolicyService for Policies {
    async fn get_active_policy(
        &self,
        request: Request<pb::GetActivePolicyRequest>,
    ) -> Result<Response<pb::GetActivePolicyResponse>, Status> {
        Caller::of(&request)?;
        let active = self.active();
        Ok(Response::new(pb::GetActivePolicyResponse {
            policy: Some(active.to_proto()),
            decision_table: Some(active.compiled.table.to_proto()),
        }))
    }

    async fn get_policy_version(
        &self,
        request: Request<pb::GetPolicyVersionRequest>,
    ) -> Result<Response<pb::GetPolicyVersionResponse>, Status> {
        Caller::of(&request)?;
        let version = request.get_ref().version;
        if version == 0 {
            return Err(Invalid::new("version", "is required").into());
        }
        let (stored, compiled) = self.compiled(version).await?;
        let diff_from_base = if stored.status == pb::PolicyVersionStatus::Proposed {
            let (_, base) = self.compiled(stored.base_version).await?;
            Some(analysis::diff(&base, &compiled, version))
        } else {
            None
        };
        Ok(Response::new(pb::GetPolicyVersionResponse {
            policy: Some(full(&stored, &compiled)),
            diff_from_base,
        }))
    }

    async fn list_policy_versions(
        &self,
        request: Request<pb::ListPolicyVersionsRequest>,
    ) -> Result<Response<pb::ListPolicyVersionsResponse>, Status> {
        Caller::of(&request)?;
        let req = request.get_ref();
        let (limit, token) = validate::page(req.page.as_ref())?;
        let before: u64 = if token.is_empty() {
            0
        } else {
            token.parse().map_err(|_| {
                Invalid::new("page.page_token", "not a page token from this service")
            })?
        };
        let mut statuses = Vec::new();
        for s in &req.statuses {
            match pb::PolicyVersionStatus::try_from(*s) {
                Ok(s) if s != pb::PolicyVersionStatus::Unspecified => statuses.push(s),
                _ => return Err(Invalid::new("statuses", format!("{s} is not a status")).into()),
            }
        }
        let mut versions = store::list(self.inner.db.pool(), &statuses, before, limit + 1)
            .await
            .map_err(ServiceError::Internal)?;
        let next_page_token = if versions.len() as i64 > limit {
            versions.truncate(limit as usize);
            versions
                .last()
                .map(|v| v.version.to_string())
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(Response::new(pb::ListPolicyVersionsResponse {
            versions: versions.iter().map(StoredVersion::summary).collect(),
            next_page_token,
        }))
    }

    async fn propose_policy(
        &self,
        request: Request<pb::ProposePolicyRequest>,
    ) -> Result<Response<pb::ProposePolicyResponse>, Status> {
        let actor = coordinator(&request)?;
        let (policy, diff) = self.propose(actor, request.get_ref()).await?;
        Ok(Response::new(pb::ProposePolicyResponse {
            policy,
            diff: Some(diff),
        }))
    }

    async fn approve_policy(
        &self,
        request: Request<pb::ApprovePolicyRequest>,
    ) -> Result<Response<pb::ApprovePolicyResponse>, Status> {
        let actor = coordinator(&request)?;
        let policy = self.approve(actor, request.get_ref().version).await?;
        Ok(Response::new(pb::ApprovePolicyResponse {
            policy: Some(policy),
        }))
    }

    async fn reject_policy(
        &self,
        request: Request<pb::RejectPolicyRequest>,
    ) -> Result<Response<pb::RejectPolicyResponse>, Status> {
        let actor = coordinator(&request)?;
        let req = request.get_ref();
        let policy = self.reject(actor, req.version, &req.reason).await?;
        Ok(Response::new(pb::RejectPolicyResponse {
            policy: Some(policy),
        }))
    }

    async fn diff_policy_versions(
        &self,
        request: Request<pb::DiffPolicyVersionsRequest>,
    ) -> Result<Response<pb::DiffPolicyVersionsResponse>, Status> {
        Caller::of(&request)?;
        let req = request.get_ref();
        for (field, v) in [
            ("from_version", req.from_version),
            ("to_version", req.to_version),
        ] {
            if v == 0 {
                return Err(Invalid::new(field, "is required").into());
            }
        }
        let (_, from) = self.compiled(req.from_version).await?;
        let (_, to) = self.compiled(req.to_version).await?;
        Ok(Response::new(pb::DiffPolicyVersionsResponse {
            diff: Some(analysis::diff(&from, &to, req.to_version)),
        }))
    }

    async fn explain(
        &self,
        request: Request<pb::ExplainRequest>,
    ) -> Result<Response<pb::ExplainResponse>, Status> {
        Caller::of(&request)?;
        let (_, compiled) = self.compiled(request.get_ref().version).await?;
        Ok(Response::new(analysis::explain(
            &compiled,
            request.get_ref(),
        )?))
    }

    async fn evaluate_fields(
        &self,
        request: Request<pb::EvaluateFieldsRequest>,
    ) -> Result<Response<pb::EvaluateFieldsResponse>, Status> {
        Caller::of(&request)?;
        let (_, compiled) = self.compiled(request.get_ref().version).await?;
        Ok(Response::new(analysis::evaluate(
            &compiled,
            request.get_ref(),
        )?))
    }

    async fn access_matrix(
        &self,
        request: Request<pb::AccessMatrixRequest>,
    ) -> Result<Response<pb::AccessMatrixResponse>, Status> {
        Caller::of(&request)?;
        let req = request.get_ref();
        let (_, compiled) = self.compiled(req.version).await?;
        Ok(Response::new(analysis::matrix(
            &compiled, req.phase, req.action,
        )?))
    }

    type WatchActivePolicyStream = WatchStream;

    async fn watch_active_policy(
        &self,
        request: Request<pb::WatchActivePolicyRequest>,
    ) -> Result<Response<WatchStream>, Status> {
        Caller::of(&request)?;
        let known = request.get_ref().known_version;
        let stream = tokio_stream::wrappers::WatchStream::new(self.subscribe())
            .filter(move |active| active.version.version != known)
            .map(|active| {
                Ok(pb::WatchActivePolicyResponse {
                    policy: Some(active.to_proto()),
                    decision_table: Some(active.compiled.table.to_proto()),
                })
            });
        Ok(Response::new(Box::pin(stream)))
    }
}
