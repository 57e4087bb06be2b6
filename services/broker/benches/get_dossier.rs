//! GetDossier over TLS: throughput and p50/p99 latency with 1, 16 and 64
//! concurrent clients (each its own TLS connection), beside two baselines on
//! the same server (same process, port, TLS config and server layers):
//!
//! - a bare TLS unary RPC (gRPC health Check, which needs no token);
//! - a TLS unary RPC whose reply is a payload of the same encoded size as the
//!   GetDossier reply (a tiny gRPC service defined here, served in the same
//!   routes as the broker, called with the same bearer token, so that the
//!   auth layer verifies it as it does for GetDossier), i.e. what TLS, HTTP/2,
//!   the server layers and the bytes on the wire cost without the broker.
//!
//! The broker runs with the real legal-basis and policy services in process
//! and appends every read durably to the audit log (SQLite, synchronous=FULL).
//!
//! `cargo bench -p schakel-broker --bench get_dossier` (add `-- --quick` for
//! one-second runs, `-- --clients 16` for one level of concurrency,
//! `-- --only-dossier` to run GetDossier alone, e.g. under a profiler).
#![allow(clippy::unwrap_used, clippy::print_stdout, missing_docs, dead_code)]

#[path = "../tests/integration/common/mod.rs"]
mod common;

use std::{
    sync::{Arc, OnceLock},
    time::{Duration, Instant},
};

use common::*;
use prost::Message;
use schakel_kit::{
    auth::{PrincipalKind, Role},
    client::CallContext,
    testing::RunningServer,
};
use schakel_proto::v1::broker_service_client::BrokerServiceClient;
use tonic::{
    codec::{Codec, DecodeBuf, Decoder, EncodeBuf, Encoder},
    codegen::{BoxFuture, Context, Poll, Service, http},
    service::{Routes, interceptor::InterceptedService},
    transport::Channel,
};

/// The payload service: one unary method returning [`Payload::bytes`].
const PAYLOAD_SERVICE: &str = "schakel.bench.Payload";
const PAYLOAD_PATH: &str = "/schakel.bench.Payload/Get";

/// A prost codec (what `tonic_prost::ProstCodec` does; that crate is no
/// dependency of the broker).
struct Prost<T, U>(std::marker::PhantomData<(T, U)>);

impl<T, U> Default for Prost<T, U> {
    fn default() -> Self {
        Self(std::marker::PhantomData)
    }
}

struct ProstEncoder<T>(std::marker::PhantomData<T>);
struct ProstDecoder<U>(std::marker::PhantomData<U>);

impl<T: Message + Send + 'static, U: Message + Default + Send + 'static> Codec for Prost<T, U> {
    type Encode = T;
    type Decode = U;
    type Encoder = ProstEncoder<T>;
    type Decoder = ProstDecoder<U>;
    fn encoder(&mut self) -> Self::Encoder {
        ProstEncoder(std::marker::PhantomData)
    }
    fn decoder(&mut self) -> Self::Decoder {
        ProstDecoder(std::marker::PhantomData)
    }
}

impl<T: Message> Encoder for ProstEncoder<T> {
    type Item = T;
    type Error = tonic::Status;
    fn encode(&mut self, item: T, buf: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        item.encode(buf)
            .map_err(|e| tonic::Status::internal(e.to_string()))
    }
}

impl<U: Message + Default> Decoder for ProstDecoder<U> {
    type Item = U;
    type Error = tonic::Status;
    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<U>, tonic::Status> {
        U::decode(buf)
            .map(Some)
            .map_err(|e| tonic::Status::internal(e.to_string()))
    }
}

/// A message of one bytes field (as `google.protobuf.BytesValue`), on
/// `Bytes` so that the reply is cloned without copying.
#[derive(Clone, PartialEq, Message)]
struct Blob {
    #[prost(bytes = "bytes", tag = "1")]
    value: prost::bytes::Bytes,
}

/// Replies to any request (the GetDossier request, decoded) with bytes whose
/// encoding is as long as the GetDossier reply; set once, after the first
/// read.
#[derive(Clone, Default)]
struct Payload {
    bytes: Arc<OnceLock<Blob>>,
    max_request: Option<usize>,
    max_response: Option<usize>,
}

impl tonic::server::NamedService for Payload {
    const NAME: &'static str = PAYLOAD_SERVICE;
}

