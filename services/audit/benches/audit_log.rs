//! Audit log benchmark: durable appends per second with 1, 8 and 64
//! concurrent callers, proof generation time at 1 and 10 million entries,
//! verification throughput, and privacy officers' queries. On SQLite (the
//! embedded default) and, with `--postgres`, on the PostgreSQL server at
//! `SCHAKEL_TEST_DATABASE_URL` (a fresh database per measurement), on this
//! machine.
//!
//! `cargo bench -p schakel-audit --bench audit_log` (add `-- --quick` for a
//! short run without the 10-million-entry tree, `-- --proofs` for proofs only,
//! `-- --appends N` for appends with N callers only, `-- --postgres` for the
//! PostgreSQL measurements after SQLite's). The large SQLite trees are built
//! once (directly as stored nodes: leaf hashes and subtree hashes, as the log
//! writes them) and cached under `target/bench-data/`; PostgreSQL's are built
//! for each run.
#![allow(clippy::unwrap_used, clippy::print_stdout, missing_docs)]

use std::{
    path::PathBuf,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering},
    },
    time::{Duration, Instant},
};

use rand::Rng;
use schakel_audit::{Audit, AuditConfig};
use schakel_kit::time::Clock;
use schakel_proto::v1 as pb;
use schakel_tlog::{Checkpoint, CompactRange, NoteSigner, leaf_hash};
use sqlx::Executor;

/// Where a measurement runs.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Store {
    Sqlite,
    Postgres,
}

impl Store {
    fn label(self) -> &'static str {
        match self {
            Store::Sqlite => "SQLite",
            Store::Postgres => "PostgreSQL",
        }
    }

    /// A fresh database (dropped with the guard).
    async fn fresh(self) -> schakel_kit::testing::TestDatabase {
        match self {
            Store::Sqlite => schakel_kit::testing::TestDatabase::sqlite().unwrap(),
            Store::Postgres => schakel_kit::testing::TestDatabase::postgres()
                .await
                .unwrap()
                .expect("SCHAKEL_TEST_DATABASE_URL"),
        }
    }
}

fn key() -> ed25519_dalek::SigningKey {
    ed25519_dalek::SigningKey::from_bytes(&[7; 32])
}

/// The `n`-th decision: a read by one of 1 000 users in 40 organisations, of
/// one of 5 000 dossiers, naming two of 20 000 persons, all drawn uniformly
/// at random from `n` (no locality between the entries of one batch: the
/// query indexes see their worst case).
fn entry(n: u64) -> pb::AuditEntry {
    let i = n.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(29);
    pb::AuditEntry {
        actor: Some(pb::Actor {
            subject: format!("user-{}", i % 1000),
            kind: pb::PrincipalKind::User as i32,
            organisation_id: format!("org-{}", i % 40),
            partner_type: "caw".into(),
            roles: vec![pb::Role::TeamMember as i32],
        }),
        action: pb::AuditAction::DossierRead as i32,
        decision: pb::Decision::PartiallyGranted as i32,
        target: Some(pb::AuditTarget {
            dossier_id: format!("dossier-{}", i % 5000),
            person_ids: vec![
                format!("p-{}", i % 20000),
                format!("p-{}", (i >> 32) % 20000),
            ],
            ..Default::default()
        }),
        purpose: "case_building".into(),
        legal_basis: Some(pb::LegalBasisRef {
            agreement_id: "agr-leuven".into(),
            agreement_version: 1,
        }),
        policy_version: 3,
        fields_released: vec![
            "registration.summary".into(),
            "persons.address".into(),
            "plan.actions".into(),
        ],
        fields_withheld: vec![pb::WithheldField {
            path: "ggz.clinical_notes".into(),
            reason: pb::AccessDenialReason::PolicyDenied as i32,
        }],
        trace_id: "4bf92f3577b34da6a3ce929d0e0e4736".into(),
        service: "broker".into(),
        ..Default::default()
    }
}

