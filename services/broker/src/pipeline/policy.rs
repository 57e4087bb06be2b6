//! The policy gate: per field, for the caller's partner type and the roles
//! that count on this dossier, in its current phase, under the call's policy
//! version. Reads get every asked field released or withheld with its
//! reason; contributions are all or nothing.

use schakel_kit::validate::Invalid;
use schakel_proto::v1 as pb;

use super::{Call, Covered, Outcome, Refusal, Scope, circle::roles_for};

/// What a read releases.
pub(crate) struct Released {
    pub(crate) released: Vec<String>,
    pub(crate) withheld: Vec<pb::WithheldField>,
}

impl Released {
    /// GRANTED, PARTIALLY_GRANTED or DENIED.
    pub(crate) fn decision(&self) -> pb::Decision {
        match (self.released.is_empty(), self.withheld.is_empty()) {
            (false, true) => pb::Decision::Granted,
            (false, false) => pb::Decision::PartiallyGranted,
            (true, _) => pb::Decision::Denied,
        }
    }
}

/// The catalogue positions a read asks for: exact paths or prefixes ending
/// in "." (every field when none).
pub(crate) fn requested(call: &Call, asked: &[String]) -> Outcome<Vec<usize>> {
    let table = &call.policy.table;
    if asked.is_empty() {
        return Ok((0..table.fields().len()).collect());
    }
    let mut out = Vec::new();
    for a in asked {
        let matched: Vec<usize> = if a.ends_with('.') {
            let fields = table.fields().iter().enumerate();
            fields
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
        out.extend(
            matched
                .into_iter()
                .filter(|i| !out.contains(i))
                .collect::<Vec<_>>(),
        );
    }
    out.sort_unstable();
    out.dedup();
    Ok(out)
}

/// All of `paths` may be contributed by the caller (with `roles`) in `phase`,
/// or a POLICY_DENIED refusal naming the first that may not.
pub(crate) fn permit_contribute<'p>(
    call: &Call,
    roles: &[i32],
    phase: i32,
    mut paths: impl Iterator<Item = &'p str>,
    scope: impl FnOnce() -> Scope,
) -> Outcome<()> {
    let table = &call.policy.table;
    let action = pb::FieldAction::Contribute as i32;
    let allowed = table.allowed(&call.caller.partner_type, roles, phase, action);
    match paths.find(|p| !table.field(p).is_some_and(|i| allowed.contains(i))) {
        None => Ok(()),
        Some(path) => {
            let message = format!("the policy does not let you contribute {path} in this phase");
            Err(Refusal::policy(scope(), path, message).into())
        }
    }
}

impl Covered<'_> {
    /// The fields at `asked` released or withheld (with the reason).
    pub(crate) fn decide_read(&self, asked: &[usize]) -> Released {
        let call = self.call();
        let table = &call.policy.table;
        let action = pb::FieldAction::Read as i32;
        let decision = table.decide(
            &call.caller.partner_type,
            &self.member().roles(),
            self.dossier().row.phase,
            action,
        );
        let (mut released, mut withheld) = (Vec::new(), Vec::new());
        for i in asked {
            let path = table.fields()[*i].clone();
            if decision.allowed.contains(*i) {
                released.push(path);
            } else {
                let reason = if decision.other_phase.contains(*i) {
                    pb::AccessDenialReason::Phase
                } else {
                    pb::AccessDenialReason::PolicyDenied
                };
                withheld.push(pb::WithheldField {
                    path,
                    reason: reason as i32,
                });
            }
        }
        Released { released, withheld }
    }

    /// `path` may be read here, or a POLICY_DENIED refusal.
    pub(crate) fn permit_read(&self, path: &str) -> Outcome<()> {
        let index = self.call().policy.table.field(path);
        let asked: Vec<usize> = index.into_iter().collect();
        if index.is_some() && !self.decide_read(&asked).released.is_empty() {
            return Ok(());
        }
        let message = format!("the policy does not let you read {path} in this phase");
        Err(Refusal::policy(self.scope(), path, message).into())
    }

    /// All of `paths` may be contributed here, or a POLICY_DENIED refusal.
    pub(crate) fn permit_contribute<'p>(
        &self,
        paths: impl Iterator<Item = &'p str>,
    ) -> Outcome<()> {
        let roles = roles_for(self.call(), Some(&self.dossier().row));
        permit_contribute(self.call(), &roles, self.dossier().row.phase, paths, || {
            self.scope()
        })
    }
}