impl tonic::server::UnaryService<schakel_proto::v1::GetDossierRequest> for Payload {
    type Response = Blob;
    type Future = std::future::Ready<Result<tonic::Response<Self::Response>, tonic::Status>>;
    fn call(&mut self, _: tonic::Request<schakel_proto::v1::GetDossierRequest>) -> Self::Future {
        std::future::ready(match self.bytes.get() {
            Some(bytes) => Ok(tonic::Response::new(bytes.clone())),
            None => Err(tonic::Status::failed_precondition("payload not set yet")),
        })
    }
}

impl Service<http::Request<tonic::body::Body>> for Payload {
    type Response = http::Response<tonic::body::Body>;
    type Error = std::convert::Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<tonic::body::Body>) -> Self::Future {
        let method = self.clone();
        Box::pin(async move {
            if request.uri().path() != PAYLOAD_PATH {
                return Ok(
                    tonic::Status::unimplemented(request.uri().path().to_owned()).into_http(),
                );
            }
            let mut grpc = tonic::server::Grpc::new(Prost::<
                Blob,
                schakel_proto::v1::GetDossierRequest,
            >::default())
            .apply_max_message_size_config(method.max_request, method.max_response);
            Ok(grpc.unary(method, request).await)
        })
    }
}

/// A `Blob` whose encoding is `len` bytes long (or as close below as the
/// varint length prefix allows).
fn payload_of(len: usize) -> Blob {
    let mut n = len.saturating_sub(1 + prost::encoding::encoded_len_varint(len as u64));
    while n > 0 && 1 + prost::encoding::encoded_len_varint(n as u64) + n > len {
        n -= 1;
    }
    Blob {
        value: (0..n).map(|i| (i % 251) as u8).collect::<Vec<_>>().into(),
    }
}

/// A client of the payload service, sending `token` as the broker's clients do.
struct PayloadClient {
    grpc: tonic::client::Grpc<InterceptedService<Channel, CallContext>>,
}

impl PayloadClient {
    fn new(channel: Channel, token: String) -> Self {
        Self {
            grpc: tonic::client::Grpc::new(InterceptedService::new(
                channel,
                CallContext::with_token(Some(token)),
            )),
        }
    }

    async fn get(
        &mut self,
        request: schakel_proto::v1::GetDossierRequest,
    ) -> Result<Blob, tonic::Status> {
        self.grpc
            .ready()
            .await
            .map_err(|e| tonic::Status::unknown(e.to_string()))?;
        let codec = Prost::<schakel_proto::v1::GetDossierRequest, Blob>::default();
        let path = http::uri::PathAndQuery::from_static(PAYLOAD_PATH);
        Ok(self
            .grpc
            .unary(tonic::Request::new(request), path, codec)
            .await?
            .into_inner())
    }
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

async fn run<F, Fut>(clients: usize, make: F) -> (f64, Duration, Duration)
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = Vec<Duration>> + Send + 'static,
{
    let started = Instant::now();
    let tasks: Vec<_> = (0..clients).map(|i| tokio::spawn(make(i))).collect();
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await.unwrap());
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort();
    (
        all.len() as f64 / elapsed,
        percentile(&all, 0.5),
        percentile(&all, 0.99),
    )
}

