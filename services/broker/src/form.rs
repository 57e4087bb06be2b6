//! A registration form (or a new person) as the contributions it makes:
//! one (path, client reference, value) per field given, checked against the
//! catalogue by the caller.

use std::collections::HashMap;

use schakel_kit::validate::{self, Invalid};
use schakel_proto::v1::{self as pb, field_value::Kind};
use tonic::Status;

type Result<T, E = Status> = std::result::Result<T, E>;

/// The role codes of person roles.
pub(crate) fn role_codes(roles: &[pb::PersonRole]) -> Vec<String> {
    roles
        .iter()
        .map(|r| {
            r.as_str_name()
                .trim_start_matches("PERSON_ROLE_")
                .to_lowercase()
        })
        .collect()
}

pub(crate) fn text(t: &str) -> pb::FieldValue {
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

/// One contribution a form makes: (path, client_ref, value), with an empty
/// client_ref for a dossier-level field.
type FormValue = (String, String, pb::FieldValue);

/// The contributions a registration form makes: (path, client_ref, value).
pub(crate) fn form_values(
    form: &pb::RegistrationForm,
    refs: &HashMap<String, String>,
) -> Result<Vec<(String, String, pb::FieldValue)>> {
    let mut out = dossier_values(form);
    for (i, p) in form.persons.iter().enumerate() {
        out.extend(person_values(i, p)?);
    }
    out.extend(relation_values(&form.relations, refs)?);
    out.extend(form.additional_fields.iter().map(|f| {
        (
            f.path.clone(),
            f.client_ref.clone(),
            f.value.clone().unwrap_or_default(),
        )
    }));
    Ok(out)
}

/// A text that is only blanks is no answer, so it makes no contribution.
fn trimmed_text(t: &str) -> Option<pb::FieldValue> {
    (!t.trim().is_empty()).then(|| text(t.trim()))
}

/// The dossier-level fields the form fills; a field left empty makes no
/// contribution, since empty means not known rather than known to be empty.
fn dossier_values(form: &pb::RegistrationForm) -> Vec<FormValue> {
    let codes = |c: &[String]| (!c.is_empty()).then(|| code_list(c));
    let dossier_fields = [
        ("registration.violence_types", codes(&form.violence_types)),
        ("registration.violence_forms", codes(&form.violence_forms)),
        (
            "registration.situation_description",
            trimmed_text(&form.situation_description),
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
            trimmed_text(&form.source_reference),
        ),
    ];
    dossier_fields
        .into_iter()
        .filter_map(|(path, value)| value.map(|v| (path.to_owned(), String::new(), v)))
        .collect()
}

/// The fields of the `i`th person of the form, under their client reference;
/// roles always, the rest when given.
fn person_values(i: usize, p: &pb::ClientPersonInput) -> Result<Vec<FormValue>> {
    let roles: Vec<pb::PersonRole> = p
        .roles
        .iter()
        .filter_map(|x| pb::PersonRole::try_from(*x).ok())
        .collect();
    let values = [
        ("persons.roles", Some(code_list(&role_codes(&roles)))),
        ("persons.given_name", trimmed_text(&p.given_name)),
        ("persons.family_name", trimmed_text(&p.family_name)),
        (
            "persons.birth_date",
            p.birth_date.map(|b| pb::FieldValue {
                kind: Some(Kind::Date(b)),
            }),
        ),
        (
            "persons.national_number",
            national_number(i, &p.national_number)?,
        ),
        (
            "persons.address",
            p.address.clone().map(|a| pb::FieldValue {
                kind: Some(Kind::Address(a)),
            }),
        ),
    ];
    Ok(values
        .into_iter()
        .filter_map(|(path, value)| value.map(|v| (path.to_owned(), p.client_ref.clone(), v)))
        .collect())
}

/// The number in its canonical form, so that one person is stored (and
/// looked up) the same however the number was typed.
fn national_number(i: usize, number: &str) -> Result<Option<pb::FieldValue>> {
    if number.is_empty() {
        return Ok(None);
    }
    let canonical = crate::national_number::parse(number).map_err(|_| {
        Status::from(Invalid::at(
            format!("form.persons[{i}].national_number"),
            "not a valid national register number (11 digits, mod-97 check)",
        ))
    })?;
    Ok(Some(text(&canonical)))
}

/// Relations: one `persons.relations` value per person, the list of their
/// {person, kind} records, in the order the persons first appear as `from`.
fn relation_values(
    relations: &[pb::PersonRelation],
    refs: &HashMap<String, String>,
) -> Result<Vec<FormValue>> {
    let mut by_person: Vec<(String, Vec<pb::FieldValue>)> = Vec::new();
    for (i, r) in relations.iter().enumerate() {
        let (Some(_), Some(to)) = (refs.get(&r.from_person), refs.get(&r.to_person)) else {
            return Err(Invalid::at(
                format!("form.relations[{i}]"),
                "from_person and to_person must name persons of the form",
            )
            .into());
        };
        validate::code("form.relations.kind", &r.kind)?;
        let record = relation_record(to, &r.kind);
        match by_person
            .iter_mut()
            .find(|(from, _)| *from == r.from_person)
        {
            Some((_, list)) => list.push(record),
            None => by_person.push((r.from_person.clone(), vec![record])),
        }
    }
    Ok(by_person
        .into_iter()
        .map(|(from, items)| {
            (
                "persons.relations".into(),
                from,
                pb::FieldValue {
                    kind: Some(Kind::List(pb::FieldValueList { items })),
                },
            )
        })
        .collect())
}

/// The other person by their person id, not the client reference: the record
/// outlives the form.
fn relation_record(to: &str, kind: &str) -> pb::FieldValue {
    pb::FieldValue {
        kind: Some(Kind::Record(pb::FieldRecord {
            fields: HashMap::from([
                (
                    "person".to_owned(),
                    pb::FieldValue {
                        kind: Some(Kind::PersonRef(to.to_owned())),
                    },
                ),
                (
                    "kind".to_owned(),
                    pb::FieldValue {
                        kind: Some(Kind::Code(kind.to_owned())),
                    },
                ),
            ]),
        })),
    }
}

/// The known roles of a person (at least one), or INVALID_ARGUMENT at `field`.
pub(crate) fn person_roles(field: String, roles: &[i32]) -> Result<Vec<pb::PersonRole>> {
    roles
        .iter()
        .map(|r| {
            pb::PersonRole::try_from(*r)
                .ok()
                .filter(|r| *r != pb::PersonRole::Unspecified)
        })
        .collect::<Option<Vec<_>>>()
        .filter(|r| !r.is_empty())
        .ok_or_else(|| Invalid::at(field, "known roles are required").into())
}

/// The form's values, each checked against the catalogue; per-person values
/// get the person id of their client reference.
pub(crate) fn checked_values(
    fields: &[pb::FieldDefinition],
    place: &str,
    values: Vec<(String, String, pb::FieldValue)>,
    refs: &HashMap<String, String>,
) -> Result<Vec<(String, String, pb::FieldValue)>> {
    let mut out = Vec::with_capacity(values.len());
    for (i, (path, client_ref, value)) in values.into_iter().enumerate() {
        let Some(field) = fields.iter().find(|f| f.path == path) else {
            let message = format!("{path} is not in the field catalogue");
            return Err(Invalid::at(format!("{place}[{i}]"), message).into());
        };
        let person_id = if field.per_person {
            refs.get(&client_ref).cloned().ok_or_else(|| {
                Status::from(Invalid::at(
                    format!("{place}[{i}].client_ref"),
                    format!("{path} needs the client_ref of a person"),
                ))
            })?
        } else {
            String::new()
        };
        crate::values::check(format!("{place}[{i}].value ({path})"), &value, field)?;
        out.push((path, person_id, value));
    }
    Ok(out)
}
