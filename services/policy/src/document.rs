//! A policy version's three files, parsed and checked: the field catalogue
//! (`fields.csv`), the casbin model (`model.conf`) and its rules
//! (`policy.csv`). Every error names the file and line, as
//! `policy_csv:12`, so a coordinator can find it.

use std::collections::HashMap;

use schakel_kit::validate::Invalid;
use schakel_proto::v1 as pb;
use sha2::{Digest, Sha256};

pub use schakel_kit::decision::{ACTIONS, ANY, PHASES, ROLES};

mod model;
pub use model::check_model;

/// The repository's policy files (`policies/`), which become version 1 on
/// first start.
pub fn repository_files() -> pb::PolicyDocument {
    pb::PolicyDocument {
        model_conf: include_str!("../../../policies/model.conf").into(),
        policy_csv: include_str!("../../../policies/policy.csv").into(),
        fields_csv: include_str!("../../../policies/fields.csv").into(),
    }
}

/// SHA-256 over the three files, each prefixed by its length (8 bytes, big-endian).
pub fn content_sha256(document: &pb::PolicyDocument) -> Vec<u8> {
    let mut hash = Sha256::new();
    for file in [
        &document.model_conf,
        &document.policy_csv,
        &document.fields_csv,
    ] {
        hash.update((file.len() as u64).to_be_bytes());
        hash.update(file.as_bytes());
    }
    hash.finalize().to_vec()
}

/// One rule line of `policy.csv`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// 1-based line number.
    pub line: u32,
    /// The line as written (trimmed).
    pub text: String,
    /// Partner type, a group of them, or `*`.
    pub sub: String,
    /// Role, a group of roles, or `*`.
    pub role: String,
    /// Field path, a group of fields, or `*`.
    pub obj: String,
    /// `read` or `contribute`.
    pub act: String,
    /// Phase, a group of phases, or `*`.
    pub phase: String,
    /// Allow (true) or deny.
    pub allow: bool,
}

/// A role-definition relation (`g`, `g2` or `g3` lines): member → groups.
#[derive(Clone, Debug, Default)]
pub struct Groups {
    parents: HashMap<String, Vec<String>>,
}

/// casbin's default role manager follows links at most this deep.
const MAX_HIERARCHY: usize = 10;

impl Groups {
    fn add(&mut self, member: &str, group: &str) {
        let parents = self.parents.entry(member.to_owned()).or_default();
        if !parents.iter().any(|p| p == group) {
            parents.push(group.to_owned());
        }
    }

    /// Whether `member` belongs to `group`, directly or through other groups
    /// (at most [`MAX_HIERARCHY`] links, as casbin). Breadth first, each
    /// name visited once: linear in the links, also for dense cycles.
    pub fn contains(&self, member: &str, group: &str) -> bool {
        let mut seen: std::collections::HashSet<&str> = [member].into();
        let mut frontier = vec![member];
        for _ in 0..MAX_HIERARCHY {
            let mut next = Vec::new();
            for m in frontier {
                for parent in self.parents.get(m).into_iter().flatten() {
                    if parent == group {
                        return true;
                    }
                    if seen.insert(parent.as_str()) {
                        next.push(parent.as_str());
                    }
                }
            }
            if next.is_empty() {
                return false;
            }
            frontier = next;
        }
        false
    }

    fn is_group(&self, name: &str) -> bool {
        self.parents.values().flatten().any(|g| g == name)
    }

    fn members(&self) -> impl Iterator<Item = &String> {
        self.parents.keys()
    }
}

/// A parsed, checked policy version.
#[derive(Clone, Debug)]
pub struct Policy {
    /// The field catalogue, in file order.
    pub fields: Vec<pb::FieldDefinition>,
    /// Path → position in `fields`.
    pub field_index: HashMap<String, usize>,
    /// The rules, in file order.
    pub rules: Vec<Rule>,
    /// `g`: partner types and roles into groups.
    pub g: Groups,
    /// `g2`: fields into groups.
    pub g2: Groups,
    /// `g3`: phases into groups.
    pub g3: Groups,
    /// The partner types the policy names (in rules or `g` lines), sorted,
    /// followed by [`ANY`].
    pub partner_types: Vec<String>,
}