async fn appends(callers: u64, seconds: u64, store: Store) -> f64 {
    let db = store.fresh().await;
    let audit = Audit::connect(db.url(), AuditConfig::default(), key(), Clock::System)
        .await
        .unwrap();
    let done = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let start = Instant::now();
    let tasks: Vec<_> = (0..callers)
        .map(|c| {
            let log = audit.log().clone();
            let (done, stop) = (done.clone(), stop.clone());
            tokio::spawn(async move {
                let mut i = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    log.append(entry(i * callers + c), schakel_kit::audit::new_append_id())
                        .await
                        .unwrap();
                    done.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                }
            })
        })
        .collect();
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    for t in tasks {
        t.await.unwrap();
    }
    done.load(Ordering::Relaxed) as f64 / start.elapsed().as_secs_f64()
}

/// A log of `size` leaves, built as stored nodes (SQLite: cached; `guard`
/// keeps a PostgreSQL database for as long as it is used).
async fn big_log(
    size: u64,
    store: Store,
    guard: &mut Option<schakel_kit::testing::TestDatabase>,
) -> Audit {
    let url = if store == Store::Postgres {
        let db = store.fresh().await;
        let url = db.url().to_owned();
        *guard = Some(db);
        println!("  building a tree of {size} leaves on PostgreSQL...");
        url
    } else {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/bench-data");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("audit-{size}.db"));
        let url = format!("sqlite://{}?mode=rwc", path.display());
        if let Ok(audit) = Audit::connect(&url, AuditConfig::default(), key(), Clock::System).await
            && audit.log().checkpoint().await.unwrap().tree_size == size
        {
            // Read the file once, as a running service has its working set in the
            // page cache; cold, every proof waits for ~20 random disk reads.
            let mut file = std::fs::File::open(&path).unwrap();
            std::io::copy(&mut file, &mut std::io::sink()).unwrap();
            return audit;
        }
        for suffix in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{suffix}", path.display()));
        }
        println!(
            "  building a tree of {size} leaves in {} (once)...",
            path.display()
        );
        url
    };
    let started = Instant::now();
    let db = schakel_kit::db::Database::connect(
        &url,
        schakel_audit::SCHEMA,
        schakel_audit::migrations(),
    )
    .await
    .unwrap();
    let mut range = CompactRange::new();
    let mut rows: Vec<(u8, u64, [u8; 32])> = Vec::with_capacity(60_000);
    let mut tx = db.pool().begin().await.unwrap();
    for i in 0..size {
        for (id, hash) in range.append(leaf_hash(&i.to_be_bytes())) {
            rows.push((id.level, id.index, hash));
        }
        if rows.len() >= 50_000 || i + 1 == size {
            for chunk in rows.chunks(300) {
                let values: Vec<String> = (0..chunk.len())
                    .map(|r| format!("(${}, ${}, ${})", 3 * r + 1, 3 * r + 2, 3 * r + 3))
                    .collect();
                let sql = format!(
                    "INSERT INTO nodes (level, idx, hash) VALUES {}",
                    values.join(", ")
                );
                let mut q = sqlx::query(&sql);
                for (level, index, hash) in chunk {
                    q = q
                        .bind(i64::from(*level))
                        .bind(*index as i64)
                        .bind(hash.to_vec());
                }
                tx.execute(q).await.unwrap();
            }
            rows.clear();
        }
    }
    let body = Checkpoint {
        origin: AuditConfig::default().origin,
        size,
        root: range.root(),
        extensions: vec![],
    };
    let note = NoteSigner::new("schakel-audit", key())
        .unwrap()
        .sign(&body.to_text())
        .unwrap();
    sqlx::query("INSERT INTO checkpoints (size, root, note, signed_at) VALUES ($1, $2, $3, $4)")
        .bind(size as i64)
        .bind(range.root().to_vec())
        .bind(note)
        .bind(Clock::System.now())
        .execute(&mut *tx)
        .await
        .unwrap();
    tx.commit().await.unwrap();
    db.close().await;
    println!("  built in {:.0} s", started.elapsed().as_secs_f64());
    Audit::connect(&url, AuditConfig::default(), key(), Clock::System)
        .await
        .unwrap()
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

