//! Expectation tables (`policies/tests/*.csv`): rows of
//! `subject,role,field,action,phase,expected` that a policy must satisfy,
//! run by `schakel policy test` and by CI.

use schakel_proto::v1 as pb;

use crate::{
    document::{ACTIONS, PHASES, ROLES},
    table::DecisionTable,
};

/// One row of an expectation table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Expectation {
    /// File name and 1-based line, e.g. `health.csv:6`.
    pub place: String,
    /// Partner type code.
    pub subject: String,
    /// Role code.
    pub role: String,
    /// Field path.
    pub field: String,
    /// `read` or `contribute`.
    pub action: String,
    /// Phase code.
    pub phase: String,
    /// Whether the decision must be allow.
    pub allow: bool,
}

/// Parses one expectation file (comment lines start with `#`).
pub fn parse(name: &str, text: &str) -> Result<Vec<Expectation>, String> {
    let mut rows = Vec::new();
    let mut header_seen = false;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let cols: Vec<&str> = line.split(',').map(str::trim).collect();
        if !header_seen {
            if cols != ["subject", "role", "field", "action", "phase", "expected"] {
                return Err(format!(
                    "{name}:{}: the header must be subject,role,field,action,phase,expected",
                    i + 1
                ));
            }
            header_seen = true;
            continue;
        }
        let [subject, role, field, action, phase, expected] = cols[..] else {
            return Err(format!("{name}:{}: 6 columns expected", i + 1));
        };
        let allow = match expected {
            "allow" => true,
            "deny" => false,
            other => {
                return Err(format!(
                    "{name}:{}: expected {other:?} is not allow or deny",
                    i + 1
                ));
            }
        };
        rows.push(Expectation {
            place: format!("{name}:{}", i + 1),
            subject: subject.into(),
            role: role.into(),
            field: field.into(),
            action: action.into(),
            phase: phase.into(),
            allow,
        });
    }
    Ok(rows)
}

/// What the table decides for a row, or why the row cannot be asked.
pub fn decide(table: &DecisionTable, row: &Expectation) -> Result<bool, String> {
    let role = ROLES
        .iter()
        .find(|(c, _)| *c == row.role)
        .map(|(_, r)| *r as i32)
        .ok_or_else(|| format!("{}: unknown role {}", row.place, row.role))?;
    let phase = PHASES
        .iter()
        .find(|(c, _)| *c == row.phase)
        .map(|(_, p)| *p as i32)
        .ok_or_else(|| format!("{}: unknown phase {}", row.place, row.phase))?;
    let action = ACTIONS
        .iter()
        .find(|(c, _)| *c == row.action)
        .map(|(_, a)| *a as i32)
        .ok_or_else(|| format!("{}: unknown action {}", row.place, row.action))?;
    let field = table
        .field(&row.field)
        .ok_or_else(|| format!("{}: unknown field {}", row.place, row.field))?;
    Ok(table
        .allowed(&row.subject, &[role], phase, action)
        .contains(field))
}

/// The rows whose decision differs from the expectation, as readable lines.
pub fn failures(table: &DecisionTable, rows: &[Expectation]) -> Vec<String> {
    rows.iter()
        .filter_map(|row| match decide(table, row) {
            Ok(got) if got == row.allow => None,
            Ok(got) => Some(format!(
                "{}: {} {} {} {} {}: expected {}, got {}",
                row.place,
                row.subject,
                row.role,
                row.field,
                row.action,
                row.phase,
                effect(row.allow),
                effect(got)
            )),
            Err(e) => Some(e),
        })
        .collect()
}

fn effect(allow: bool) -> &'static str {
    if allow { "allow" } else { "deny" }
}

/// The effect as the proto names it.
pub fn to_effect(allow: bool) -> pb::PolicyEffect {
    if allow {
        pb::PolicyEffect::Allow
    } else {
        pb::PolicyEffect::Deny
    }
}
