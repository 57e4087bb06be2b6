//! The `AuditService` RPCs and who may call them.

use schakel_kit::{auth::Caller, error};
use schakel_proto::v1::{self as pb, audit_service_server::AuditService};
use tonic::{Request, Response, Status};

use crate::{
    AppendError, Audit,
    log::{ReadError, TILE_WIDTH},
    query,
    reading::{self, BodyScope, Review},
};

type Reply<T> = Result<Response<T>, Status>;

impl From<ReadError> for Status {
    fn from(err: ReadError) -> Self {
        match err {
            ReadError::OutOfRange(message) => Status::out_of_range(message),
            ReadError::Internal(err) => error::internal(&err),
        }
    }
}

fn internal(err: anyhow::Error) -> Status {
    error::internal(&err)
}

/// The services that append to the log.
const APPENDERS: [&str; 5] = ["identity", "legal-basis", "policy", "broker", "audit"];

#[tonic::async_trait]
impl AuditService for Audit {
    async fn get_log_info(
        &self,
        request: Request<pb::GetLogInfoRequest>,
    ) -> Reply<pb::GetLogInfoResponse> {
        let caller = Caller::of(&request)?;
        let (scope, organisation) =
            BodyScope::describe(caller, &self.config.all_seeing_partner_type);
        let log = self.log();
        Ok(Response::new(pb::GetLogInfoResponse {
            origin: log.origin().into(),
            verifier_key: log.verifier_key().into(),
            public_key: log.public_key().to_vec(),
            hash_algorithm: "SHA-256".into(),
            first_entry_with_body: log.first_with_body().await.map_err(internal)?,
            body_scope: scope as i32,
            scope_organisation_id: organisation,
            retention_frontier: log.retention_frontier().await.map_err(internal)?,
        }))
    }

    async fn get_checkpoint(
        &self,
        request: Request<pb::GetCheckpointRequest>,
    ) -> Reply<pb::GetCheckpointResponse> {
        Caller::of(&request)?;
        let checkpoint = self.log().checkpoint().await.map_err(internal)?;
        Ok(Response::new(pb::GetCheckpointResponse {
            checkpoint: Some(checkpoint),
        }))
    }

    async fn get_entries(
        &self,
        request: Request<pb::GetEntriesRequest>,
    ) -> Reply<pb::GetEntriesResponse> {
        let caller = Caller::of(&request)?.clone();
        let review = Review::begin(self.log(), &caller, &self.config.all_seeing_partner_type)?;
        Ok(Response::new(
            reading::entries(review, request.into_inner()).await?,
        ))
    }

    async fn get_tile(&self, request: Request<pb::GetTileRequest>) -> Reply<pb::GetTileResponse> {
        Caller::of(&request)?;
        let req = request.into_inner();
        let width = match req.width {
            0 => TILE_WIDTH,
            w if u64::from(w) <= TILE_WIDTH => u64::from(w),
            _ => {
                return Err(error::invalid_argument(
                    "width",
                    format!("at most {TILE_WIDTH} hashes per tile"),
                ));
            }
        };
        let hashes = self.log().tile(req.level, req.index, width).await?;
        Ok(Response::new(pb::GetTileResponse { hashes }))
    }

    async fn get_postings(
        &self,
        request: Request<pb::GetPostingsRequest>,
    ) -> Reply<pb::GetPostingsResponse> {
        let caller = Caller::of(&request)?.clone();
        let review = Review::begin(self.log(), &caller, &self.config.all_seeing_partner_type)?;
        Ok(Response::new(
            reading::postings(review, request.into_inner()).await?,
        ))
    }

    async fn list_checkpoints(
        &self,
        request: Request<pb::ListCheckpointsRequest>,
    ) -> Reply<pb::ListCheckpointsResponse> {
        Caller::of(&request)?;
        let req = request.into_inner();
        let limit = match req.limit {
            0 => 1000,
            l if l <= 1000 => i64::from(l),
            _ => return Err(error::invalid_argument("limit", "must be at most 1000")),
        };
        let checkpoints = self
            .log()
            .checkpoints_after(req.after_tree_size, limit)
            .await
            .map_err(internal)?;
        Ok(Response::new(pb::ListCheckpointsResponse { checkpoints }))
    }

    async fn get_inclusion_proof(
        &self,
        request: Request<pb::GetInclusionProofRequest>,
    ) -> Reply<pb::GetInclusionProofResponse> {
        Caller::of(&request)?;
        let req = request.into_inner();
        let (proof, leaf) = self.log().inclusion_proof(req.index, req.tree_size).await?;
        Ok(Response::new(pb::GetInclusionProofResponse {
            index: req.index,
            tree_size: req.tree_size,
            hashes: proof.iter().map(|h| h.to_vec()).collect(),
            leaf_hash: leaf.to_vec(),
        }))
    }

    async fn get_consistency_proof(
        &self,
        request: Request<pb::GetConsistencyProofRequest>,
    ) -> Reply<pb::GetConsistencyProofResponse> {
        Caller::of(&request)?;
        let req = request.into_inner();
        let proof = self
            .log()
            .consistency_proof(req.old_tree_size, req.new_tree_size)
            .await?;
        Ok(Response::new(pb::GetConsistencyProofResponse {
            old_tree_size: req.old_tree_size,
            new_tree_size: req.new_tree_size,
            hashes: proof.iter().map(|h| h.to_vec()).collect(),
        }))
    }

    async fn query(&self, request: Request<pb::QueryRequest>) -> Reply<pb::QueryResponse> {
        let caller = Caller::of(&request)?.clone();
        let review = Review::begin(self.log(), &caller, &self.config.all_seeing_partner_type)?;
        Ok(Response::new(
            query::query(review, request.into_inner()).await?,
        ))
    }

    async fn subject_report(
        &self,
        request: Request<pb::SubjectReportRequest>,
    ) -> Reply<pb::SubjectReportResponse> {
        let caller = Caller::of(&request)?.clone();
        let review = Review::begin(self.log(), &caller, &self.config.all_seeing_partner_type)?;
        let names = self.directory()?;
        Ok(Response::new(
            crate::report::subject_report(review, names.as_ref(), request.into_inner()).await?,
        ))
    }

    async fn append(&self, request: Request<pb::AppendRequest>) -> Reply<pb::AppendResponse> {
        // Every service records its decisions and changes; nobody else writes.
        Caller::of(&request)?.require_service(&APPENDERS)?;
        let req = request.into_inner();
        let entry = req
            .entry
            .ok_or_else(|| error::invalid_argument("entry", "is required"))?;
        Ok(Response::new(
            self.log().append(entry, req.append_id).await?,
        ))
    }
}

impl From<AppendError> for Status {
    fn from(err: AppendError) -> Self {
        match err {
            AppendError::Invalid(invalid) => {
                error::invalid_argument(&invalid.field, invalid.message)
            }
            AppendError::Unavailable(why) => {
                tracing::error!(%why, "append not committed");
                schakel_kit::audit::AuditError::Unavailable(why).into()
            }
        }
    }
}