fn at(file: &str, line: usize, message: impl Into<String>) -> Invalid {
    Invalid::at(format!("{file}:{line}"), message)
}

fn is_code(value: &str) -> bool {
    let bytes = value.as_bytes();
    !bytes.is_empty()
        && bytes.len() <= 64
        && bytes[0].is_ascii_lowercase()
        && bytes
            .iter()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || *b == b'_')
}

/// A field path: two or more codes joined by dots, e.g. `ggz.clinical_notes`.
pub fn is_field_path(value: &str) -> bool {
    value.len() <= 128 && value.split('.').count() >= 2 && value.split('.').all(is_code)
}

/// A group name: a prefix and a code, e.g. `pt:criminal_justice`.
fn is_group_name(value: &str) -> bool {
    value
        .split_once(':')
        .is_some_and(|(prefix, name)| is_code(prefix) && is_code(name))
}

fn gdpr_class(value: &str) -> Option<pb::GdprClass> {
    Some(match value {
        "ordinary" => pb::GdprClass::Ordinary,
        "art9_health" => pb::GdprClass::Art9Health,
        "art10_criminal" => pb::GdprClass::Art10Criminal,
        "national_number" => pb::GdprClass::NationalNumber,
        "minor" => pb::GdprClass::Minor,
        _ => return None,
    })
}

/// The code of a GDPR class, as written in `fields.csv`.
pub fn gdpr_class_code(class: i32) -> &'static str {
    match pb::GdprClass::try_from(class) {
        Ok(pb::GdprClass::Ordinary) => "ordinary",
        Ok(pb::GdprClass::Art9Health) => "art9_health",
        Ok(pb::GdprClass::Art10Criminal) => "art10_criminal",
        Ok(pb::GdprClass::NationalNumber) => "national_number",
        Ok(pb::GdprClass::Minor) => "minor",
        _ => "unspecified",
    }
}

const FIELDS_HEADER: [&str; 9] = [
    "path",
    "category",
    "gdpr_class",
    "level",
    "value_kind",
    "item_kind",
    "codes",
    "description_nl",
    "description_en",
];

/// The value kinds of `fields.csv` (FieldValueKind, lower case).
const VALUE_KINDS: [(&str, pb::FieldValueKind); 11] = [
    ("text", pb::FieldValueKind::Text),
    ("integer", pb::FieldValueKind::Integer),
    ("number", pb::FieldValueKind::Number),
    ("boolean", pb::FieldValueKind::Boolean),
    ("date", pb::FieldValueKind::Date),
    ("timestamp", pb::FieldValueKind::Timestamp),
    ("code", pb::FieldValueKind::Code),
    ("address", pb::FieldValueKind::Address),
    ("person_ref", pb::FieldValueKind::PersonRef),
    ("list", pb::FieldValueKind::List),
    ("record", pb::FieldValueKind::Record),
];

fn value_kind(value: &str) -> Option<pb::FieldValueKind> {
    VALUE_KINDS
        .iter()
        .find(|(c, _)| *c == value)
        .map(|(_, k)| *k)
}

/// The most fields a catalogue may hold (the repository's: 59): every field
/// multiplies the cells the decision table and its proof against casbin
/// evaluate.
pub const MAX_FIELDS: usize = 200;

/// The most lines `policy.csv` may hold (the repository's: 389).
pub const MAX_RULE_LINES: usize = 4_000;

