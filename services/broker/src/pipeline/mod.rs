//! The enforcement pipeline every broker RPC goes through, written once:
//! authenticated caller -> role class ([`Broker::admit`], from the table in
//! [`crate::rpc`]) -> circle ([`circle`]: a [`Member`]) -> purpose and legal
//! basis with informing ([`basis`]: a [`Covered`]) -> policy ([`policy`]) ->
//! change in one unit of work ([`unit`]) -> audit of grant and refusal ->
//! reply. Dossier content, request content and circle metadata are reachable
//! only from the values the gates construct: a handler cannot skip a gate
//! and still get at what it guards.

pub(crate) mod basis;
pub(crate) mod circle;
pub(crate) mod policy;
mod refusal;
pub(crate) mod replay;
mod scope;
pub(crate) mod unit;

use std::sync::Arc;

use schakel_kit::{
    auth::{Caller, PrincipalKind, Role},
    error::ServiceError,
    ports::PolicySnapshot,
    validate::Invalid,
};
use schakel_proto::v1 as pb;
use tonic::{Request, Response, Status};

pub(crate) use basis::Covered;
pub(crate) use circle::{Loaded, Member};
pub(crate) use refusal::Refusal;
pub(crate) use scope::Scope;

use crate::{
    Broker,
    rpc::{Class, Rpc},
};

/// The roles that may see or write dossier content.
pub(crate) const CONTENT_ROLES: [Role; 3] =
    [Role::Aanmelder, Role::TeamMember, Role::Casusregisseur];

/// Why a handler stopped: a refusal (recorded in the audit log by the
/// dispatcher) or an error that decides nothing about the caller (invalid
/// input, an unavailable dependency, an internal fault).
#[derive(Debug)]
pub(crate) enum Failure {
    Refused(Box<Refusal>),
    Error(Status),
}

impl From<Refusal> for Failure {
    fn from(refusal: Refusal) -> Self {
        Failure::Refused(Box::new(refusal))
    }
}

impl From<Status> for Failure {
    fn from(status: Status) -> Self {
        Failure::Error(status)
    }
}

impl From<Invalid> for Failure {
    fn from(invalid: Invalid) -> Self {
        Failure::Error(invalid.into())
    }
}

impl From<anyhow::Error> for Failure {
    fn from(err: anyhow::Error) -> Self {
        Failure::Error(ServiceError::Internal(err).into())
    }
}

impl From<schakel_kit::outbox::CommitError> for Failure {
    fn from(err: schakel_kit::outbox::CommitError) -> Self {
        Failure::Error(err.into())
    }
}

impl From<sqlx::Error> for Failure {
    fn from(err: sqlx::Error) -> Self {
        Failure::Error(ServiceError::from(err).into())
    }
}

/// What a handler returns.
pub(crate) type Outcome<T> = Result<T, Failure>;

/// One admitted call: who, for whom, which RPC, under which policy version
/// and at which moment. Only [`Broker::admit`] (and the retention job) make one.
#[derive(Clone)]
pub(crate) struct Call {
    pub(crate) caller: Caller,
    pub(crate) on_behalf_of: String,
    pub(crate) rpc: Rpc,
    pub(crate) policy: Arc<PolicySnapshot>,
    pub(crate) now: i64,
}

impl Call {
    /// A scope about `dossier_id` under this call's policy version.
    pub(crate) fn scope(&self, dossier_id: &str) -> Scope {
        Scope::of_dossier(dossier_id, self.policy.version)
    }

    fn admitted(&self) -> bool {
        let c = &self.caller;
        let person = matches!(c.kind, PrincipalKind::User | PrincipalKind::ServiceAccount);
        match self.rpc.row().class {
            Class::Content => person && c.roles.iter().any(|r| CONTENT_ROLES.contains(r)),
            Class::Registrar => {
                person && (c.has_role(Role::Aanmelder) || c.has_role(Role::TeamMember))
            }
            Class::Oversight => c.kind == PrincipalKind::User && c.has_role(Role::PrivacyOfficer),
            Class::Coordinator => c.kind == PrincipalKind::User && c.has_role(Role::Coordinator),
        }
    }