async fn proofs(size: u64, store: Store) {
    let mut guard = None;
    let audit = big_log(size, store, &mut guard).await;
    let label = store.label();
    let log = audit.log();
    let mut rng = rand::thread_rng();
    // Warm the page cache the way a running service has it warm.
    for _ in 0..2000 {
        log.inclusion_proof(rng.gen_range(0..size), size)
            .await
            .unwrap();
    }
    for (kind, n) in [("inclusion", 2000), ("consistency", 2000)] {
        let mut times = Vec::with_capacity(n);
        for _ in 0..n {
            let start = Instant::now();
            if kind == "inclusion" {
                let index = rng.gen_range(0..size);
                log.inclusion_proof(index, size).await.unwrap();
            } else {
                let old = rng.gen_range(1..=size);
                log.consistency_proof(old, size).await.unwrap();
            }
            times.push(start.elapsed());
        }
        times.sort();
        let mean = times.iter().sum::<Duration>() / n as u32;
        println!(
            "| {kind} proof at {size} entries, {label} | mean {:.3} ms, p50 {:.3} ms, p99 {:.3} ms |",
            mean.as_secs_f64() * 1e3,
            percentile(&times, 0.5).as_secs_f64() * 1e3,
            percentile(&times, 0.99).as_secs_f64() * 1e3
        );
    }
}

