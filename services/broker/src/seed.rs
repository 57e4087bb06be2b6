//! The fictional family of DOMAIN.md's seed 000 as a dossier, and how to put
//! it through a running broker over gRPC as its professionals would: the OCJ
//! registers it, adds the partners to the circle, moves it to dossier building,
//! and each partner contributes what it knows. `schakel dev` seeds it; the
//! broker's tests read it back partner by partner.

use std::collections::HashMap;

use anyhow::Context;
use schakel_proto::v1 as pb;
use serde::Deserialize;

use crate::{
    Client,
    json::{RegistrationFile, enum_value, value_from_json},
};

/// A seed dossier: a registration and what follows it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedDossier {
    /// What the family is; never sent anywhere.
    pub about: String,
    /// Makes registering it again return the first dossier.
    pub idempotency_key: String,
    /// Partner type of the registering organisation.
    pub registrant: String,
    /// The aanmelding.
    pub registration: RegistrationFile,
    /// Partner types the registrant adds to the circle.
    pub circle: Vec<String>,
    /// The phase to move to before contributing (`case_building`).
    pub phase: String,
    /// What each partner brings to the table.
    pub contributions: Vec<SeedContribution>,
}

/// One partner's contribution to one field.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SeedContribution {
    /// Partner type of the contributing organisation.
    pub by: String,
    /// Catalogue path.
    pub path: String,
    /// Tagged JSON value (see [`crate::json`]).
    pub value: serde_json::Value,
}

/// A professional (team member) of one partner: their client and organisation.
pub struct Member {
    /// Broker client with the member's token.
    pub client: Client,
    /// Their organisation's id.
    pub organisation_id: String,
}

/// What seeding produced.
#[derive(Debug)]
pub struct Seeded {
    /// The dossier's opaque id.
    pub dossier_id: String,
    /// Pseudonymous person id per `ref` of the file.
    pub persons: HashMap<String, String>,
    /// False when the dossier already existed and nothing was done.
    pub created: bool,
}

fn member<'a>(members: &'a HashMap<String, Member>, ptype: &str) -> anyhow::Result<&'a Member> {
    members
        .get(ptype)
        .with_context(|| format!("no member of partner type {ptype} to seed with"))
}

/// The family of seed 000 (see `services/broker/seed/family-000.json`).
pub fn family_000() -> SeedDossier {
    serde_json::from_str(include_str!("../seed/family-000.json"))
        .expect("the embedded seed family is valid (tested)")
}

impl SeedDossier {
    /// Registers the dossier as the registrant's member, then (only if it is
    /// new) builds the circle, advances the phase and contributes. `now`
    /// (unix seconds) dates the informing records.
    pub async fn apply(
        &self,
        members: &HashMap<String, Member>,
        now: i64,
    ) -> anyhow::Result<Seeded> {
        let registrant = member(members, &self.registrant)?;
        let seeded = self.register(&registrant.client, now).await?;
        if seeded.created {
            self.build_up(&seeded.dossier_id, members).await?;
        }
        Ok(seeded)
    }

    /// Registers the dossier (idempotent): `created` is false when it had
    /// already gone beyond its registration.
    pub async fn register(&self, registrant: &Client, now: i64) -> anyhow::Result<Seeded> {
        let request = self.registration.to_request(&self.idempotency_key, now)?;
        let registered = registrant
            .clone()
            .register_dossier(request)
            .await
            .context("registering the seed dossier")?
            .into_inner();
        let dossier = registered.dossier.context("registration without dossier")?;
        Ok(Seeded {
            created: dossier.phase == pb::Phase::Registration as i32
                && dossier.participants.len() <= 1,
            dossier_id: dossier.dossier_id,
            persons: registered
                .persons
                .into_iter()
                .map(|p| (p.client_ref, p.person_id))
                .collect(),
        })
    }

    /// What follows a new registration: the registrant builds the circle and
    /// advances the phase, each partner contributes.
    pub async fn build_up(
        &self,
        dossier_id: &str,
        members: &HashMap<String, Member>,
    ) -> anyhow::Result<()> {
        let registrant = &member(members, &self.registrant)?.client;
        self.build_circle(registrant, dossier_id, members).await?;
        self.advance(registrant, dossier_id).await?;
        self.contribute(dossier_id, members).await
    }

    /// The partners must be in the circle before the phase moves on, or they
    /// could not contribute in it.
    async fn build_circle(
        &self,
        registrant: &Client,
        dossier_id: &str,
        members: &HashMap<String, Member>,
    ) -> anyhow::Result<()> {
        for ptype in &self.circle {
            registrant
                .clone()
                .add_participant(pb::AddParticipantRequest {
                    dossier_id: dossier_id.to_owned(),
                    organisation_id: member(members, ptype)?.organisation_id.clone(),
                })
                .await
                .with_context(|| format!("adding {ptype} to the circle"))?;
        }
        Ok(())
    }

    /// From registration only: seeding builds a new dossier, never moves an
    /// existing one on.
    async fn advance(&self, registrant: &Client, dossier_id: &str) -> anyhow::Result<()> {
        let target = enum_value("PHASE", &self.phase, pb::Phase::from_str_name, "phase")?;
        registrant
            .clone()
            .advance_phase(pb::AdvancePhaseRequest {
                dossier_id: dossier_id.to_owned(),
                expected_phase: pb::Phase::Registration as i32,
                target_phase: target as i32,
                track: pb::Track::Unspecified as i32,
                reason: "Aanmelding volledig; dossiervorming start.".into(),
                ..Default::default()
            })
            .await
            .context("advancing the seed dossier")?;
        Ok(())
    }

    /// Each contribution by its own partner's member, one call each, with an
    /// idempotency key per contribution so that a rerun adds nothing twice.
    async fn contribute(
        &self,
        dossier_id: &str,
        members: &HashMap<String, Member>,
    ) -> anyhow::Result<()> {
        for (i, c) in self.contributions.iter().enumerate() {
            member(members, &c.by)?
                .client
                .clone()
                .contribute(pb::ContributeRequest {
                    dossier_id: dossier_id.to_owned(),
                    purpose: "case_building".into(),
                    contributions: vec![pb::ContributionInput {
                        path: c.path.clone(),
                        person_id: String::new(),
                        value: Some(value_from_json(
                            &c.value,
                            &format!("contributions[{i}].value"),
                        )?),
                        supersedes_contribution_id: String::new(),
                    }],
                    idempotency_key: format!("{}/{i}", self.idempotency_key),
                })
                .await
                .with_context(|| format!("{} contributing {}", c.by, c.path))?;
        }
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_seed_family_is_seed_000() {
        let seed = family_000();
        let persons = &seed.registration.persons;
        let roles: Vec<&str> = persons.iter().map(|p| p.roles[0].as_str()).collect();
        assert_eq!(roles, ["pleger", "slachtoffer", "kind", "kind", "kind"]);
        assert_eq!(seed.registrant, "ocj");
        let request = seed.registration.to_request("k", 0).unwrap();
        let form = request.form.unwrap();
        assert!(form.violence_forms.contains(&"kinderen_getuige".to_owned()));
        for p in &form.persons {
            if !p.national_number.is_empty() {
                crate::national_number::parse(&p.national_number).unwrap();
            }
        }
        for (i, c) in seed.contributions.iter().enumerate() {
            value_from_json(&c.value, &i.to_string()).unwrap();
            assert!(seed.circle.contains(&c.by), "{} is not in the circle", c.by);
        }
    }
}
