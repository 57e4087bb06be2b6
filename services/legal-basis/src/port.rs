//! The legal-basis service as the broker's [`Basis`] port in the same
//! process (`schakel dev`, `serve all`, tests).

use futures::future::BoxFuture;
use schakel_kit::ports::Basis;
use schakel_proto::v1 as pb;
use tonic::Status;

use crate::LegalBasis;

impl Basis for LegalBasis {
    fn check(
        &self,
        request: pb::CheckBasisRequest,
    ) -> BoxFuture<'_, Result<pb::CheckBasisResponse, Status>> {
        Box::pin(async move { Ok(self.check_basis(&request).await?) })
    }

    fn record_informing(
        &self,
        request: pb::RecordInformingRequest,
    ) -> BoxFuture<'_, Result<pb::InformingRecord, Status>> {
        Box::pin(async move { Ok(LegalBasis::record_informing(self, &request).await?) })
    }

    fn informing_records(
        &self,
        dossier_id: String,
        include_history: bool,
    ) -> BoxFuture<'_, Result<Vec<pb::InformingRecord>, Status>> {
        Box::pin(async move {
            Ok(LegalBasis::informing_records(self, &dossier_id, include_history).await?)
        })
    }
}