/// Verification throughput on a log of `entries` random reads, then the time
/// privacy officers' queries take on it.
async fn verify_and_query(entries: u64, store: Store) {
    use schakel_kit::{
        auth::{PrincipalKind, Role},
        client::CallContext,
        testing::{RunningServer, TestIssuer, TestPki},
    };
    let label = store.label();
    let db = store.fresh().await;
    let audit = Audit::connect(db.url(), AuditConfig::default(), key(), Clock::System)
        .await
        .unwrap();
    audit.set_directory(Arc::new(schakel_kit::ports::FixedDirectory::of(
        (0..40)
            .map(|i| (format!("org-{i}"), "caw".into()))
            .collect(),
    )));
    let fill: Vec<_> = (0..64u64)
        .map(|c| {
            let log = audit.log().clone();
            tokio::spawn(async move {
                for i in (c..entries).step_by(64) {
                    log.append(entry(i), format!("v-{i}")).await.unwrap();
                }
            })
        })
        .collect();
    for t in fill {
        t.await.unwrap();
    }
    let pki = TestPki::new();
    let issuer = TestIssuer::new();
    let config = pki.server_config();
    let routes = tonic::service::Routes::new(audit.clone().into_server(&config.limits));
    let app = schakel_kit::server::App::build(config, routes, vec![], issuer.verifier())
        .await
        .unwrap();
    let server = RunningServer::start(app);
    let client = |token: String| {
        pb::audit_service_client::AuditServiceClient::with_interceptor(
            server.channel(pki.client_tls()),
            CallContext::with_token(Some(token)),
        )
        .max_decoding_message_size(64 * 1024 * 1024)
    };
    // The Veilig Huis privacy officer (sees the whole log): verify rehashes
    // every body and rebuilds the query index; each query and each page of
    // bodies is itself appended, durably, as in production.
    let mut officer = client(issuer.token(
        PrincipalKind::User,
        "dpo-bench",
        "org-veilig-huis",
        "veilig_huis",
        &[Role::PrivacyOfficer],
    ));
    let signer = NoteSigner::new("schakel-audit", key()).unwrap();
    let verifier = schakel_tlog::NoteVerifier::parse(&signer.verifier_key()).unwrap();
    let start = Instant::now();
    let verified = schakel_audit::verifier::verify(
        &mut officer,
        &verifier,
        &AuditConfig::default().origin,
        None,
        |_, _| {},
    )
    .await
    .unwrap();
    assert_eq!(verified.tree_size, entries);
    let rate = entries as f64 / start.elapsed().as_secs_f64();
    println!(
        "| verify, all-seeing (tiles and bodies over TLS, rehash, roots, signatures, query index), {label} | {rate:.0} entries/s |"
    );
    let mut rng = rand::thread_rng();
    for kind in ["person", "dossier", "organisation + denied"] {
        let mut times = Vec::with_capacity(200);
        for _ in 0..200 {
            let request = match kind {
                "person" => pb::QueryRequest {
                    person_id: format!("p-{}", rng.gen_range(0..20_000)),
                    ..Default::default()
                },
                "dossier" => pb::QueryRequest {
                    dossier_id: format!("dossier-{}", rng.gen_range(0..5_000)),
                    ..Default::default()
                },
                _ => pb::QueryRequest {
                    organisation_id: format!("org-{}", rng.gen_range(0..40)),
                    decisions: vec![pb::Decision::Denied as i32],
                    ..Default::default()
                },
            };
            let started = Instant::now();
            officer.query(request).await.unwrap();
            times.push(started.elapsed());
        }
        times.sort();
        println!(
            "| Query by {kind}, first page (50), at {entries} entries, {label} | p50 {:.1} ms, p99 {:.1} ms |",
            percentile(&times, 0.5).as_secs_f64() * 1e3,
            percentile(&times, 0.99).as_secs_f64() * 1e3
        );
    }
    let mut times = Vec::with_capacity(100);
    for _ in 0..100 {
        let started = Instant::now();
        officer
            .subject_report(pb::SubjectReportRequest {
                person_ids: vec![format!("p-{}", rng.gen_range(0..20_000))],
                request_reference: "bench".into(),
                ..Default::default()
            })
            .await
            .unwrap();
        times.push(started.elapsed());
    }
    times.sort();
    println!(
        "| SubjectReport of one person, at {entries} entries, {label} | p50 {:.1} ms, p99 {:.1} ms |",
        percentile(&times, 0.5).as_secs_f64() * 1e3,
        percentile(&times, 0.99).as_secs_f64() * 1e3
    );
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let proofs_only = std::env::args().any(|a| a == "--proofs");
    let postgres = std::env::args().any(|a| a == "--postgres");
    // `--no-ten-million`: the full run without the 10-million-entry tree.
    let ten_million = !std::env::args().any(|a| a == "--no-ten-million");
    assert!(
        !postgres || std::env::var_os(schakel_kit::testing::TEST_DATABASE_URL).is_some(),
        "--postgres measures on the server at SCHAKEL_TEST_DATABASE_URL: set it"
    );
    // `--appends N`: only the append measurement, with N callers (for profiling).
    let appends_only: Option<u64> = std::env::args()
        .skip_while(|a| a != "--appends")
        .nth(1)
        .map(|n| n.parse().expect("--appends takes a number of callers"));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let stores: &[Store] = if postgres {
        &[Store::Sqlite, Store::Postgres]
    } else {
        &[Store::Sqlite]
    };
    runtime.block_on(async {
        println!("| measurement | result |");
        println!("|---|---|");
        for &store in stores {
            let label = store.label();
            if let Some(callers) = appends_only {
                let rate = appends(callers, 5, store).await;
                println!(
                    "| durable appends, {callers} concurrent caller(s), {label} | {rate:.0} /s |"
                );
                continue;
            }
            if proofs_only {
                proofs(1_000_000, store).await;
                if store == Store::Sqlite {
                    proofs(10_000_000, store).await;
                }
                continue;
            }
            for callers in [1, 8, 64] {
                let rate = appends(callers, if quick { 2 } else { 5 }, store).await;
                println!(
                    "| durable appends, {callers} concurrent caller(s), {label} | {rate:.0} /s |"
                );
            }
            verify_and_query(if quick { 20_000 } else { 1_000_000 }, store).await;
            proofs(if quick { 100_000 } else { 1_000_000 }, store).await;
            if !quick && ten_million && store == Store::Sqlite {
                proofs(10_000_000, store).await;
            }
        }
    });
}