/// Runs `$call` in a loop for `$seconds`; the latency of each call.
macro_rules! measure {
    ($seconds:expr, $call:expr) => {{
        let mut latencies = Vec::new();
        let until = Instant::now() + Duration::from_secs_f64($seconds);
        while Instant::now() < until {
            let t = Instant::now();
            $call.await.unwrap();
            latencies.push(t.elapsed());
        }
        latencies
    }};
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// The allocator the `schakel` binary runs with (see its `main.rs`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let quick = args.iter().any(|a| a == "--quick");
    let only_dossier = args.iter().any(|a| a == "--only-dossier");
    let levels: Vec<usize> = match args.iter().position(|a| a == "--clients") {
        Some(i) => vec![args[i + 1].parse().expect("--clients takes a number")],
        None => vec![1, 16, 64],
    };
    let seconds = if quick { 1.0 } else { 5.0 };
    let db = schakel_kit::testing::TestDatabase::sqlite().unwrap();
    let app = spawn(db.url()).await;

    // One server, as the harness builds it (the test PKI, the issuer's keys,
    // the broker's limits), serving the broker and the payload service.
    let payload = Payload::default();
    let server = RunningServer::serve(
        &app.pki,
        app.issuer.verifier(),
        schakel_broker::SERVICE_NAME,
        |limits| {
            let payload = Payload {
                max_request: Some(limits.max_request_bytes),
                max_response: Some(limits.max_response_bytes),
                ..payload.clone()
            };
            Routes::new(app.broker.clone().into_server(limits)).add_service(payload)
        },
    )
    .await;
    let token = |subject: &str, roles: &[Role]| {
        app.issuer.token(
            PrincipalKind::User,
            subject,
            &app.orgs["politie"],
            "politie",
            roles,
        )
    };
    let broker = |subject: &str, roles: &[Role]| {
        BrokerServiceClient::with_interceptor(
            server.channel(app.pki.client_tls()),
            CallContext::with_token(Some(token(subject, roles))),
        )
    };
    let team = [Role::Aanmelder, Role::TeamMember];

    let registered = broker("aanmelder-politie", &[Role::Aanmelder])
        .register_dossier(registration("bench"))
        .await
        .unwrap()
        .into_inner();
    let id = registered.dossier.unwrap().dossier_id;
    // The registered family, read whole (every catalogue field asked) by the
    // police team.
    let first = broker("team-politie", &team)
        .get_dossier(read_request(&id, "triage"))
        .await
        .unwrap()
        .into_inner();
    let released = first.released.len();
    let contributions: usize = first.released.iter().map(|f| f.contributions.len()).sum();
    let reply_len = first.encoded_len();
    payload.bytes.set(payload_of(reply_len)).unwrap();
    let payload_len = payload.bytes.get().unwrap().encoded_len();
    println!(
        "dossier: {released} fields released of {} asked, {contributions} contributions, policy v{}; \
         GetDossier reply {reply_len} bytes, payload reply {payload_len} bytes",
        released + first.withheld.len(),
        first.policy_version
    );
    let check = PayloadClient::new(
        server.channel(app.pki.client_tls()),
        token("team-politie", &team),
    )
    .get(read_request(&id, "triage"))
    .await
    .unwrap();
    assert_eq!(check.encoded_len(), payload_len);

    for clients in levels {
        let reader = |i: usize| {
            let mut client = broker(&format!("team-politie-{i}"), &team);
            let request = read_request(&id, "triage");
            async move { measure!(seconds, client.get_dossier(request.clone())) }
        };
        let (rate, p50, p99) = run(clients, reader).await;
        if only_dossier {
            println!(
                "{clients:>2} clients: GetDossier {rate:>7.0}/s p50 {:>6.2} ms p99 {:>6.2} ms",
                ms(p50),
                ms(p99)
            );
            continue;
        }
        // The same-size baseline right after GetDossier, so that the two
        // terms of the ratio see the same load on this shared machine.
        let same_size = |i: usize| {
            let channel = server.channel(app.pki.client_tls());
            let mut client =
                PayloadClient::new(channel, token(&format!("team-politie-{i}"), &team));
            let request = read_request(&id, "triage");
            async move { measure!(seconds, client.get(request.clone())) }
        };
        let (same_rate, same_p50, same_p99) = run(clients, same_size).await;
        let health = |_: usize| {
            let channel = server.channel(app.pki.client_tls());
            let mut client = tonic_health::pb::health_client::HealthClient::new(channel);
            let request = tonic_health::pb::HealthCheckRequest {
                service: String::new(),
            };
            async move { measure!(seconds, client.check(request.clone())) }
        };
        let (health_rate, health_p50, health_p99) = run(clients, health).await;
        println!(
            "{clients:>2} clients: GetDossier {rate:>7.0}/s p50 {:>6.2} ms p99 {:>6.2} ms \
             | health {health_rate:>7.0}/s p50 {:>5.2} ms p99 {:>5.2} ms \
             | same-size {same_rate:>7.0}/s p50 {:>5.2} ms p99 {:>5.2} ms \
             | GetDossier/same-size {:.2}",
            ms(p50),
            ms(p99),
            ms(health_p50),
            ms(health_p99),
            ms(same_p50),
            ms(same_p99),
            rate / same_rate,
        );
    }
    server.stop().await.unwrap();
}
