//! GetDossier over TLS: throughput and p50/p99 latency with 1, 16 and 64
//! concurrent clients (each its own TLS connection), beside a bare TLS unary
//! RPC of the same server (gRPC health Check) as the baseline. The broker runs
//! with the real legal-basis and policy services in process and appends every
//! read durably to the audit log (SQLite, synchronous=FULL).
//!
//! `cargo bench -p schakel-broker --bench get_dossier` (add `-- --quick` for
//! one-second runs).
#![allow(clippy::unwrap_used, clippy::print_stdout, missing_docs, dead_code)]

#[path = "../tests/integration/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use common::*;
use schakel_kit::auth::Role;

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

#[tokio::main]
async fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let seconds = if quick { 1.0 } else { 5.0 };
    let db = schakel_kit::testing::TestDatabase::sqlite().unwrap();
    let app = spawn(db.url()).await;
    let registered = app
        .as_user("aanmelder-politie", "politie", &[Role::Aanmelder])
        .register_dossier(registration("bench"))
        .await
        .unwrap()
        .into_inner();
    let id = registered.dossier.unwrap().dossier_id;
    // The registered family, read whole (every catalogue field asked) by the
    // police team.
    let politie = app.as_user(
        "team-politie",
        "politie",
        &[Role::Aanmelder, Role::TeamMember],
    );
    let first = politie
        .clone()
        .get_dossier(read_request(&id, "triage"))
        .await
        .unwrap()
        .into_inner();
    let released = first.released.len();
    let contributions: usize = first.released.iter().map(|f| f.contributions.len()).sum();
    println!(
        "dossier: {released} fields released of {} asked, {contributions} contributions, policy v{}",
        released + first.withheld.len(),
        first.policy_version
    );

    for clients in [1usize, 16, 64] {
        let reader = |i: usize| {
            let mut client = app.as_user(
                &format!("team-politie-{i}"),
                "politie",
                &[Role::Aanmelder, Role::TeamMember],
            );
            let request = read_request(&id, "triage");
            async move {
                let mut latencies = Vec::new();
                let until = Instant::now() + Duration::from_secs_f64(seconds);
                while Instant::now() < until {
                    let t = Instant::now();
                    client.get_dossier(request.clone()).await.unwrap();
                    latencies.push(t.elapsed());
                }
                latencies
            }
        };
        let (rate, p50, p99) = run(clients, reader).await;
        let baseline = |_: usize| {
            let channel = app.server.channel(app.pki.client_tls());
            async move {
                let mut health = tonic_health::pb::health_client::HealthClient::new(channel);
                let mut latencies = Vec::new();
                let until = Instant::now() + Duration::from_secs_f64(seconds);
                while Instant::now() < until {
                    let t = Instant::now();
                    health
                        .check(tonic_health::pb::HealthCheckRequest {
                            service: String::new(),
                        })
                        .await
                        .unwrap();
                    latencies.push(t.elapsed());
                }
                latencies
            }
        };
        let (base_rate, base_p50, base_p99) = run(clients, baseline).await;
        println!(
            "{clients:>2} clients: GetDossier {rate:>7.0}/s p50 {:>6.2} ms p99 {:>6.2} ms | TLS unary baseline {base_rate:>7.0}/s p50 {:>5.2} ms p99 {:>5.2} ms",
            p50.as_secs_f64() * 1e3,
            p99.as_secs_f64() * 1e3,
            base_p50.as_secs_f64() * 1e3,
            base_p99.as_secs_f64() * 1e3,
        );
    }
}
