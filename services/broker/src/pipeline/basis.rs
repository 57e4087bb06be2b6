//! The purpose and legal-basis gate: the declared purpose must fit the
//! dossier's phase, and an agreement must cover the caller's organisation
//! for it now, with the client system informed where the RPC's row and the
//! phase require it. A [`Covered`] is the only way to a dossier's data key
//! and its sealed content.

use std::sync::Arc;

use schakel_kit::crypto::SecretKey;
use schakel_proto::v1::{self as pb, field_value::Kind};

use super::{Call, Failure, Loaded, Member, Outcome, Refusal, Scope};
use crate::{Broker, phase, rpc::Informing, seal, store};

/// A member whose organisation has a legal basis for this call's purpose.
pub(crate) struct Covered<'c> {
    member: Member<'c>,
    purpose: String,
    basis: pb::LegalBasisRef,
    key: SecretKey,
    contributions: Arc<Vec<store::ContributionRow>>,
}

/// What CheckBasis is asked about a dossier.
pub(crate) struct Question<'a> {
    pub(crate) organisation_id: &'a str,
    pub(crate) purpose: &'a str,
    pub(crate) dossier: &'a Loaded,
    pub(crate) violence_forms: Vec<String>,
    pub(crate) informing: pb::InformingRequirement,
}

impl<'c> Covered<'c> {
    /// The call.
    pub(crate) fn call(&self) -> &'c Call {
        self.member.call()
    }

    /// The dossier's metadata.
    pub(crate) fn dossier(&self) -> &Loaded {
        self.member.dossier()
    }

    /// The member this was.
    pub(crate) fn member(&self) -> &Member<'c> {
        &self.member
    }

    /// The purpose checked.
    pub(crate) fn purpose(&self) -> &str {
        &self.purpose
    }

    /// The covering agreement version.
    pub(crate) fn basis(&self) -> &pb::LegalBasisRef {
        &self.basis
    }

    /// The dossier's data key.
    pub(crate) fn key(&self) -> &SecretKey {
        &self.key
    }

    /// The dossier's stored contributions (sealed).
    pub(crate) fn contributions(&self) -> &[store::ContributionRow] {
        &self.contributions
    }

    /// The scope of a decision under this basis.
    pub(crate) fn scope(&self) -> Scope {
        let mut scope = self.member.scope();
        scope.purpose = self.purpose.clone();
        scope.basis = Some(self.basis.clone());
        scope
    }
}

impl<'c> Member<'c> {
    /// The purpose and legal-basis gate; `declared` is the caller's purpose
    /// (`None`: the phase's own).
    pub(crate) async fn covered(
        self,
        broker: &Broker,
        declared: Option<&str>,
    ) -> Outcome<Covered<'c>> {
        let phase = self.dossier().phase();
        let allowed = phase::purposes(phase);
        let purpose = match declared {
            Some(p) if allowed.contains(&p) => p.to_owned(),
            Some(p) => {
                let mut scope = self.scope();
                scope.purpose = p.to_owned();
                return Err(Refusal::purpose(scope, allowed).into());
            }
            None => allowed.first().copied().unwrap_or_default().to_owned(),
        };
        let key = broker.data_key(self.dossier())?;
        let contributions = broker.contributions(self.dossier()).await?;
        let required = self.call().rpc.row().informing == Informing::ByPhase
            && phase::informing_required(phase);
        let question = Question {
            organisation_id: &self.call().caller.organisation_id,
            purpose: &purpose,
            dossier: self.dossier(),
            violence_forms: violence_forms(&key, self.dossier(), &contributions)?,
            informing: if required {
                pb::InformingRequirement::Required
            } else {
                pb::InformingRequirement::NotRequired
            },
        };
        let answer = broker.ask_basis(&question, false).await?;
        let mut scope = self.scope();
        scope.purpose = purpose.clone();
        let basis = allowed_basis(answer, scope)?;
        Ok(Covered {
            member: self,
            purpose,
            basis,
            key,
            contributions,
        })
    }
}

/// The covering agreement of an answer, or a NO_LEGAL_BASIS refusal.
pub(crate) fn allowed_basis(
    answer: pb::CheckBasisResponse,
    mut scope: Scope,
) -> Outcome<pb::LegalBasisRef> {
    if answer.allowed {
        return answer
            .agreement
            .ok_or_else(|| anyhow::anyhow!("an allowed basis names its agreement").into());
    }
    let reason = denial_name(&answer);
    scope.basis_denial = reason.into();
    scope.basis = answer.agreement;
    Err(Refusal::no_basis(scope, reason).into())
}

