//! The compiled decision table of a need-to-know policy version: for every
//! subject (partner type, role), phase and action, the fields allowed and the
//! fields explicitly denied, as bit masks. The policy service builds it
//! ([`DecisionTable::build`]) from casbin; the broker enforces it on every
//! call, in well under a microsecond instead of a casbin matcher per rule per
//! field. It lives here so that the broker needs no other service's crate.

use std::collections::HashMap;

use schakel_proto::v1 as pb;

/// The roles a rule or request may name, as their codes.
pub const ROLES: [(&str, pb::Role); 5] = [
    ("aanmelder", pb::Role::Aanmelder),
    ("team_member", pb::Role::TeamMember),
    ("casusregisseur", pb::Role::Casusregisseur),
    ("privacy_officer", pb::Role::PrivacyOfficer),
    ("coordinator", pb::Role::Coordinator),
];

/// The phases of a dossier, as their codes.
pub const PHASES: [(&str, pb::Phase); 7] = [
    ("registration", pb::Phase::Registration),
    ("case_building", pb::Phase::CaseBuilding),
    ("assessment", pb::Phase::Assessment),
    ("case_direction", pb::Phase::CaseDirection),
    ("follow_up", pb::Phase::FollowUp),
    ("closed", pb::Phase::Closed),
    ("not_retained", pb::Phase::NotRetained),
];

/// The actions, as their codes.
pub const ACTIONS: [(&str, pb::FieldAction); 2] = [
    ("read", pb::FieldAction::Read),
    ("contribute", pb::FieldAction::Contribute),
];

/// The partner type code that stands for every partner type the policy does
/// not name.
pub const ANY: &str = "*";

/// A set of fields, bit `i` for field `i` of the catalogue.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct FieldSet(Vec<u64>);

impl FieldSet {
    fn empty(fields: usize) -> Self {
        FieldSet(vec![0; fields.div_ceil(64)])
    }

    /// Whether field `i` is in the set.
    pub fn contains(&self, i: usize) -> bool {
        self.0.get(i / 64).is_some_and(|w| w >> (i % 64) & 1 == 1)
    }

    fn insert(&mut self, i: usize) {
        self.0[i / 64] |= 1 << (i % 64);
    }

    fn or(&mut self, other: &FieldSet) {
        for (a, b) in self.0.iter_mut().zip(&other.0) {
            *a |= b;
        }
    }

    fn and_not(&mut self, other: &FieldSet) {
        for (a, b) in self.0.iter_mut().zip(&other.0) {
            *a &= !b;
        }
    }

    /// The bytes of the proto masks: bit i at `(mask[i / 8] >> (i % 8)) & 1`.
    fn to_bytes(&self, fields: usize) -> Vec<u8> {
        (0..fields.div_ceil(8))
            .map(|b| (self.0[b / 8] >> ((b % 8) * 8)) as u8)
            .collect()
    }

    fn from_bytes(bytes: &[u8], fields: usize) -> Option<Self> {
        if bytes.len() != fields.div_ceil(8) {
            return None;
        }
        let mut set = FieldSet::empty(fields);
        for (b, byte) in bytes.iter().enumerate() {
            set.0[b / 8] |= u64::from(*byte) << ((b % 8) * 8);
        }
        // No bits beyond the catalogue.
        let valid = (0..fields).fold(FieldSet::empty(fields), |mut s, i| {
            s.insert(i);
            s
        });
        let mut outside = set.clone();
        outside.and_not(&valid);
        outside.0.iter().all(|w| *w == 0).then_some(set)
    }
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Row {
    allow: FieldSet,
    deny: FieldSet,
}

/// What one request decides.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// Fields allowed.
    pub allowed: FieldSet,
    /// Fields not allowed here that these roles may have in another phase.
    pub other_phase: FieldSet,
}

/// A policy version compiled for enforcement.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DecisionTable {
    /// The policy version.
    pub version: u64,
    fields: Vec<String>,
    field_index: HashMap<String, usize>,
    subjects: HashMap<String, usize>,
    any: usize,
    rows: Vec<Row>,
}