/// Parses `fields.csv`.
pub fn parse_fields(text: &str) -> Result<Vec<pb::FieldDefinition>, Invalid> {
    const FILE: &str = "fields_csv";
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .comment(Some(b'#'))
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let header = reader
        .headers()
        .map_err(|e| at(FILE, 1, format!("unreadable header: {e}")))?
        .clone();
    if header.iter().collect::<Vec<_>>() != FIELDS_HEADER {
        return Err(at(
            FILE,
            1,
            format!("the header must be {}", FIELDS_HEADER.join(",")),
        ));
    }
    let mut fields: Vec<pb::FieldDefinition> = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| {
            let line = e.position().map_or(0, |p| p.line() as usize);
            at(FILE, line, format!("not a CSV line of 9 columns: {e}"))
        })?;
        let line = record.position().map_or(0, |p| p.line() as usize);
        if fields.len() == MAX_FIELDS {
            let message = format!("a catalogue holds at most {MAX_FIELDS} fields");
            return Err(at(FILE, line, message));
        }
        let get = |i: usize| record.get(i).unwrap_or_default();
        let path = get(0);
        if !is_field_path(path) {
            return Err(at(
                FILE,
                line,
                format!("{path:?} is not a field path (codes joined by dots)"),
            ));
        }
        if fields.iter().any(|f| f.path == path) {
            return Err(at(FILE, line, format!("{path} is defined twice")));
        }
        let category = get(1);
        if !is_code(category) {
            return Err(at(
                FILE,
                line,
                format!("{category:?} is not a category code"),
            ));
        }
        let class = gdpr_class(get(2)).ok_or_else(|| {
            at(
                FILE,
                line,
                format!(
                    "{:?} is not a GDPR class (ordinary, art9_health, art10_criminal, national_number, minor)",
                    get(2)
                ),
            )
        })?;
        let per_person = match get(3) {
            "person" => true,
            "dossier" => false,
            other => {
                return Err(at(
                    FILE,
                    line,
                    format!("level {other:?} must be person or dossier"),
                ));
            }
        };
        if per_person != path.starts_with("persons.") {
            return Err(at(
                FILE,
                line,
                "person-level fields are exactly those under persons.",
            ));
        }
        let kinds = || VALUE_KINDS.map(|(c, _)| c).join(", ");
        let kind = value_kind(get(4)).ok_or_else(|| {
            at(
                FILE,
                line,
                format!("value_kind {:?} is not one of {}", get(4), kinds()),
            )
        })?;
        let item_kind = match (kind, get(5)) {
            (pb::FieldValueKind::List, "") => {
                return Err(at(FILE, line, "a list needs an item_kind"));
            }
            (pb::FieldValueKind::List, item) => match value_kind(item) {
                Some(pb::FieldValueKind::List) | None => {
                    return Err(at(
                        FILE,
                        line,
                        format!("item_kind {item:?} must be a value kind other than list"),
                    ));
                }
                Some(k) => k,
            },
            (_, "") => pb::FieldValueKind::Unspecified,
            (_, _) => return Err(at(FILE, line, "item_kind is only for lists")),
        };
        let codes: Vec<String> = if get(6).is_empty() {
            Vec::new()
        } else {
            get(6).split('|').map(str::to_owned).collect()
        };
        let takes_codes = kind == pb::FieldValueKind::Code || item_kind == pb::FieldValueKind::Code;
        if !codes.is_empty() && !takes_codes {
            return Err(at(
                FILE,
                line,
                "codes are only for code fields and lists of codes",
            ));
        }
        if let Some(bad) = codes.iter().find(|c| !is_code(c)) {
            return Err(at(FILE, line, format!("{bad:?} is not a code")));
        }
        if codes
            .iter()
            .enumerate()
            .any(|(i, c)| codes[..i].contains(c))
        {
            return Err(at(FILE, line, "a code is listed twice"));
        }
        for (i, name) in [(7, "description_nl"), (8, "description_en")] {
            if get(i).is_empty() || get(i).chars().count() > 300 {
                return Err(at(FILE, line, format!("{name} must be 1-300 characters")));
            }
        }
        fields.push(pb::FieldDefinition {
            path: path.into(),
            category: category.into(),
            gdpr_class: class as i32,
            description_nl: get(7).into(),
            description_en: get(8).into(),
            value_kind: kind as i32,
            item_kind: item_kind as i32,
            per_person,
            allowed_codes: codes,
        });
    }
    if fields.is_empty() {
        return Err(at(FILE, 2, "the catalogue has no fields"));
    }
    Ok(fields)
}