/// The BasisDenialReason name of a refused answer.
pub(crate) fn denial_name(answer: &pb::CheckBasisResponse) -> &'static str {
    pb::BasisDenialReason::try_from(answer.denial_reason)
        .unwrap_or(pb::BasisDenialReason::Unspecified)
        .as_str_name()
}

/// The forms of violence of a dossier, from its current
/// registration.violence_forms contributions.
pub(crate) fn violence_forms(
    key: &SecretKey,
    dossier: &Loaded,
    contributions: &[store::ContributionRow],
) -> Outcome<Vec<String>> {
    let mut forms = Vec::new();
    for c in contributions.iter().filter(|c| {
        c.meta.path == "registration.violence_forms"
            && c.meta.superseded_by_contribution_id.is_empty()
    }) {
        if let Some(value) = seal::open_value(key, &dossier.row.dossier_id, c)?
            && let Some(Kind::List(list)) = value.kind
        {
            for item in list.items {
                if let Some(Kind::Code(code)) = item.kind
                    && !forms.contains(&code)
                {
                    forms.push(code);
                }
            }
        }
    }
    Ok(forms)
}

impl Broker {
    /// The circle gate, then the purpose and basis gate, for `dossier_id`.
    pub(crate) async fn covered<'c>(
        &self,
        call: &'c Call,
        dossier_id: &str,
        declared: Option<&str>,
    ) -> Outcome<Covered<'c>> {
        let member = self.member(call, dossier_id).await?;
        member.covered(self, declared).await
    }

    /// As [`Broker::covered`], for a list: `None` (the dossier left out) when
    /// the caller may not see it now; only errors that decide nothing pass.
    pub(crate) async fn covered_or_none<'c>(
        &self,
        call: &'c Call,
        dossier_id: &str,
    ) -> Outcome<Option<Covered<'c>>> {
        match self.covered(call, dossier_id, None).await {
            Ok(covered) => Ok(Some(covered)),
            Err(Failure::Refused(_)) => Ok(None),
            Err(other) => Err(other),
        }
    }

    /// CheckBasis for `question` (counting a new dossier when asked).
    pub(crate) async fn ask_basis(
        &self,
        q: &Question<'_>,
        count_dossier: bool,
    ) -> Outcome<pb::CheckBasisResponse> {
        let d = &q.dossier.row;
        let request = pb::CheckBasisRequest {
            organisation_id: q.organisation_id.to_owned(),
            purpose: q.purpose.to_owned(),
            dossier: Some(pb::BasisDossierContext {
                dossier_id: d.dossier_id.clone(),
                district: d.district.clone(),
                track: if d.track != 0 {
                    d.track
                } else {
                    d.requested_track
                },
                violence_forms: q.violence_forms.clone(),
                victim_person_ids: q.dossier.with_role("slachtoffer"),
                perpetrator_person_ids: q.dossier.with_role("pleger"),
            }),
            at: None,
            count_dossier,
            informing: q.informing as i32,
        };
        Ok(self.inner.basis.check(request).await?)
    }

    /// The data key of a dossier not erased.
    fn data_key(&self, dossier: &Loaded) -> Outcome<SecretKey> {
        let wrapped = dossier
            .row
            .key
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("erased"))?;
        Ok(self.inner.keys.unwrap(wrapped, &dossier.row.dossier_id)?)
    }

    /// A dossier's stored contributions (cached while its revision holds).
    async fn contributions(&self, dossier: &Loaded) -> Outcome<Arc<Vec<store::ContributionRow>>> {
        let (id, revision) = (&dossier.row.dossier_id, dossier.row.revision);
        if let Some(stored) = self
            .inner
            .cache
            .part(id, revision, |c| c.contributions.clone())
        {
            return Ok(stored);
        }
        let mut conn = self.inner.db.pool().acquire().await?;
        let stored = Arc::new(store::contributions(&mut conn, id).await?);
        self.inner
            .cache
            .remember(id, revision, |c| c.contributions = Some(stored.clone()));
        Ok(stored)
    }
}
