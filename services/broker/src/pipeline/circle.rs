//! The circle gate: a dossier is reachable only for an organisation in its
//! need-to-know circle; unknown and someone else's dossiers look the same.
//! A [`Member`] is the only way to a dossier's metadata.

use schakel_kit::{auth::Role, time::to_timestamp};
use schakel_proto::v1 as pb;

use super::{CONTENT_ROLES, Call, Outcome, Refusal, Scope};
use crate::{Broker, store};

/// A dossier's row, circle and client system.
#[derive(Clone, Debug)]
pub(crate) struct Loaded {
    pub(crate) row: store::DossierRow,
    pub(crate) participants: Vec<pb::DossierParticipant>,
    pub(crate) persons: Vec<(String, Vec<String>)>,
}

impl Loaded {
    /// The metadata any circle member may see, with the chain process's
    /// dates and whether they came by `now`.
    pub(crate) fn to_proto(&self, now: i64) -> pb::Dossier {
        let d = &self.row;
        let stamp = |t: Option<i64>| t.map(to_timestamp);
        let came = |t: Option<i64>| t.is_some_and(|t| t <= now);
        let phase = self.phase();
        pb::Dossier {
            dossier_id: d.dossier_id.clone(),
            district: d.district.clone(),
            requested_track: d.requested_track,
            track: d.track,
            phase: d.phase,
            phase_since: Some(to_timestamp(d.phase_since)),
            registered_at: Some(to_timestamp(d.registered_at)),
            registering_organisation_id: d.registering_org.clone(),
            participants: self.participants.clone(),
            case_director: d
                .case_director
                .as_ref()
                .map(|(user, org, at, by)| pb::CaseDirector {
                    user_id: user.clone(),
                    organisation_id: org.clone(),
                    assigned_at: Some(to_timestamp(*at)),
                    assigned_by: by.clone(),
                }),
            registration_basis: Some(d.basis.clone()),
            person_ids: self.person_ids(),
            follow_up_check_at: stamp(d.follow_up_check_at),
            closed_at: stamp(d.closed_at),
            erase_after: None,
            updated_at: Some(to_timestamp(d.updated_at)),
            revision: d.revision as u64,
            track_since: stamp(d.track_since),
            review_due_at: stamp(d.review_due_at),
            review_overdue: phase == pb::Phase::CaseDirection && came(d.review_due_at),
            informing_review_at: stamp(d.informing_review_at),
            informing_review_overdue: !crate::phase::is_final(phase) && came(d.informing_review_at),
            follow_up_check_due: phase == pb::Phase::FollowUp && came(d.follow_up_check_at),
        }
    }

    /// Every person's pseudonymous id.
    pub(crate) fn person_ids(&self) -> Vec<String> {
        self.persons.iter().map(|(p, _)| p.clone()).collect()
    }

    /// The persons holding role code `role`.
    pub(crate) fn with_role(&self, role: &str) -> Vec<String> {
        self.persons
            .iter()
            .filter(|(_, roles)| roles.iter().any(|r| r == role))
            .map(|(p, _)| p.clone())
            .collect()
    }

    /// Whether `org` is in the circle.
    pub(crate) fn in_circle(&self, org: &str) -> bool {
        self.participants.iter().any(|p| p.organisation_id == org)
    }

    /// The phase (Unspecified for an unknown value).
    pub(crate) fn phase(&self) -> pb::Phase {
        pb::Phase::try_from(self.row.phase).unwrap_or(pb::Phase::Unspecified)
    }
}

/// A caller whose organisation is in the dossier's circle (and, for a team
/// action, who is on its case team). Only [`Broker::member`] makes one.
pub(crate) struct Member<'c> {
    call: &'c Call,
    dossier: Loaded,
}

impl<'c> Member<'c> {
    /// The call.
    pub(crate) fn call(&self) -> &'c Call {
        self.call
    }

    /// The dossier's metadata.
    pub(crate) fn dossier(&self) -> &Loaded {
        &self.dossier
    }

    /// The scope of a decision about this dossier.
    pub(crate) fn scope(&self) -> Scope {
        let mut scope = self.call.scope(&self.dossier.row.dossier_id);
        scope.phase = self.dossier.row.phase;
        scope
    }

    /// The caller's roles that count for content here (proto values): the
    /// casusregisseur role only for the dossier's assigned case director.
    pub(crate) fn roles(&self) -> Vec<i32> {
        roles_for(self.call, Some(&self.dossier.row))
    }

    /// A team member, or the dossier's casusregisseur.
    pub(crate) fn on_team(&self) -> bool {
        let team = [Role::TeamMember, Role::Casusregisseur].map(|r| r.to_proto() as i32);
        self.roles().iter().any(|r| team.contains(r))
    }
}

/// The caller's content roles (proto values), the casusregisseur role only
/// for `dossier`'s case director.
pub(crate) fn roles_for(call: &Call, dossier: Option<&store::DossierRow>) -> Vec<i32> {
    let caller = &call.caller;
    caller
        .roles
        .iter()
        .filter(|r| CONTENT_ROLES.contains(r))
        .filter(|r| {
            **r != Role::Casusregisseur
                || dossier
                    .and_then(|d| d.case_director.as_ref())
                    .is_some_and(|(user, _, _, _)| *user == caller.subject)
        })
        .map(|r| r.to_proto() as i32)
        .collect()
}

impl Broker {
    /// The circle gate for `dossier_id` (and the team gate for team RPCs).
    pub(crate) async fn member<'c>(&self, call: &'c Call, dossier_id: &str) -> Outcome<Member<'c>> {
        let scope = call.scope(dossier_id);
        let dossier = match self.load(dossier_id).await? {
            Some(d) if d.in_circle(&call.caller.organisation_id) => d,
            _ => return Err(Refusal::not_in_circle(scope).into()),
        };
        let member = Member { call, dossier };
        if member.dossier.row.key.is_none() {
            // Erased: the circle learns that much, and nothing else.
            return Err(Refusal::erased(member.scope()).into());
        }
        if call.rpc.row().team && !member.on_team() {
            let message = "a team member or the dossier's casusregisseur does this";
            return Err(Refusal::role(member.scope(), message).into());
        }
        Ok(member)
    }

    /// Whether `org` is in the circle of dossier `dossier_id` (erased or
    /// not): what oversight needs, without the dossier's metadata.
    pub(crate) async fn in_circle_of(&self, org: &str, dossier_id: &str) -> Outcome<bool> {
        Ok(self
            .load(dossier_id)
            .await?
            .is_some_and(|d| d.in_circle(org)))
    }

    /// A dossier's row, circle and persons (the latter two from the cache
    /// while its revision is unchanged). Only the gates read it.
    async fn load(&self, dossier_id: &str) -> Outcome<Option<Loaded>> {
        let mut conn = self.inner.db.pool().acquire().await?;
        let Some(row) = store::dossier(&mut conn, dossier_id).await? else {
            return Ok(None);
        };
        if let Some(c) = self.inner.cache.circle(dossier_id, row.revision) {
            return Ok(Some(Loaded {
                row,
                participants: c.participants,
                persons: c.persons,
            }));
        }
        let participants = store::participants(&mut conn, dossier_id).await?;
        let persons = store::persons(&mut conn, dossier_id).await?;
        self.inner.cache.remember(dossier_id, row.revision, |c| {
            c.participants = participants.clone();
            c.persons = persons.clone();
        });
        Ok(Some(Loaded {
            row,
            participants,
            persons,
        }))
    }
}