fn role_index(role: i32) -> Option<usize> {
    ROLES.iter().position(|(_, r)| *r as i32 == role)
}

fn phase_index(phase: i32) -> Option<usize> {
    PHASES.iter().position(|(_, p)| *p as i32 == phase)
}

fn action_index(action: i32) -> Option<usize> {
    ACTIONS.iter().position(|(_, a)| *a as i32 == action)
}

impl DecisionTable {
    fn slot(&self, subject: usize, role: usize, phase: usize, action: usize) -> usize {
        ((subject * ROLES.len() + role) * PHASES.len() + phase) * ACTIONS.len() + action
    }

    /// Builds the table of policy `version` over `fields` (catalogue order)
    /// and `partner_types` (which must include [`ANY`]): `matching(subject,
    /// role, field, action, phase)` says whether some rule allows and whether
    /// some rule denies, for every combination once.
    pub fn build(
        version: u64,
        fields: Vec<String>,
        partner_types: &[String],
        matching: impl Fn(&str, &str, &str, &str, &str) -> (bool, bool),
    ) -> DecisionTable {
        let subjects: HashMap<String, usize> = partner_types
            .iter()
            .enumerate()
            .map(|(i, s)| (s.clone(), i))
            .collect();
        let any = subjects[ANY];
        let mut rows = Vec::with_capacity(subjects.len() * ROLES.len() * PHASES.len() * 2);
        for subject in partner_types {
            for (role, _) in ROLES {
                for (phase, _) in PHASES {
                    for (action, _) in ACTIONS {
                        let mut row = Row {
                            allow: FieldSet::empty(fields.len()),
                            deny: FieldSet::empty(fields.len()),
                        };
                        for (i, field) in fields.iter().enumerate() {
                            match matching(subject, role, field, action, phase) {
                                (_, true) => row.deny.insert(i),
                                (true, false) => row.allow.insert(i),
                                (false, false) => {}
                            }
                        }
                        rows.push(row);
                    }
                }
            }
        }
        DecisionTable {
            version,
            field_index: fields
                .iter()
                .enumerate()
                .map(|(i, f)| (f.clone(), i))
                .collect(),
            fields,
            subjects,
            any,
            rows,
        }
    }

    /// The field paths, in catalogue order.
    pub fn fields(&self) -> &[String] {
        &self.fields
    }

    /// The position of a field path.
    pub fn field(&self, path: &str) -> Option<usize> {
        self.field_index.get(path).copied()
    }

    fn subject(&self, partner_type: &str) -> usize {
        self.subjects.get(partner_type).copied().unwrap_or(self.any)
    }

    fn combine(&self, subject: usize, roles: &[usize], phase: usize, action: usize) -> FieldSet {
        let mut allow = FieldSet::empty(self.fields.len());
        let mut deny = FieldSet::empty(self.fields.len());
        for role in roles {
            let row = &self.rows[self.slot(subject, *role, phase, action)];
            allow.or(&row.allow);
            deny.or(&row.deny);
        }
        allow.and_not(&deny);
        allow
    }

    /// The decision for a caller of `partner_type` holding `roles` (proto
    /// values) on a dossier in `phase`, for `action`: a field is allowed when
    /// some role allows it and no role's rule denies it. Unknown roles add
    /// nothing; an unknown phase or action allows nothing.
    pub fn decide(&self, partner_type: &str, roles: &[i32], phase: i32, action: i32) -> Decision {
        let empty = Decision {
            allowed: FieldSet::empty(self.fields.len()),
            other_phase: FieldSet::empty(self.fields.len()),
        };
        let (Some(phase), Some(action)) = (phase_index(phase), action_index(action)) else {
            return empty;
        };
        let roles: Vec<usize> = roles.iter().filter_map(|r| role_index(*r)).collect();
        let subject = self.subject(partner_type);
        let allowed = self.combine(subject, &roles, phase, action);
        let mut other_phase = FieldSet::empty(self.fields.len());
        for p in (0..PHASES.len()).filter(|p| *p != phase) {
            other_phase.or(&self.combine(subject, &roles, p, action));
        }
        other_phase.and_not(&allowed);
        Decision {
            allowed,
            other_phase,
        }
    }