impl Policy {
    /// Parses and checks the three files. The model's matcher and effect are
    /// not interpreted here: [`crate::proof::prove`] compares the result with
    /// casbin.
    pub fn parse(document: &pb::PolicyDocument) -> Result<Policy, Invalid> {
        check_model(&document.model_conf)?;
        let fields = parse_fields(&document.fields_csv)?;
        let field_index: HashMap<String, usize> = fields
            .iter()
            .enumerate()
            .map(|(i, f)| (f.path.clone(), i))
            .collect();
        const FILE: &str = "policy_csv";
        let mut rules = Vec::new();
        let (mut g, mut g2, mut g3) = (Groups::default(), Groups::default(), Groups::default());
        let mut lines: Vec<(usize, Vec<String>, String)> = Vec::new();
        for (i, raw) in document.policy_csv.lines().enumerate() {
            let text = raw.trim();
            if text.is_empty() || text.starts_with('#') {
                continue;
            }
            if text.contains(['"', '(', ')', '[', ']', '#']) {
                return Err(at(
                    FILE,
                    i + 1,
                    "rule lines are plain: no quotes, brackets or trailing comments",
                ));
            }
            if lines.len() == MAX_RULE_LINES {
                let message = format!("policy.csv holds at most {MAX_RULE_LINES} rule lines");
                return Err(at(FILE, i + 1, message));
            }
            let cols: Vec<String> = text.split(',').map(|c| c.trim().to_owned()).collect();
            if lines.iter().any(|(_, _, t)| t == text) {
                return Err(at(FILE, i + 1, "the same line appears twice"));
            }
            lines.push((i + 1, cols, text.to_owned()));
        }
        // Groups first: rules may name a group defined further down.
        for (line, cols, _) in &lines {
            let kind = cols[0].as_str();
            if !matches!(kind, "g" | "g2" | "g3") {
                continue;
            }
            if cols.len() != 3 {
                return Err(at(FILE, *line, format!("{kind} lines have 2 values")));
            }
            let (member, group) = (cols[1].as_str(), cols[2].as_str());
            if !is_group_name(group) {
                return Err(at(
                    FILE,
                    *line,
                    format!(
                        "{group:?} is not a group name (prefix:code, e.g. pt:criminal_justice)"
                    ),
                ));
            }
            let ok = match kind {
                "g" => is_code(member) || is_group_name(member),
                "g2" => field_index.contains_key(member) || is_group_name(member),
                _ => PHASES.iter().any(|(p, _)| *p == member) || is_group_name(member),
            };
            if !ok {
                let what = match kind {
                    "g" => "a partner type, role or group",
                    "g2" => "a field of fields.csv or a group",
                    _ => "a phase or group",
                };
                return Err(at(FILE, *line, format!("{member:?} is not {what}")));
            }
            match kind {
                "g" => g.add(member, group),
                "g2" => g2.add(member, group),
                _ => g3.add(member, group),
            }
        }
        for (line, cols, text) in &lines {
            match cols[0].as_str() {
                "g" | "g2" | "g3" => continue,
                "p" => {}
                other => {
                    return Err(at(
                        FILE,
                        *line,
                        format!("{other:?}: lines start with p, g, g2 or g3"),
                    ));
                }
            }
            if cols.len() != 7 {
                return Err(at(
                    FILE,
                    *line,
                    "p lines have 6 values: partner type, role, field, action, phase, allow|deny",
                ));
            }
            let (sub, role, obj, act, phase, eft) =
                (&cols[1], &cols[2], &cols[3], &cols[4], &cols[5], &cols[6]);
            let known_group = |groups: &Groups, name: &str| groups.is_group(name);
            if !(sub == ANY
                || is_code(sub) && !ROLES.iter().any(|(r, _)| r == sub)
                || known_group(&g, sub))
            {
                return Err(at(
                    FILE,
                    *line,
                    format!("{sub:?} is not a partner type, a group of the g lines, or *"),
                ));
            }
            if !(role == ANY || ROLES.iter().any(|(r, _)| r == role) || known_group(&g, role)) {
                return Err(at(
                    FILE,
                    *line,
                    format!("{role:?} is not a role, a group of the g lines, or *"),
                ));
            }
            if !(obj == ANY || field_index.contains_key(obj.as_str()) || known_group(&g2, obj)) {
                return Err(at(
                    FILE,
                    *line,
                    format!("unknown field {obj:?}: not in fields.csv nor a group of the g2 lines"),
                ));
            }
            if !ACTIONS.iter().any(|(a, _)| a == act) {
                return Err(at(
                    FILE,
                    *line,
                    format!("{act:?} is not an action (read, contribute)"),
                ));
            }
            if !(phase == ANY || PHASES.iter().any(|(p, _)| p == phase) || known_group(&g3, phase))
            {
                return Err(at(
                    FILE,
                    *line,
                    format!("{phase:?} is not a phase, a group of the g3 lines, or *"),
                ));
            }
            let allow = match eft.as_str() {
                "allow" => true,
                "deny" => false,
                other => {
                    return Err(at(
                        FILE,
                        *line,
                        format!("{other:?} is not an effect (allow, deny)"),
                    ));
                }
            };
            rules.push(Rule {
                line: *line as u32,
                text: text.clone(),
                sub: sub.clone(),
                role: role.clone(),
                obj: obj.clone(),
                act: act.clone(),
                phase: phase.clone(),
                allow,
            });
        }
        let mut partner_types: Vec<String> = rules
            .iter()
            .map(|r| r.sub.clone())
            .chain(g.members().cloned())
            .filter(|s| {
                s != ANY && is_code(s) && !ROLES.iter().any(|(r, _)| r == s) && !g.is_group(s)
            })
            .collect();
        partner_types.sort();
        partner_types.dedup();
        partner_types.push(ANY.to_owned());
        Ok(Policy {
            fields,
            field_index,
            rules,
            g,
            g2,
            g3,
            partner_types,
        })
    }

