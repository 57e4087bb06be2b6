//! Information requests (vraag tot infodeling) between organisations of a
//! dossier's circle: asked, read, listed, answered, declined and cancelled,
//! every one through the circle, basis and informing gates of its dossier.

pub(crate) mod answer;
pub(crate) mod ask;
pub(crate) mod close;
pub(crate) mod view;

use schakel_kit::validate;
use schakel_proto::v1 as pb;

use crate::{
    Broker,
    pipeline::{Call, Covered, Outcome, Refusal, Scope},
    seal, store,
};

/// A request of the caller's organisation (sent or received), opened, on a
/// dossier that passed the gates.
pub(crate) struct Opened<'c> {
    pub(crate) row: store::RequestRow,
    pub(crate) request: pb::InformationRequest,
    pub(crate) covered: Covered<'c>,
}

impl Opened<'_> {
    /// The scope of a decision about this request.
    pub(crate) fn scope(&self) -> Scope {
        let mut scope = self.covered.scope();
        scope.resource_id = self.row.request_id.clone();
        scope.person_ids = self.request.person_ids.clone();
        scope
    }
}

impl Broker {
    /// Request `id` for its sender or addressee, through its dossier's gates.
    pub(crate) async fn opened<'c>(&self, call: &'c Call, id: &str) -> Outcome<Opened<'c>> {
        let id = validate::id("information_request_id", id)?;
        let mut conn = self.inner.db.pool().acquire().await?;
        let row = store::request(&mut conn, &id).await?;
        drop(conn);
        let org = &call.caller.organisation_id;
        let Some(row) = row.filter(|r| r.from_org == *org || r.to_org == *org) else {
            // Unknown and someone else's look the same.
            let mut scope = call.scope("");
            scope.resource_id = id;
            return Err(Refusal::not_found(
                scope,
                "no such information request for your organisation",
            )
            .into());
        };
        let covered = self
            .member(call, &row.dossier_id)
            .await?
            .covered(self, None)
            .await?;
        let request = seal::open_request(covered.key(), &row, call.now)?;
        Ok(Opened {
            row,
            request,
            covered,
        })
    }
}
