//! The decision table equals casbin: for every partner type the policy names
//! (and one it does not), every role, field, action and phase, the table's
//! decision is casbin's own `enforce` on the same three files, and its
//! explicit denials are exactly where casbin finds a matching deny rule.
//! Run on every version before it can be proposed, and in the tests.

use casbin::{CoreApi, DefaultModel, Enforcer, StringAdapter};
use schakel_kit::validate::Invalid;
use schakel_proto::v1 as pb;

use crate::{
    document::{ACTIONS, ANY, PHASES, Policy, ROLES},
    table::DecisionTable,
};

/// A partner type code no policy names: casbin's answer for it is what the
/// table's `*` rows must hold.
const UNNAMED: &str = "unnamed_network_partner";

/// The effect that is true exactly when no deny rule matches.
const NO_DENY_EFFECT: &str = "e = !some(where (p.eft == deny))";

/// casbin enforcers for a document: the model as written, and the same with
/// an effect that reveals explicit denials.
pub struct Casbin {
    decide: Enforcer,
    no_deny: Enforcer,
}

fn model_error(err: impl std::fmt::Display) -> Invalid {
    Invalid::at(
        "model_conf".into(),
        format!("casbin cannot load the model: {err}"),
    )
}

impl Casbin {
    /// Loads the document into casbin.
    pub async fn load(document: &pb::PolicyDocument) -> Result<Casbin, Invalid> {
        let no_deny_model: String = document
            .model_conf
            .lines()
            .map(|l| {
                if l.trim_start().starts_with("e ") || l.trim_start().starts_with("e=") {
                    NO_DENY_EFFECT
                } else {
                    l
                }
            })
            .collect::<Vec<_>>()
            .join("\n");
        let mut enforcers = Vec::new();
        for model in [document.model_conf.as_str(), no_deny_model.as_str()] {
            let model = DefaultModel::from_str(model).await.map_err(model_error)?;
            let adapter = StringAdapter::new(document.policy_csv.clone());
            let enforcer = Enforcer::new(model, adapter).await.map_err(|e| {
                Invalid::at(
                    "policy_csv".into(),
                    format!("casbin cannot load the rules: {e}"),
                )
            })?;
            enforcers.push(enforcer);
        }
        let no_deny = enforcers.pop().ok_or_else(|| model_error("no enforcer"))?;
        let decide = enforcers.pop().ok_or_else(|| model_error("no enforcer"))?;
        Ok(Casbin { decide, no_deny })
    }

    /// casbin's decision, and whether a deny rule matched.
    pub fn enforce(
        &self,
        sub: &str,
        role: &str,
        obj: &str,
        act: &str,
        phase: &str,
    ) -> Result<(bool, bool), casbin::Error> {
        let request = (sub, role, obj, act, phase);
        let allowed = self.decide.enforce(request)?;
        let denied = !self.no_deny.enforce(request)?;
        Ok((allowed, denied))
    }
}

/// Compares `table` with casbin over every combination; the first difference
/// is an error naming the model (whose matcher or effect the table did not
/// reproduce).
pub async fn prove(
    document: &pb::PolicyDocument,
    policy: &Policy,
    table: &DecisionTable,
) -> Result<Combinations, Invalid> {
    // casbin evaluates its matcher once per rule per request: spread the
    // partner types over the machine's cores, one enforcer each.
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, policy.partner_types.len().max(1));
    let mut enforcers = Vec::with_capacity(threads);
    for _ in 0..threads {
        enforcers.push(Casbin::load(document).await?);
    }
    let chunks: Vec<Vec<&String>> = (0..threads)
        .map(|t| {
            policy
                .partner_types
                .iter()
                .skip(t)
                .step_by(threads)
                .collect()
        })
        .collect();
    let results: Vec<Result<usize, Invalid>> = std::thread::scope(|scope| {
        let handles: Vec<_> = enforcers
            .iter()
            .zip(&chunks)
            .map(|(casbin, chunk)| scope.spawn(move || prove_for(casbin, chunk, table)))
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(model_error("a proof thread panicked")))
            })
            .collect()
    });
    let mut checked = 0;
    for result in results {
        checked += result?;
    }
    Ok(Combinations(checked))
}

fn prove_for(
    casbin: &Casbin,
    partner_types: &[&String],
    table: &DecisionTable,
) -> Result<usize, Invalid> {
    let mut checked = 0;
    for partner_type in partner_types {
        let asked = if partner_type.as_str() == ANY {
            UNNAMED
        } else {
            partner_type.as_str()
        };
        for (r, (role, _)) in ROLES.iter().enumerate() {
            for (p, (phase, _)) in PHASES.iter().enumerate() {
                for (a, (action, _)) in ACTIONS.iter().enumerate() {
                    for (f, field) in table.fields().iter().enumerate() {
                        let (allowed, denied) = table.cell(asked, r, p, a, f);
                        let truth = casbin
                            .enforce(asked, role, field, action, phase)
                            .map_err(model_error)?;
                        if (allowed, denied) != truth {
                            return Err(Invalid::at(
                                "model_conf".into(),
                                format!(
                                    "the model's decision for ({asked}, {role}, {field}, {action}, {phase}) \
                                     is {} by casbin but {} by Schakel's decision table: the matcher \
                                     or effect differs from what the table compiles (see policies/README.md)",
                                    describe(truth),
                                    describe((allowed, denied))
                                ),
                            ));
                        }
                        checked += 1;
                    }
                }
            }
        }
    }
    Ok(checked)
}

/// How many combinations were proven equal.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Combinations(pub usize);

fn describe((allowed, denied): (bool, bool)) -> &'static str {
    match (allowed, denied) {
        (true, _) => "allow",
        (false, true) => "deny (by a deny rule)",
        (false, false) => "deny (no rule)",
    }
}
