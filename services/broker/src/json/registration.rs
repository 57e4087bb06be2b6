//! A registration (aanmelding) as a JSON file and as the RegisterDossier
//! request it makes. The file speaks the form's words (spoor 1, 2 or 3; role
//! codes; person `ref`s) so that it can be written by hand.

use schakel_proto::v1 as pb;
use serde::Deserialize;
use serde_json::Value;

use super::{JsonError, PersonFile, bad, value_from_json};

/// A registration (aanmelding) as a JSON file, in the words of the form. See
/// `deploy/examples/registration.json` and [`crate::seed`].
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RegistrationFile {
    /// Judicial district code, e.g. `leuven`.
    pub district: String,
    /// Spoor asked for: 1, 2 or 3.
    pub track: u8,
    /// Codes, e.g. `fysiek`, `psychisch`.
    #[serde(default)]
    pub violence_types: Vec<String>,
    /// Codes, e.g. `partnergeweld`, `kinderen_getuige`.
    #[serde(default)]
    pub violence_forms: Vec<String>,
    /// The description of the situation.
    #[serde(default)]
    pub situation_description: String,
    /// Red flags: `{"code": "wapens", "note": "..."}`.
    #[serde(default)]
    pub risk_factors: Vec<FactorFile>,
    /// Protective factors, same shape.
    #[serde(default)]
    pub protective_factors: Vec<FactorFile>,
    /// Organisations already involved with the family.
    #[serde(default)]
    pub involved_organisations: Vec<InvolvedFile>,
    /// The registering organisation's own case reference.
    #[serde(default)]
    pub source_reference: String,
    /// The client system.
    pub persons: Vec<PersonFile>,
    /// Relations between persons, by `ref`.
    #[serde(default)]
    pub relations: Vec<RelationFile>,
    /// Other catalogue fields: `{"path": .., "person": <ref>, "value": <value>}`.
    #[serde(default)]
    pub additional_fields: Vec<FieldFile>,
}

/// A risk or protective factor.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FactorFile {
    /// Code, e.g. `doodsbedreiging`.
    pub code: String,
    /// Optional short note.
    #[serde(default)]
    pub note: String,
}

/// An organisation involved with the family.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InvolvedFile {
    /// Schakel organisation id, when it is one.
    #[serde(default)]
    pub organisation_id: String,
    /// Name or kind.
    #[serde(default)]
    pub name: String,
    /// Sector code.
    #[serde(default)]
    pub sector: String,
}

/// A relation between two persons of the file.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelationFile {
    /// `ref` of the first person.
    pub from: String,
    /// `ref` of the second person.
    pub to: String,
    /// Code, e.g. `partner`, `ouder_van`.
    pub kind: String,
}

/// A value for a catalogue field.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FieldFile {
    /// Catalogue path.
    pub path: String,
    /// For per-person fields, the person's `ref` (registration) or id (later).
    #[serde(default)]
    pub person: String,
    /// Tagged value.
    pub value: Value,
}

/// Spoor 1, 2 or 3 as the proto's track.
pub fn track(spoor: u8) -> Option<pb::Track> {
    match spoor {
        1 => Some(pb::Track::Consult),
        2 => Some(pb::Track::CaseSupport),
        3 => Some(pb::Track::ChainApproach),
        _ => None,
    }
}

impl RegistrationFile {
    /// The RegisterDossier request; `now` (unix seconds) fills default times.
    pub fn to_request(
        &self,
        idempotency_key: &str,
        now: i64,
    ) -> Result<pb::RegisterDossierRequest, JsonError> {
        let track = track(self.track).ok_or_else(|| bad("track", "is 1, 2 or 3"))?;
        Ok(pb::RegisterDossierRequest {
            district: self.district.clone(),
            requested_track: track as i32,
            form: Some(self.form(now)?),
            idempotency_key: idempotency_key.to_owned(),
        })
    }

    /// The form; persons are checked before additional fields, so the first
    /// error reported is the first in the file.
    fn form(&self, now: i64) -> Result<pb::RegistrationForm, JsonError> {
        let persons = self
            .persons
            .iter()
            .enumerate()
            .map(|(i, p)| p.to_input(now, &format!("persons[{i}]")))
            .collect::<Result<Vec<_>, JsonError>>()?;
        let additional_fields = self
            .additional_fields
            .iter()
            .enumerate()
            .map(|(i, f)| f.to_input(&format!("additional_fields[{i}].value")))
            .collect::<Result<Vec<_>, JsonError>>()?;
        Ok(pb::RegistrationForm {
            violence_types: self.violence_types.clone(),
            violence_forms: self.violence_forms.clone(),
            situation_description: self.situation_description.clone(),
            risk_factors: self.risk_factors.iter().map(FactorFile::to_proto).collect(),
            protective_factors: self
                .protective_factors
                .iter()
                .map(FactorFile::to_proto)
                .collect(),
            involved_organisations: self
                .involved_organisations
                .iter()
                .map(InvolvedFile::to_proto)
                .collect(),
            source_reference: self.source_reference.clone(),
            persons,
            relations: self.relations.iter().map(RelationFile::to_proto).collect(),
            additional_fields,
        })
    }
}

impl FactorFile {
    /// Risk and protective factors share one proto shape.
    fn to_proto(&self) -> pb::ObservedFactor {
        pb::ObservedFactor {
            code: self.code.clone(),
            note: self.note.clone(),
        }
    }
}

impl InvolvedFile {
    /// Field for field: the broker, not the file, decides what is required.
    fn to_proto(&self) -> pb::InvolvedOrganisation {
        pb::InvolvedOrganisation {
            organisation_id: self.organisation_id.clone(),
            name: self.name.clone(),
            sector: self.sector.clone(),
        }
    }
}

impl RelationFile {
    /// The `ref`s stay as they are: the broker resolves them against the
    /// form's persons.
    fn to_proto(&self) -> pb::PersonRelation {
        pb::PersonRelation {
            from_person: self.from.clone(),
            to_person: self.to.clone(),
            kind: self.kind.clone(),
        }
    }
}

impl FieldFile {
    /// The field as the form's input; `at` names the value's place.
    fn to_input(&self, at: &str) -> Result<pb::FieldInput, JsonError> {
        Ok(pb::FieldInput {
            path: self.path.clone(),
            client_ref: self.person.clone(),
            value: Some(value_from_json(&self.value, at)?),
        })
    }
}
