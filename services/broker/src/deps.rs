//! What the broker asks other services, behind traits so that one process
//! (`schakel dev`) calls them directly and microservices mode over gRPC.

use std::sync::Arc;

use futures::future::BoxFuture;
use schakel_policy::{DecisionTable, Policies};
use schakel_proto::v1 as pb;
use tokio::sync::watch;
use tonic::Status;

/// The legal-basis service: `CheckBasis` and informing records.
pub trait Basis: Send + Sync + 'static {
    /// Whether an agreement covers the question (count a new dossier when asked).
    fn check(
        &self,
        request: pb::CheckBasisRequest,
    ) -> BoxFuture<'_, Result<pb::CheckBasisResponse, Status>>;
    /// Records informing one person, for the professional named in the request.
    fn record_informing(
        &self,
        request: pb::RecordInformingRequest,
    ) -> BoxFuture<'_, Result<pb::InformingRecord, Status>>;
    /// The informing records of a dossier (latest per person first).
    fn informing_records(
        &self,
        dossier_id: String,
        include_history: bool,
    ) -> BoxFuture<'_, Result<Vec<pb::InformingRecord>, Status>>;
}

/// The legal-basis service in the same process.
pub struct LocalBasis(pub schakel_legal_basis::LegalBasis);

impl Basis for LocalBasis {
    fn check(
        &self,
        request: pb::CheckBasisRequest,
    ) -> BoxFuture<'_, Result<pb::CheckBasisResponse, Status>> {
        Box::pin(async move { Ok(self.0.check_basis(&request).await?) })
    }

    fn record_informing(
        &self,
        request: pb::RecordInformingRequest,
    ) -> BoxFuture<'_, Result<pb::InformingRecord, Status>> {
        Box::pin(async move { Ok(self.0.record_informing(&request).await?) })
    }

    fn informing_records(
        &self,
        dossier_id: String,
        include_history: bool,
    ) -> BoxFuture<'_, Result<Vec<pb::InformingRecord>, Status>> {
        Box::pin(async move {
            Ok(self
                .0
                .informing_records(&dossier_id, include_history)
                .await?)
        })
    }
}

/// The active policy as the broker enforces it.
#[derive(Clone, Debug)]
pub struct PolicySnapshot {
    /// The policy version.
    pub version: u64,
    /// The compiled decision table.
    pub table: Arc<DecisionTable>,
    /// The field catalogue, in table order.
    pub fields: Arc<Vec<pb::FieldDefinition>>,
}

/// Where the broker gets the active policy from.
pub trait PolicySource: Send + Sync + 'static {
    /// The active policy now.
    fn current(&self) -> Arc<PolicySnapshot>;
}

/// A policy followed over gRPC (see [`remote_policy`]).
impl PolicySource for watch::Receiver<Arc<PolicySnapshot>> {
    fn current(&self) -> Arc<PolicySnapshot> {
        self.borrow().clone()
    }
}

/// The policy service of the same process: the very next read after an
/// activation uses the new version.
pub struct LocalPolicy {
    source: watch::Receiver<Arc<schakel_policy::Active>>,
    cache: std::sync::Mutex<Option<Arc<PolicySnapshot>>>,
}

/// Follows the policy service of the same process.
pub fn local_policy(policies: &Policies) -> LocalPolicy {
    LocalPolicy {
        source: policies.subscribe(),
        cache: std::sync::Mutex::new(None),
    }
}

impl PolicySource for LocalPolicy {
    fn current(&self) -> Arc<PolicySnapshot> {
        let active = self.source.borrow().clone();
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        match cache.as_ref() {
            Some(snapshot) if snapshot.version == active.version.version => snapshot.clone(),
            _ => {
                let snapshot = Arc::new(PolicySnapshot {
                    version: active.version.version,
                    table: Arc::new(active.compiled.table.clone()),
                    fields: Arc::new(active.compiled.policy.fields.clone()),
                });
                *cache = Some(snapshot.clone());
                snapshot
            }
        }
    }
}

/// The legal-basis service over gRPC (mTLS and the broker's service token).
#[derive(Clone)]
pub struct RemoteBasis {
    client: schakel_proto::v1::legal_basis_service_client::LegalBasisServiceClient<
        tonic::service::interceptor::InterceptedService<
            tonic::transport::Channel,
            schakel_kit::client::CallContext,
        >,
    >,
}