    /// Only whether fields are allowed (the broker's hot path).
    pub fn allowed(&self, partner_type: &str, roles: &[i32], phase: i32, action: i32) -> FieldSet {
        match (phase_index(phase), action_index(action)) {
            (Some(phase), Some(action)) => {
                let roles: Vec<usize> = roles.iter().filter_map(|r| role_index(*r)).collect();
                self.combine(self.subject(partner_type), &roles, phase, action)
            }
            _ => FieldSet::empty(self.fields.len()),
        }
    }

    /// The single-role row: (allowed, explicitly denied) for field `i`.
    pub fn cell(
        &self,
        partner_type: &str,
        role: usize,
        phase: usize,
        action: usize,
        field: usize,
    ) -> (bool, bool) {
        let row = &self.rows[self.slot(self.subject(partner_type), role, phase, action)];
        (row.allow.contains(field), row.deny.contains(field))
    }

    /// The partner types with rows of their own, then `*`.
    pub fn partner_types(&self) -> Vec<String> {
        let mut named: Vec<(usize, String)> =
            self.subjects.iter().map(|(s, i)| (*i, s.clone())).collect();
        named.sort();
        named.into_iter().map(|(_, s)| s).collect()
    }

    /// The proto form, as brokers receive it.
    pub fn to_proto(&self) -> pb::DecisionTable {
        let mut rows = Vec::with_capacity(self.rows.len());
        for subject in self.partner_types() {
            let s = self.subjects[&subject];
            for (r, (_, role)) in ROLES.iter().enumerate() {
                for (p, (_, phase)) in PHASES.iter().enumerate() {
                    for (a, (_, action)) in ACTIONS.iter().enumerate() {
                        let row = &self.rows[self.slot(s, r, p, a)];
                        rows.push(pb::DecisionTableRow {
                            partner_type: subject.clone(),
                            role: *role as i32,
                            phase: *phase as i32,
                            action: *action as i32,
                            allow_mask: row.allow.to_bytes(self.fields.len()),
                            deny_mask: row.deny.to_bytes(self.fields.len()),
                        });
                    }
                }
            }
        }
        pb::DecisionTable {
            version: self.version,
            fields: self.fields.clone(),
            rows,
        }
    }

    /// Reads a table received from the policy service. `None` when it is not
    /// complete and consistent (then the broker keeps the table it has).
    pub fn from_proto(table: &pb::DecisionTable) -> Option<DecisionTable> {
        let fields = table.fields.clone();
        let mut subjects: HashMap<String, usize> = HashMap::new();
        for row in &table.rows {
            let next = subjects.len();
            subjects.entry(row.partner_type.clone()).or_insert(next);
        }
        let any = *subjects.get(ANY)?;
        let mut rows = vec![None; subjects.len() * ROLES.len() * PHASES.len() * ACTIONS.len()];
        let mut out = DecisionTable {
            version: table.version,
            field_index: fields
                .iter()
                .enumerate()
                .map(|(i, f)| (f.clone(), i))
                .collect(),
            fields,
            subjects,
            any,
            rows: Vec::new(),
        };
        if out.field_index.len() != out.fields.len() {
            return None;
        }
        for row in &table.rows {
            let slot = out.slot(
                out.subjects[&row.partner_type],
                role_index(row.role)?,
                phase_index(row.phase)?,
                action_index(row.action)?,
            );
            let cell = &mut rows[slot];
            if cell.is_some() {
                return None;
            }
            *cell = Some(Row {
                allow: FieldSet::from_bytes(&row.allow_mask, out.fields.len())?,
                deny: FieldSet::from_bytes(&row.deny_mask, out.fields.len())?,
            });
        }
        out.rows = rows.into_iter().collect::<Option<Vec<_>>>()?;
        Some(out)
    }
}