    /// The same caller and RPC under the policy in force and the time now
    /// (for each event of a long-lived stream).
    pub(crate) fn renewed(&self, broker: &Broker) -> Self {
        Call {
            policy: broker.inner.policy.current(),
            now: broker.inner.clock.now(),
            ..self.clone()
        }
    }

    /// The retention job's own call (it runs inside the broker).
    pub(crate) fn retention(policy: Arc<PolicySnapshot>, now: i64) -> Self {
        Call {
            caller: Caller {
                subject: "svc-broker-retention".into(),
                kind: PrincipalKind::InternalService,
                organisation_id: String::new(),
                partner_type: String::new(),
                roles: Vec::new(),
                region: String::new(),
                token_id: String::new(),
                expires_at: 0,
            },
            on_behalf_of: String::new(),
            rpc: Rpc::EraseDossier,
            policy,
            now,
        }
    }
}

/// An opaque reference (a case number, a key, a partner system's handle):
/// `lengths` characters of [A-Za-z0-9._:/@+=-], so never a name or free text.
pub(crate) fn reference(
    field: &'static str,
    value: &str,
    lengths: std::ops::RangeInclusive<usize>,
) -> Result<String, Invalid> {
    let ok = lengths.contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:/@+=-".contains(&b));
    if ok && let Some(what) = personal(value) {
        let message = format!("looks like {what}: a reference is opaque, never personal data");
        return Err(Invalid::new(field, message));
    }
    if ok {
        return Ok(value.to_owned());
    }
    let (min, max) = (lengths.start(), lengths.end());
    let message = format!("{min}-{max} characters of [A-Za-z0-9._:/@+=-], never a name");
    Err(Invalid::new(field, message))
}

/// What personal data an otherwise well-formed reference looks like: an
/// e-mail address, or a national register number (11 digits that pass its
/// check, with or without separators). References end up in the immutable
/// audit log, where personal data could never be erased.
fn personal(value: &str) -> Option<&'static str> {
    if let Some((local, domain)) = value.split_once('@')
        && !local.is_empty()
        && domain.contains('.')
    {
        return Some("an e-mail address");
    }
    let digits: Vec<u8> = value.bytes().filter(|b| !b".-/".contains(b)).collect();
    let runs = digits.split(|b| !b.is_ascii_digit());
    let national = runs.filter(|run| run.len() >= 11).any(|run| {
        run.windows(11)
            .any(|w| std::str::from_utf8(w).is_ok_and(|w| crate::national_number::parse(w).is_ok()))
    });
    national.then_some("a national register number")
}

/// The `schakel-on-behalf-of` reference: opaque, never a name or number.
fn on_behalf_of<T>(request: &Request<T>) -> Result<String, Status> {
    let value = request.metadata().get("schakel-on-behalf-of");
    let value = value
        .map(|v| v.to_str().unwrap_or("\u{0}"))
        .unwrap_or_default();
    Ok(reference("schakel-on-behalf-of", value, 0..=128)?)
}

impl Broker {
    /// The role-class gate: the caller of `request` may call `rpc` at all,
    /// or a recorded ROLE_NOT_PERMITTED refusal.
    pub(crate) async fn admit<T>(&self, rpc: Rpc, request: &Request<T>) -> Result<Call, Status> {
        let call = Call {
            caller: Caller::of(request)?.clone(),
            on_behalf_of: on_behalf_of(request)?,
            rpc,
            policy: self.inner.policy.current(),
            now: self.inner.clock.now(),
        };
        if call.admitted() {
            return Ok(call);
        }
        let refusal = Refusal::role(call.scope(""), "this role may not use this operation");
        Err(self.refused(&call, refusal).await)
    }