    /// Whether `rule` matches the request (the model's matcher, for requests
    /// in the shape of [`MODEL_SHAPE`]).
    pub fn matches(
        &self,
        rule: &Rule,
        sub: &str,
        role: &str,
        obj: &str,
        act: &str,
        phase: &str,
    ) -> bool {
        let term = |want: &str, got: &str, groups: &Groups| {
            want == ANY || want == got || groups.contains(got, want)
        };
        rule.act == act
            && term(&rule.phase, phase, &self.g3)
            && term(&rule.sub, sub, &self.g)
            && term(&rule.role, role, &self.g)
            && term(&rule.obj, obj, &self.g2)
    }

    /// The rules matching a request, in file order.
    pub fn matching(&self, sub: &str, role: &str, obj: &str, act: &str, phase: &str) -> Vec<&Rule> {
        self.rules
            .iter()
            .filter(|r| self.matches(r, sub, role, obj, act, phase))
            .collect()
    }
}

/// A role code from the proto enum.
pub fn role_code(role: i32) -> Option<&'static str> {
    ROLES
        .iter()
        .find(|(_, r)| *r as i32 == role)
        .map(|(c, _)| *c)
}

/// A phase code from the proto enum.
pub fn phase_code(phase: i32) -> Option<&'static str> {
    PHASES
        .iter()
        .find(|(_, p)| *p as i32 == phase)
        .map(|(c, _)| *c)
}

/// An action code from the proto enum.
pub fn action_code(action: i32) -> Option<&'static str> {
    ACTIONS
        .iter()
        .find(|(_, a)| *a as i32 == action)
        .map(|(c, _)| *c)
}

#[cfg(test)]
mod tests;
