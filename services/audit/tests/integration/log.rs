//! Appending, checkpoints and proofs over gRPC, on SQLite and PostgreSQL.

use crate::common::*;
use schakel_kit::testing::databases;
use schakel_proto::v1 as pb;
use schakel_tlog::{Hash, leaf_hash, open_checkpoint, verify_consistency, verify_inclusion};
use tonic::Code;

fn hashes(raw: &[Vec<u8>]) -> Vec<Hash> {
    raw.iter()
        .map(|h| h.as_slice().try_into().unwrap())
        .collect()
}

#[tokio::test]
async fn appended_entries_are_provably_in_signed_checkpoints() {
    for db in databases().await {
        let app = spawn(db.url()).await;
        let mut internal = app.internal();
        let info = internal
            .get_log_info(pb::GetLogInfoRequest {})
            .await
            .unwrap()
            .into_inner();
        assert_eq!(info.origin, ORIGIN);
        assert_eq!(info.hash_algorithm, "SHA-256");
        let verifier = schakel_tlog::NoteVerifier::parse(&info.verifier_key).unwrap();

        // The empty log already has a signed checkpoint.
        let empty = app.checkpoint().await;
        assert_eq!(empty.tree_size, 0);
        open_checkpoint(&empty.signed_note, &verifier, Some(ORIGIN)).unwrap();

        let receipts = append_reads(&app, 13).await;
        let indices: Vec<u64> = receipts.iter().map(|r| r.index).collect();
        assert_eq!(indices, (0..13).collect::<Vec<u64>>());
        let checkpoint = app.checkpoint().await;
        let opened = open_checkpoint(&checkpoint.signed_note, &verifier, Some(ORIGIN)).unwrap();
        assert_eq!(opened.size, 13);
        assert_eq!(opened.root.to_vec(), checkpoint.root_hash);

        // Entries come back verbatim: their bytes hash to the receipts' leaf hashes.
        let leaves = app
            .dpo_veilig_huis()
            .get_entries(pb::GetEntriesRequest {
                start: 0,
                end: 13,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .leaves;
        assert_eq!(leaves.len(), 13);
        for (leaf, receipt) in leaves.iter().zip(&receipts) {
            assert_eq!(leaf_hash(&leaf.entry_bytes).to_vec(), receipt.leaf_hash);
            let decoded = schakel_audit::entry::decode(&leaf.entry_bytes).unwrap();
            assert_eq!(decoded.index, leaf.index);
            assert_eq!(decoded.time, receipt.time);
        }

        for index in 0..13 {
            for size in (index + 1)..=13 {
                let proof = internal
                    .get_inclusion_proof(pb::GetInclusionProofRequest {
                        index,
                        tree_size: size,
                    })
                    .await
                    .unwrap()
                    .into_inner();
                let root = root_at(&mut internal, size).await;
                let leaf: Hash = proof.leaf_hash.as_slice().try_into().unwrap();
                verify_inclusion(&leaf, index, size, &hashes(&proof.hashes), &root).unwrap();
            }
        }
        for old in 1..=13 {
            let proof = internal
                .get_consistency_proof(pb::GetConsistencyProofRequest {
                    old_tree_size: old,
                    new_tree_size: 13,
                })
                .await
                .unwrap()
                .into_inner();
            let old_root = root_at(&mut internal, old).await;
            verify_consistency(old, 13, &hashes(&proof.hashes), &old_root, &opened.root).unwrap();
        }

        // Beyond the log: OUT_OF_RANGE. (Reading the entries above was
        // itself logged: the log has 14 entries now.)
        assert_eq!(app.checkpoint().await.tree_size, 14);
        for (index, size) in [(13, 13), (0, 15), (5, 3)] {
            let status = internal
                .get_inclusion_proof(pb::GetInclusionProofRequest {
                    index,
                    tree_size: size,
                })
                .await
                .unwrap_err();
            assert_eq!(status.code(), Code::OutOfRange, "{index}/{size}");
        }
        let status = internal
            .get_consistency_proof(pb::GetConsistencyProofRequest {
                old_tree_size: 0,
                new_tree_size: 5,
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::OutOfRange);
        let status = app
            .dpo_veilig_huis()
            .get_entries(pb::GetEntriesRequest {
                start: 10,
                end: 15,
                ..Default::default()
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::OutOfRange, "{}", db.label());
        app.verify(None).await.unwrap();
    }
}

/// The signed root of the tree of `size` (one checkpoint per committed batch).
async fn root_at(client: &mut Client, size: u64) -> Hash {
    let page = client
        .list_checkpoints(pb::ListCheckpointsRequest {
            after_tree_size: size - 1,
            limit: 1,
        })
        .await
        .unwrap()
        .into_inner()
        .checkpoints;
    assert_eq!(
        page[0].tree_size, size,
        "sequential appends: one checkpoint each"
    );
    page[0].root_hash.as_slice().try_into().unwrap()
}

#[tokio::test]
async fn only_internal_services_append_and_only_valid_entries() {
    for db in databases().await {
        let app = spawn(db.url()).await;
        let entry = read_entry(CAW, "caw", "d1", &["p1"], &["registration.summary"]);
        // An internal-service token for a name that is not one of Schakel's
        // appending services is refused as well.
        let stranger = app.service("reporting");
        for (who, mut client) in [
            ("team member", app.team_member()),
            ("privacy officer", app.dpo_veilig_huis()),
            ("coordinator", app.coordinator()),
            ("unknown service", stranger),
        ] {
            let status = client
                .append(pb::AppendRequest {
                    entry: Some(entry.clone()),
                    append_id: "x1".into(),
                })
                .await
                .unwrap_err();
            assert_eq!(status.code(), Code::PermissionDenied, "{who}");
        }
        let mut internal = app.internal();
        let mut free_text = entry.clone();
        free_text.purpose = "gesprek met mevrouw Peeters".into();
        let status = internal
            .append(pb::AppendRequest {
                entry: Some(free_text),
                append_id: "x2".into(),
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert!(
            status.message().starts_with("entry.purpose"),
            "{}",
            status.message()
        );
        let status = internal
            .append(pb::AppendRequest {
                entry: Some(entry.clone()),
                append_id: String::new(),
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::InvalidArgument);
        assert_eq!(app.checkpoint().await.tree_size, 0, "nothing appended");

        // A retried append (same id) is one entry.
        let first = internal
            .append(pb::AppendRequest {
                entry: Some(entry.clone()),
                append_id: "decision-1".into(),
            })
            .await
            .unwrap()
            .into_inner();
        let again = internal
            .append(pb::AppendRequest {
                entry: Some(entry.clone()),
                append_id: "decision-1".into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(first, again);
        assert_eq!(app.checkpoint().await.tree_size, 1, "{}", db.label());

        // Entries are for privacy officers; checkpoints and tiles for all.
        for mut reader in [app.team_member(), app.internal(), app.coordinator()] {
            let status = reader
                .get_entries(pb::GetEntriesRequest {
                    start: 0,
                    end: 1,
                    ..Default::default()
                })
                .await
                .unwrap_err();
            assert_eq!(status.code(), Code::PermissionDenied);
            let tile = reader
                .get_tile(pb::GetTileRequest {
                    level: 0,
                    index: 0,
                    width: 1,
                })
                .await
                .unwrap()
                .into_inner();
            assert_eq!(tile.hashes, first.leaf_hash);
        }
        app.team_member()
            .get_checkpoint(pb::GetCheckpointRequest {})
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn concurrent_appends_are_group_committed_without_gaps() {
    for db in databases().await {
        let app = spawn(db.url()).await;
        let log = app.audit.log().clone();
        let tasks: Vec<_> = (0..200)
            .map(|i| {
                let log = log.clone();
                tokio::spawn(async move {
                    let entry = read_entry(
                        CAW,
                        "caw",
                        &format!("d{i}"),
                        &["p1"],
                        &["registration.summary"],
                    );
                    log.append(entry, format!("c-{i}")).await.unwrap()
                })
            })
            .collect();
        let mut indices = Vec::new();
        for task in tasks {
            indices.push(task.await.unwrap().index);
        }
        indices.sort_unstable();
        assert_eq!(indices, (0..200).collect::<Vec<u64>>());
        let mut client = app.internal();
        let mut commits = 0;
        let mut after = 0;
        loop {
            let page = client
                .list_checkpoints(pb::ListCheckpointsRequest {
                    after_tree_size: after,
                    limit: 1000,
                })
                .await
                .unwrap()
                .into_inner()
                .checkpoints;
            let Some(last) = page.last() else { break };
            after = last.tree_size;
            commits += page.len();
        }
        assert!(
            commits < 200,
            "{} commits for 200 appends: no group commit on {}",
            commits,
            db.label()
        );
        app.verify(None).await.unwrap();
    }
}

#[tokio::test]
async fn an_unreachable_log_fails_closed() {
    use schakel_kit::audit::{AuditError, AuditSink, GrpcAuditSink};
    let db = schakel_kit::testing::TestDatabase::sqlite().unwrap();
    let app = spawn(db.url()).await;
    let broker = app.pki.service_client("broker");
    let token = app.issuer.service_token("broker", &broker);
    let sink = GrpcAuditSink::new(
        app.server.channel(broker.tls.clone()),
        schakel_kit::client::CallContext::with_token(Some(token)),
    );
    let entry = read_entry(CAW, "caw", "d1", &["p1"], &["registration.summary"]);
    sink.append(entry.clone(), "ok-1".into()).await.unwrap();

    let TestAudit { server, audit, .. } = app;
    server.stop().await.unwrap();
    let err = sink
        .append(entry.clone(), "down-1".into())
        .await
        .unwrap_err();
    assert!(matches!(err, AuditError::Unavailable(_)), "{err:?}");
    let status: tonic::Status = err.into();
    assert_eq!(status.code(), Code::Unavailable);

    // The database goes away under a running log: appends fail, none is acknowledged.
    audit.log().database().close().await;
    let err = audit
        .log()
        .append(entry, "db-down".into())
        .await
        .unwrap_err();
    assert!(
        matches!(err, schakel_audit::AppendError::Unavailable(_)),
        "{err:?}"
    );
}

#[tokio::test]
async fn two_instances_never_fork_the_tree_and_the_standby_takes_over() {
    let Some(db) = schakel_kit::testing::TestDatabase::postgres()
        .await
        .unwrap()
    else {
        eprintln!(
            "SKIPPED: the writer election uses PostgreSQL advisory locks; SCHAKEL_TEST_DATABASE_URL is not set"
        );
        return;
    };
    let key = ed25519_dalek::SigningKey::from_bytes(&[42; 32]);
    let config = || schakel_audit::AuditConfig {
        origin: ORIGIN.into(),
        ..Default::default()
    };
    let clock = schakel_kit::time::Clock::System;
    let first = schakel_audit::Audit::connect(db.url(), config(), key.clone(), clock.clone())
        .await
        .unwrap();
    let entry = || read_entry(CAW, "caw", "d1", &["p1"], &["registration.summary"]);
    assert_eq!(
        first
            .log()
            .append(entry(), "a-0".into())
            .await
            .unwrap()
            .index,
        0
    );

    let second = schakel_audit::Audit::connect(db.url(), config(), key, clock)
        .await
        .unwrap();
    let refused = second
        .log()
        .append(entry(), "b-0".into())
        .await
        .unwrap_err();
    assert!(
        matches!(refused, schakel_audit::AppendError::Unavailable(_)),
        "{refused:?}"
    );
    // Health follows this: the standby is not ready, the writer is.
    let mut standby_ready = second.log().writer_status();
    assert!(!*standby_ready.borrow());
    assert!(*first.log().writer_status().borrow());
    assert_eq!(
        first
            .log()
            .append(entry(), "a-1".into())
            .await
            .unwrap()
            .index,
        1
    );

    // The writer goes away; the standby takes over where it left off.
    first.log().writing().await;
    drop(first);
    // Bounded, so that a broken takeover fails the test instead of hanging CI.
    tokio::time::timeout(std::time::Duration::from_secs(60), second.log().writing())
        .await
        .expect("the standby took over within a minute");
    assert!(*standby_ready.borrow_and_update(), "ready once it writes");
    assert_eq!(
        second
            .log()
            .append(entry(), "b-1".into())
            .await
            .unwrap()
            .index,
        2
    );
    let checkpoint = second.log().checkpoint().await.unwrap();
    assert_eq!(checkpoint.tree_size, 3);
}

#[tokio::test]
async fn every_audit_rpc_needs_a_token() {
    let db = schakel_kit::testing::TestDatabase::sqlite().unwrap();
    let app = spawn(db.url()).await;
    let mut c = schakel_proto::v1::audit_service_client::AuditServiceClient::new(
        app.server.channel(app.pki.client_tls()),
    );
    let results: Vec<(&str, Result<(), tonic::Status>)> = vec![
        (
            "GetLogInfo",
            c.get_log_info(pb::GetLogInfoRequest {}).await.map(drop),
        ),
        (
            "GetCheckpoint",
            c.get_checkpoint(pb::GetCheckpointRequest {})
                .await
                .map(drop),
        ),
        (
            "GetEntries",
            c.get_entries(pb::GetEntriesRequest::default())
                .await
                .map(drop),
        ),
        (
            "GetTile",
            c.get_tile(pb::GetTileRequest::default()).await.map(drop),
        ),
        (
            "GetPostings",
            c.get_postings(pb::GetPostingsRequest::default())
                .await
                .map(drop),
        ),
        (
            "ListCheckpoints",
            c.list_checkpoints(pb::ListCheckpointsRequest::default())
                .await
                .map(drop),
        ),
        (
            "GetInclusionProof",
            c.get_inclusion_proof(pb::GetInclusionProofRequest::default())
                .await
                .map(drop),
        ),
        (
            "GetConsistencyProof",
            c.get_consistency_proof(pb::GetConsistencyProofRequest::default())
                .await
                .map(drop),
        ),
        (
            "Query",
            c.query(pb::QueryRequest::default()).await.map(drop),
        ),
        (
            "SubjectReport",
            c.subject_report(pb::SubjectReportRequest::default())
                .await
                .map(drop),
        ),
        (
            "Append",
            c.append(pb::AppendRequest::default()).await.map(drop),
        ),
    ];
    for (rpc, result) in results {
        assert_eq!(
            result.expect_err(rpc).code(),
            Code::Unauthenticated,
            "{rpc}"
        );
    }
    // A token from a key the service does not trust is refused too.
    let stranger = schakel_kit::testing::TestIssuer::new();
    let forged = stranger.token(
        schakel_kit::auth::PrincipalKind::InternalService,
        "svc-broker",
        "",
        "",
        &[],
    );
    let status = app
        .client_with(forged)
        .append(pb::AppendRequest::default())
        .await
        .unwrap_err();
    assert_eq!(status.code(), Code::Unauthenticated);
    assert_eq!(app.checkpoint().await.tree_size, 0);
}
