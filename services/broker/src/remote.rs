//! The broker's ports ([`schakel_kit::ports`]) over gRPC, for microservices
//! mode: the legal-basis service and the active policy, followed as it
//! changes.

use std::sync::Arc;

use futures::future::BoxFuture;
use schakel_kit::{
    decision::DecisionTable,
    ports::{Basis, PolicySnapshot},
};
use schakel_proto::v1 as pb;
use tokio::sync::watch;
use tonic::Status;

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

type PolicyClient = schakel_proto::v1::policy_service_client::PolicyServiceClient<
    tonic::service::interceptor::InterceptedService<
        tonic::transport::Channel,
        schakel_kit::client::CallContext,
    >,
>;

type PolicyStream = tonic::Streaming<pb::WatchActivePolicyResponse>;

/// Waits with exponential backoff (200 ms doubling to 10 s) between attempts.
struct Backoff(std::time::Duration);

impl Backoff {
    fn new() -> Self {
        Backoff(std::time::Duration::from_millis(200))
    }

    async fn wait(&mut self) {
        tokio::time::sleep(self.0).await;
        self.0 = (self.0 * 2).min(std::time::Duration::from_secs(10));
    }
}

/// The first active version and its stream: the broker does not serve
/// without a policy, so this retries until there is one.
async fn first_version(client: &PolicyClient) -> (Arc<PolicySnapshot>, PolicyStream) {
    let mut backoff = Backoff::new();
    loop {
        let request = pb::WatchActivePolicyRequest { known_version: 0 };
        match client.clone().watch_active_policy(request).await {
            Ok(response) => {
                let mut stream = response.into_inner();
                if let Ok(Some(message)) = stream.message().await
                    && let Some(snapshot) = snapshot_of(&message)
                {
                    return (snapshot, stream);
                }
            }
            Err(status) => tracing::warn!(code = ?status.code(), "no active policy yet; retrying"),
        }
        backoff.wait().await;
    }
}

/// A new stream announcing the version we have; `None` once nobody follows.
async fn reconnect(
    client: &PolicyClient,
    sender: &watch::Sender<Arc<PolicySnapshot>>,
) -> Option<PolicyStream> {
    let mut backoff = Backoff::new();
    while !sender.is_closed() {
        let known_version = sender.borrow().version;
        let request = pb::WatchActivePolicyRequest { known_version };
        match client.clone().watch_active_policy(request).await {
            Ok(response) => return Some(response.into_inner()),
            Err(status) => {
                tracing::warn!(code = ?status.code(), "policy stream lost; reconnecting")
            }
        }
        backoff.wait().await;
    }
    None
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
    let client = PolicyServiceClient::with_interceptor(channel, context)
        .max_decoding_message_size(64 * 1024 * 1024);
    let (first, mut stream) = first_version(&client).await;
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
                Ok(None) | Err(_) => match reconnect(&client, &sender).await {
                    Some(next) => stream = next,
                    None => return,
                },
            }
        }
    });
    receiver
}
