//! The retention job: erases (crypto-shreds) every dossier closed or not
//! retained longer than the retention period ago, each in its own unit of
//! work with its audit entry.

use schakel_proto::v1 as pb;

use crate::{
    Broker,
    pipeline::{Call, Failure},
    store,
};

impl Broker {
    /// Erases the expired dossiers now; returns how many were erased (a
    /// dossier whose entry cannot be appended stays, for the next run).
    pub async fn erase_expired(&self, retention: std::time::Duration) -> anyhow::Result<usize> {
        let now = self.inner.clock.now();
        let cutoff = now - i64::try_from(retention.as_secs())?;
        let call = Call::retention(self.inner.policy.current(), now);
        let mut erased = 0;
        for dossier_id in store::closed_before(self.inner.db.pool(), cutoff).await? {
            let mut scope = call.scope(&dossier_id);
            scope.attributes = vec![(
                "reason",
                pb::ErasureReason::RetentionExpired.as_str_name().to_owned(),
            )];
            match self.shred(&call, &dossier_id, scope).await {
                Ok(_) => erased += 1,
                Err(Failure::Refused(_)) => {}
                Err(Failure::Error(status)) => {
                    anyhow::bail!("retention: {}: {}", status.code(), status.message())
                }
            }
        }
        Ok(erased)
    }
}
