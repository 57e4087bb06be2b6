//! Writing a dossier's content inside a unit of work: persons of the client
//! system with their lookup hashes, and sealed contributions; and the bounds
//! that keep every dossier readable.

use schakel_kit::time::to_timestamp;
use schakel_proto::v1 as pb;

use crate::{
    lookup::LookupKey,
    pipeline::{Call, Outcome, Refusal, Scope, unit::Unit},
    seal, store,
};

/// The most persons one dossier holds (a family, its wider circle and
/// room to spare; the audit log names at most 1,000 persons per entry).
pub(crate) const MAX_PERSONS: usize = 50;

/// The most contributions one dossier holds (corrections included).
pub(crate) const MAX_CONTRIBUTIONS: usize = 5_000;

/// The catalogue field recorded through UpdateInforming, never contributed.
pub(crate) const INFORMING_FIELD: &str = "persons.informing";

/// Refuses a change that would take a dossier past its bounds.
pub(crate) fn within_bounds(
    scope: impl FnOnce() -> Scope,
    persons: usize,
    contributions: usize,
) -> Outcome<()> {
    if persons > MAX_PERSONS {
        let message = format!("a dossier holds at most {MAX_PERSONS} persons");
        return Err(Refusal::limit(scope(), message).into());
    }
    if contributions > MAX_CONTRIBUTIONS {
        let message = format!("a dossier holds at most {MAX_CONTRIBUTIONS} contributions");
        return Err(Refusal::limit(scope(), message).into());
    }
    Ok(())
}

/// A new contribution of the caller's organisation (its value set apart).
pub(crate) fn contribution_by(
    call: &Call,
    path: &str,
    person_id: &str,
    purpose: &str,
) -> pb::Contribution {
    let caller = &call.caller;
    pb::Contribution {
        contribution_id: uuid::Uuid::new_v4().to_string(),
        path: path.into(),
        person_id: person_id.into(),
        source_organisation_id: caller.organisation_id.clone(),
        source_partner_type: caller.partner_type.clone(),
        author: caller.subject.clone(),
        contributed_at: Some(to_timestamp(call.now)),
        purpose: purpose.into(),
        ..Default::default()
    }
}

/// A person to store: pseudonymous id, role codes and the input (for the
/// lookup hashes).
pub(crate) struct NewPerson<'a> {
    pub(crate) person_id: &'a str,
    pub(crate) roles: &'a [String],
    pub(crate) input: &'a pb::ClientPersonInput,
}

impl Unit<'_> {
    /// Stores a person of the client system with their lookup hashes.
    pub(crate) async fn store_person(
        &mut self,
        lookup: &LookupKey,
        dossier_id: &str,
        p: NewPerson<'_>,
        now: i64,
    ) -> Outcome<()> {
        store::insert_person(self.conn(), dossier_id, p.person_id, p.roles, now).await?;
        for token in lookup.tokens(p.input) {
            store::insert_lookup(self.conn(), &token, p.person_id).await?;
        }
        Ok(())
    }

    /// Seals and stores one contribution as the next of the dossier.
    pub(crate) async fn store_contribution(
        &mut self,
        dossier_id: &str,
        meta: &pb::Contribution,
        value: Option<&pb::FieldValue>,
    ) -> Outcome<()> {
        let key = self
            .key()
            .ok_or_else(|| anyhow::anyhow!("content needs the key"))?;
        let sealed = value
            .map(|v| seal::seal_value(key, dossier_id, meta, v))
            .transpose()?;
        let seq = self.next_seq().await?;
        let row = store::ContributionRow {
            meta: meta.clone(),
            sealed,
        };
        store::insert_contribution(self.conn(), dossier_id, seq, &row).await?;
        Ok(())
    }

    /// Seals and stores form values (path, person id, value) under `purpose`;
    /// returns the paths written.
    pub(crate) async fn store_values(
        &mut self,
        call: &Call,
        dossier_id: &str,
        purpose: &str,
        values: &[(String, String, pb::FieldValue)],
    ) -> Outcome<Vec<String>> {
        let mut paths: Vec<String> = Vec::new();
        for (path, person_id, value) in values {
            let meta = contribution_by(call, path, person_id, purpose);
            self.store_contribution(dossier_id, &meta, Some(value))
                .await?;
            if !paths.contains(path) {
                paths.push(path.clone());
            }
        }
        Ok(paths)
    }
}