    /// The reply: a refusal is recorded first (fail closed: UNAVAILABLE if
    /// the audit log cannot be written).
    pub(crate) async fn finish<T>(
        &self,
        call: &Call,
        outcome: Outcome<T>,
    ) -> Result<Response<T>, Status> {
        match outcome {
            Ok(reply) => Ok(Response::new(reply)),
            Err(Failure::Error(status)) => Err(status),
            Err(Failure::Refused(refusal)) => Err(self.refused(call, *refusal).await),
        }
    }

    async fn refused(&self, call: &Call, refusal: Refusal) -> Status {
        let status = refusal.status();
        let reason = refusal.reason().to_owned();
        let mut scope = refusal.scope;
        scope.attributes.push(("refusal", reason));
        let decision = (pb::Decision::Denied, refusal.denial);
        match self.append(call, scope, decision).await {
            Ok(_) => status,
            Err(unavailable) => unavailable,
        }
    }

    /// Records a granted decision; returns its audit index. Fails closed.
    pub(crate) async fn record(&self, call: &Call, scope: Scope) -> Outcome<u64> {
        let decision = (pb::Decision::Granted, pb::AccessDenialReason::Unspecified);
        Ok(self.append(call, scope, decision).await?)
    }

    /// Records one granted entry per item shown (appended together, one
    /// group commit), or `none` when nothing was shown; the highest index.
    pub(crate) async fn record_each(
        &self,
        call: &Call,
        scopes: Vec<Scope>,
        none: Scope,
    ) -> Outcome<u64> {
        let scopes = if scopes.is_empty() {
            vec![none]
        } else {
            scopes
        };
        let appends = scopes.into_iter().map(|s| self.record(call, s));
        let indexes = futures::future::try_join_all(appends).await?;
        Ok(indexes.into_iter().max().unwrap_or_default())
    }

    /// The entry of a granted decision (a change stages it in its unit).
    pub(crate) fn granted(&self, call: &Call, scope: Scope) -> pb::AuditEntry {
        Self::entry_of(
            call,
            scope,
            (pb::Decision::Granted, pb::AccessDenialReason::Unspecified),
        )
    }

    fn entry_of(
        call: &Call,
        scope: Scope,
        (decision, denial): (pb::Decision, pb::AccessDenialReason),
    ) -> pb::AuditEntry {
        scope.entry(
            call.caller.to_actor(),
            &call.on_behalf_of,
            call.rpc.row().action,
            decision,
            denial,
        )
    }

    /// Appends the entry of a decision that changes nothing (a read, a
    /// refusal) before its reply.
    pub(crate) async fn append(
        &self,
        call: &Call,
        scope: Scope,
        decision: (pb::Decision, pb::AccessDenialReason),
    ) -> Result<u64, Status> {
        let entry = Self::entry_of(call, scope, decision);
        let receipt = self
            .inner
            .outbox
            .append_now(entry)
            .await
            .map_err(Status::from)?;
        Ok(receipt.index)
    }
}

/// Serves one RPC through the pipeline: admit, handle, finish.
macro_rules! serve {
    ($broker:expr, $rpc:ident, $request:ident, $handler:path) => {{
        let call = $broker.admit($crate::rpc::Rpc::$rpc, &$request).await?;
        let outcome = $handler($broker, &call, $request.into_inner()).await;
        $broker.finish(&call, outcome).await
    }};
}
pub(crate) use serve;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_refuse_e_mail_addresses_and_national_register_numbers() {
        let check = |v: &str| reference("r", v, 0..=128);
        for fine in [
            "PV-2026-0042",
            "LE/2026/123456",
            "rms:case:77812",
            "user@rms",
            "dossier-2026-000123-45",
            "",
        ] {
            assert!(check(fine).is_ok(), "{fine}");
        }
        for personal in [
            "jan.peeters@politie.be",
            "85.07.30-033.28",
            "85073003328",
            "ref-85073003328-x",
        ] {
            let err = check(personal).expect_err(personal);
            assert!(
                err.message.contains("looks like"),
                "{personal}: {}",
                err.message
            );
        }
    }
}