impl RemoteBasis {
    /// The legal-basis service behind `channel`.
    pub fn new(
        channel: tonic::transport::Channel,
        context: schakel_kit::client::CallContext,
    ) -> Self {
        Self {
            client: schakel_proto::v1::legal_basis_service_client::LegalBasisServiceClient::with_interceptor(
                channel, context,
            ),
        }
    }
}

impl Basis for RemoteBasis {
    fn check(
        &self,
        request: pb::CheckBasisRequest,
    ) -> BoxFuture<'_, Result<pb::CheckBasisResponse, Status>> {
        let mut client = self.client.clone();
        Box::pin(async move { Ok(client.check_basis(request).await?.into_inner()) })
    }

    fn record_informing(
        &self,
        request: pb::RecordInformingRequest,
    ) -> BoxFuture<'_, Result<pb::InformingRecord, Status>> {
        let mut client = self.client.clone();
        Box::pin(async move {
            client
                .record_informing(request)
                .await?
                .into_inner()
                .record
                .ok_or_else(|| Status::internal("legal-basis returned no record"))
        })
    }

    fn informing_records(
        &self,
        dossier_id: String,
        include_history: bool,
    ) -> BoxFuture<'_, Result<Vec<pb::InformingRecord>, Status>> {
        let mut client = self.client.clone();
        Box::pin(async move {
            Ok(client
                .list_informing_records(pb::ListInformingRecordsRequest {
                    dossier_id,
                    include_history,
                })
                .await?
                .into_inner()
                .records)
        })
    }
}

fn snapshot_of(message: &pb::WatchActivePolicyResponse) -> Option<Arc<PolicySnapshot>> {
    let table = DecisionTable::from_proto(message.decision_table.as_ref()?)?;
    let policy = message.policy.as_ref()?;
    Some(Arc::new(PolicySnapshot {
        version: policy.version,
        table: Arc::new(table),
        fields: Arc::new(policy.fields.clone()),
    }))
}

/// Follows the policy service over gRPC (`WatchActivePolicy`): waits for the
/// active version, then switches to every newly activated one as it is
/// streamed; reconnects with backoff when the stream breaks, keeping the
/// version it has meanwhile.
pub async fn remote_policy(
    channel: tonic::transport::Channel,
    context: schakel_kit::client::CallContext,
) -> watch::Receiver<Arc<PolicySnapshot>> {
    use schakel_proto::v1::policy_service_client::PolicyServiceClient;
    use std::time::Duration;

    let client = PolicyServiceClient::with_interceptor(channel, context)
        .max_decoding_message_size(64 * 1024 * 1024);
    let mut backoff = Duration::from_millis(200);
    // The first version: the broker does not serve without a policy.
    let (first, mut stream) = loop {
        let mut c = client.clone();
        match c
            .watch_active_policy(pb::WatchActivePolicyRequest { known_version: 0 })
            .await
        {
            Ok(response) => {
                let mut stream = response.into_inner();
                if let Ok(Some(message)) = stream.message().await
                    && let Some(snapshot) = snapshot_of(&message)
                {
                    break (snapshot, stream);
                }
            }
            Err(status) => tracing::warn!(code = ?status.code(), "no active policy yet; retrying"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(10));
    };
    let (sender, receiver) = watch::channel(first);
    tokio::spawn(async move {
        loop {
            match stream.message().await {
                Ok(Some(message)) => match snapshot_of(&message) {
                    Some(snapshot) => {
                        tracing::info!(version = snapshot.version, "policy version active");
                        if sender.send(snapshot).is_err() {
                            return;
                        }
                    }
                    None => tracing::error!(
                        "an incomplete decision table was streamed; keeping the current one"
                    ),
                },
                Ok(None) | Err(_) => {
                    // Reconnect, announcing the version we have.
                    let mut backoff = Duration::from_millis(200);
                    loop {
                        if sender.is_closed() {
                            return;
                        }
                        let known = sender.borrow().version;
                        let mut c = client.clone();
                        match c
                            .watch_active_policy(pb::WatchActivePolicyRequest {
                                known_version: known,
                            })
                            .await
                        {
                            Ok(response) => {
                                stream = response.into_inner();
                                break;
                            }
                            Err(status) => {
                                tracing::warn!(code = ?status.code(), "policy stream lost; reconnecting");
                                tokio::time::sleep(backoff).await;
                                backoff = (backoff * 2).min(Duration::from_secs(10));
                            }
                        }
                    }
                }
            }
        }
    });
    receiver
}
