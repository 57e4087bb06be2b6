//! An entry for a change exists if and only if the change committed, and no
//! lock is held while the log is called (the transactional outbox).

use std::sync::Arc;

use crate::common::*;
use schakel_kit::testing::{GatedSink, LostReplySink, databases, fail_commits_writing};
use schakel_proto::v1 as pb;

async fn entries_of(app: &TestApp, action: pb::AuditAction) -> usize {
    app.audit_entries()
        .await
        .iter()
        .filter(|e| e.action == action as i32)
        .count()
}

fn revocation(id: &str) -> pb::RevokeAgreementRequest {
    pb::RevokeAgreementRequest {
        agreement_id: id.into(),
        expected_version: 1,
        reason: pb::RevocationReason::PartiesEnded as i32,
        explanation: "Machtiging ingetrokken door het parket.".into(),
    }
}

/// The worst case of appending before committing: the log says an agreement
/// was revoked while CheckBasis keeps allowing it.
#[tokio::test]
async fn a_revocation_whose_commit_fails_is_not_in_the_log() {
    for db in databases().await {
        let app = spawn(db.url()).await;
        let id = app.in_force(app.terms(T0, 365)).await;
        fail_commits_writing(app.service.database(), "agreements")
            .await
            .unwrap();
        let status = app
            .coordinator()
            .revoke_agreement(revocation(&id))
            .await
            .unwrap_err();
        assert_eq!(status.code(), tonic::Code::Internal, "{}", db.label());
        assert!(app.check(question(&app.org("caw"), "triage")).await.allowed);
        assert_eq!(
            entries_of(&app, pb::AuditAction::AgreementRevoke).await,
            0,
            "no entry for a revocation that did not happen ({})",
            db.label()
        );
    }
}

/// An append whose reply was lost after the log committed it is retried
/// under the same append id: one entry, and the change stands.
#[tokio::test]
async fn an_append_whose_reply_was_lost_is_one_entry() {
    for db in databases().await {
        let app = spawn_wrapped(db.url(), |log| Arc::new(LostReplySink::new(log, 1))).await;
        let created = app.create(app.terms(T0, 365)).await;
        assert_eq!(
            entries_of(&app, pb::AuditAction::AgreementCreate).await,
            1,
            "{}",
            db.label()
        );
        let listed = app
            .coordinator()
            .list_agreements(pb::ListAgreementsRequest::default())
            .await
            .unwrap()
            .into_inner()
            .agreements;
        assert_eq!(listed.len(), 1);
        assert_eq!(listed[0].agreement_id, created.agreement_id);
    }
}

/// While one change's append hangs on the network, another change to the
/// same agreements table commits: the first holds no lock while it waits.
#[tokio::test]
async fn no_lock_is_held_while_the_log_is_called() {
    for db in databases().await {
        let gate = Arc::new(std::sync::OnceLock::<Arc<GatedSink>>::new());
        let wrap = {
            let gate = gate.clone();
            move |log| {
                let gated = Arc::new(GatedSink::new(log));
                let _ = gate.set(gated.clone());
                gated as Arc<dyn schakel_kit::audit::AuditSink>
            }
        };
        let app = spawn_wrapped(db.url(), wrap).await;
        let gate = gate.get().unwrap().clone();
        gate.set_open(true);
        let id = app.in_force(app.terms(T0, 365)).await;
        gate.set_open(false);
        let mut first = app.coordinator();
        let revoking = tokio::spawn(async move { first.revoke_agreement(revocation(&id)).await });
        gate.arrived(1).await;
        // The revocation waits at the log. A second change goes through the
        // database meanwhile and reaches the log too.
        let mut second = app.coordinator();
        let terms = app.terms(T0, 365);
        let creating = tokio::spawn(async move {
            second
                .create_agreement(pb::CreateAgreementRequest { terms: Some(terms) })
                .await
        });
        tokio::time::timeout(std::time::Duration::from_secs(30), gate.arrived(2))
            .await
            .expect("the second change was blocked by the first one's lock");
        gate.set_open(true);
        revoking.await.unwrap().unwrap();
        creating.await.unwrap().unwrap();
        assert_eq!(entries_of(&app, pb::AuditAction::AgreementRevoke).await, 1);
        assert_eq!(entries_of(&app, pb::AuditAction::AgreementCreate).await, 2);
    }
}
