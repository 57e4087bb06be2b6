//! EraseDossier: crypto-shredding by a privacy officer of an organisation in
//! the dossier's circle (and by the retention job, through the same unit).

use schakel_kit::{
    time::to_timestamp,
    validate::{self, Invalid},
};
use schakel_proto::v1 as pb;

use super::reference;
use crate::{
    Broker,
    pipeline::{Call, Outcome, Refusal, Scope},
    store,
};

impl Broker {
    /// Erases `dossier_id` in one unit with its entry (`scope` says why).
    pub(crate) async fn shred(&self, call: &Call, dossier_id: &str, scope: Scope) -> Outcome<u64> {
        // Destroying the key cannot be undone: not unless the log can take
        // its entry now (asked before any lock is taken).
        self.inner
            .outbox
            .probe()
            .await
            .map_err(tonic::Status::from)?;
        let mut unit = self.begin(call, dossier_id, None).await?;
        if !store::erase(unit.conn(), dossier_id, call.now).await? {
            return Err(Refusal::erased(scope).into());
        }
        let index = unit.commit(self, scope).await?;
        tracing::info!(dossier = %dossier_id, "dossier erased");
        Ok(index)
    }
}

/// EraseDossier.
pub(crate) async fn erase(
    broker: &Broker,
    call: &Call,
    req: pb::EraseDossierRequest,
) -> Outcome<pb::EraseDossierResponse> {
    let dossier_id = validate::id("dossier_id", &req.dossier_id)?;
    let reason = match pb::ErasureReason::try_from(req.reason) {
        Ok(r) if r != pb::ErasureReason::Unspecified => r,
        _ => return Err(Invalid::new("reason", "is required").into()),
    };
    let reference = reference("reference", &req.reference)?;
    let mut scope = call.scope(&dossier_id);
    let visible = broker
        .in_circle_of(&call.caller.organisation_id, &dossier_id)
        .await?;
    if !visible {
        return Err(Refusal::not_found(scope, "no such dossier for your organisation").into());
    }
    scope.attributes = vec![
        ("reason", reason.as_str_name().to_owned()),
        ("reference", reference),
    ];
    let audit_index = broker.shred(call, &dossier_id, scope).await?;
    Ok(pb::EraseDossierResponse {
        dossier_id,
        erased_at: Some(to_timestamp(call.now)),
        audit_index,
    })
}
