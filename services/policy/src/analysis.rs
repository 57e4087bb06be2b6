//! Reading a compiled version: the diff between two versions, the
//! explanation of one decision, many decisions at once, and the full grid.

use std::collections::BTreeSet;

use schakel_kit::validate::Invalid;
use schakel_proto::v1 as pb;

use crate::{
    Compiled,
    document::{self, ACTIONS, PHASES, ROLES},
    expectations::to_effect,
};

fn index<T>(list: &[(&str, T)], value: i32, field: &'static str) -> Result<usize, Invalid>
where
    T: Copy + Into<i32>,
{
    list.iter()
        .position(|(_, v)| (*v).into() == value)
        .ok_or_else(|| Invalid::new(field, "is required (a known value)"))
}

/// Every decision that differs between `from` and `to` (single roles, every
/// partner type either names and `*`, every field either has).
pub fn diff(from: &Compiled, to: &Compiled, to_version: u64) -> pb::PolicyDiff {
    let subjects: BTreeSet<String> = from
        .policy
        .partner_types
        .iter()
        .chain(&to.policy.partner_types)
        .cloned()
        .collect();
    let fields: Vec<&String> = {
        let mut seen = BTreeSet::new();
        to.table
            .fields()
            .iter()
            .chain(from.table.fields())
            .filter(|f| seen.insert((*f).clone()))
            .collect()
    };
    let cell = |c: &Compiled, pt: &str, r: usize, p: usize, a: usize, field: &str| {
        c.table
            .field(field)
            .is_some_and(|f| c.table.cell(pt, r, p, a, f).0)
    };
    let mut changes = Vec::new();
    for pt in &subjects {
        for (r, (_, role)) in ROLES.iter().enumerate() {
            for (p, (_, phase)) in PHASES.iter().enumerate() {
                for (a, (_, action)) in ACTIONS.iter().enumerate() {
                    for field in &fields {
                        let before = cell(from, pt, r, p, a, field);
                        let after = cell(to, pt, r, p, a, field);
                        if before != after {
                            changes.push(pb::DecisionChange {
                                partner_type: pt.clone(),
                                role: *role as i32,
                                field: (*field).clone(),
                                action: *action as i32,
                                phase: *phase as i32,
                                before: to_effect(before) as i32,
                                after: to_effect(after) as i32,
                            });
                        }
                    }
                }
            }
        }
    }
    let find = |c: &Compiled, path: &str| c.policy.fields.iter().find(|f| f.path == path).cloned();
    let mut added = Vec::new();
    let mut removed = Vec::new();
    let mut modified = Vec::new();
    for field in &fields {
        match (find(from, field), find(to, field)) {
            (None, Some(_)) => added.push((*field).clone()),
            (Some(_), None) => removed.push((*field).clone()),
            (Some(a), Some(b)) if a != b => modified.push((*field).clone()),
            _ => {}
        }
    }
    pb::PolicyDiff {
        from_version: from.table.version,
        to_version,
        changes,
        fields_added: added,
        fields_removed: removed,
        fields_modified: modified,
    }
}

/// One decision and the rules behind it.
pub fn explain(c: &Compiled, req: &pb::ExplainRequest) -> Result<pb::ExplainResponse, Invalid> {
    let r = index(&ROLES, req.role, "role")?;
    let p = index(&PHASES, req.phase, "phase")?;
    let a = index(&ACTIONS, req.action, "action")?;
    if req.field.is_empty() {
        return Err(Invalid::new("field", "is required"));
    }
    let f = c
        .table
        .field(&req.field)
        .ok_or_else(|| Invalid::new("field", format!("{} is not in the catalogue", req.field)))?;
    if req.partner_type.is_empty() {
        return Err(Invalid::new("partner_type", "is required"));
    }
    let (role, phase, action) = (ROLES[r].0, PHASES[p].0, ACTIONS[a].0);
    let (allowed, _) = c.table.cell(&req.partner_type, r, p, a, f);
    let other_phase = !allowed
        && (0..PHASES.len()).any(|q| q != p && c.table.cell(&req.partner_type, r, q, a, f).0);
    let known = c.policy.partner_types.contains(&req.partner_type);
    let asked = if known {
        req.partner_type.as_str()
    } else {
        document::ANY
    };
    let matched = c.policy.matching(asked, role, &req.field, action, phase);
    let rules: Vec<pb::PolicyRuleRef> = matched
        .iter()
        .map(|rule| pb::PolicyRuleRef {
            line: rule.line,
            text: rule.text.clone(),
            effect: to_effect(rule.allow) as i32,
        })
        .collect();
    let subject = format!(
        "{} {role} ({}) {action} {} in {phase}",
        req.partner_type,
        if known {
            "named in the policy"
        } else {
            "not named: rules for * apply"
        },
        req.field
    );
    let explanation = match (allowed, matched.iter().find(|r| !r.allow)) {
        (true, _) => format!(
            "allowed: {subject} by line {}",
            matched
                .iter()
                .filter(|r| r.allow)
                .map(|r| r.line.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
        (false, Some(deny)) => format!("denied: {subject}: line {} denies it", deny.line),
        (false, None) => format!("denied: {subject}: no rule allows it"),
    };
    Ok(pb::ExplainResponse {
        effect: to_effect(allowed) as i32,
        matched_rules: rules,
        allowed_in_other_phase: other_phase,
        explanation,
        version: c.table.version,
    })
}

/// Decisions for many fields at once, with the broker's semantics.
pub fn evaluate(
    c: &Compiled,
    req: &pb::EvaluateFieldsRequest,
) -> Result<pb::EvaluateFieldsResponse, Invalid> {
    index(&PHASES, req.phase, "phase")?;
    index(&ACTIONS, req.action, "action")?;
    for role in &req.roles {
        index(&ROLES, *role, "roles")?;
    }
    let decision = c
        .table
        .decide(&req.partner_type, &req.roles, req.phase, req.action);
    let paths: Vec<String> = if req.fields.is_empty() {
        c.table.fields().to_vec()
    } else {
        req.fields.clone()
    };
    let mut decisions = Vec::with_capacity(paths.len());
    for path in paths {
        let f = c
            .table
            .field(&path)
            .ok_or_else(|| Invalid::new("fields", format!("{path} is not in the catalogue")))?;
        decisions.push(pb::FieldDecision {
            field: path,
            effect: to_effect(decision.allowed.contains(f)) as i32,
            allowed_in_other_phase: decision.other_phase.contains(f),
        });
    }
    Ok(pb::EvaluateFieldsResponse {
        decisions,
        version: c.table.version,
    })
}

/// The grid of a version: a row per partner type, role, phase and action.
pub fn matrix(c: &Compiled, phase: i32, action: i32) -> Result<pb::AccessMatrixResponse, Invalid> {
    let phases: Vec<usize> = if phase == 0 {
        (0..PHASES.len()).collect()
    } else {
        vec![index(&PHASES, phase, "phase")?]
    };
    let actions: Vec<usize> = if action == 0 {
        (0..ACTIONS.len()).collect()
    } else {
        vec![index(&ACTIONS, action, "action")?]
    };
    let mut rows = Vec::new();
    for pt in c.table.partner_types() {
        for (r, (_, role)) in ROLES.iter().enumerate() {
            for p in &phases {
                for a in &actions {
                    rows.push(pb::AccessMatrixRow {
                        partner_type: pt.clone(),
                        role: *role as i32,
                        phase: PHASES[*p].1 as i32,
                        action: ACTIONS[*a].1 as i32,
                        cells: (0..c.table.fields().len())
                            .map(|f| to_effect(c.table.cell(&pt, r, *p, *a, f).0) as i32)
                            .collect(),
                    });
                }
            }
        }
    }
    Ok(pb::AccessMatrixResponse {
        version: c.table.version,
        fields: c.table.fields().to_vec(),
        rows,
    })
}
