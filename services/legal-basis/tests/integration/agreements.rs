//! Agreements over gRPC: who may manage them, their lifecycle (draft,
//! approved, superseded by an amendment, expired, revoked), validation that
//! changes nothing, and every change audited, failing closed. Each test runs
//! on SQLite and, when configured, on PostgreSQL.

use crate::common::*;
use schakel_kit::{auth::Role, testing::databases, time::to_timestamp};
use schakel_proto::v1 as pb;
use tonic::Code;

#[tokio::test]
async fn only_coordinators_manage_agreements_and_everyone_authenticated_reads_them() {
    for db in databases().await {
        let app = spawn(db.url()).await;
        let terms = app.terms(T0, 365);
        let team = app.as_user("team-caw", "caw", &[Role::TeamMember, Role::Casusregisseur]);
        let status = assert_code(
            team.clone()
                .create_agreement(pb::CreateAgreementRequest {
                    terms: Some(terms.clone()),
                })
                .await,
            Code::PermissionDenied,
        );
        assert_eq!(error_reason(&status), "ROLE_REQUIRED");
        assert_code(
            app.broker()
                .create_agreement(pb::CreateAgreementRequest {
                    terms: Some(terms.clone()),
                })
                .await,
            Code::PermissionDenied,
        );
        assert_code(
            app.anonymous()
                .list_agreements(pb::ListAgreementsRequest::default())
                .await,
            Code::Unauthenticated,
        );

        let id = app.in_force(terms).await;
        // Approving, amending and revoking are the coordinators' too.
        assert_code(
            team.clone()
                .revoke_agreement(pb::RevokeAgreementRequest {
                    agreement_id: id.clone(),
                    expected_version: 1,
                    reason: pb::RevocationReason::PartiesEnded as i32,
                    explanation: "x".into(),
                })
                .await,
            Code::PermissionDenied,
        );
        // A professional reads what the agreement covers.
        let read = team
            .clone()
            .get_agreement(pb::GetAgreementRequest {
                agreement_id: id.clone(),
                version: 0,
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(read.agreement.unwrap().agreement_id, id, "{}", db.label());
        let listed = team
            .clone()
            .list_agreements(pb::ListAgreementsRequest::default())
            .await
            .unwrap()
            .into_inner();
        assert_eq!(listed.agreements.len(), 1);
    }
}

#[tokio::test]
async fn a_draft_becomes_approved_with_the_prosecutors_reasoned_authorisation() {
    for db in databases().await {
        let app = spawn(db.url()).await;
        let created = app.create(app.terms(T0, 365)).await;
        assert_eq!(status(&created), pb::AgreementStatus::Draft);
        assert!(!created.in_force);
        assert_eq!(created.version, 1);
        assert_eq!(created.created_by, "coordinator-1");
        // The server filled in every party's partner type.
        let parties = &created.terms.as_ref().unwrap().parties;
        assert!(
            parties
                .iter()
                .any(|p| p.partner_type == "politie" && p.organisation_id == app.org("politie"))
        );
        // A draft is never a legal basis.
        let answer = app.check(question(&app.org("caw"), "triage")).await;
        assert!(!answer.allowed);
        assert_eq!(reason(&answer), pb::BasisDenialReason::NoAgreement);

        // The approval must give reasons and cannot be dated in the future.
        let mut approval = app.approval();
        approval.reasons = " ".into();
        let status_ = assert_code(
            app.second_coordinator()
                .approve_agreement(pb::ApproveAgreementRequest {
                    agreement_id: created.agreement_id.clone(),
                    version: 1,
                    approval: Some(approval),
                })
                .await,
            Code::InvalidArgument,
        );
        assert_eq!(bad_field(&status_), "approval.reasons");
        let mut approval = app.approval();
        approval.decided_at = Some(to_timestamp(T0 + DAY));
        let status_ = assert_code(
            app.second_coordinator()
                .approve_agreement(pb::ApproveAgreementRequest {
                    agreement_id: created.agreement_id.clone(),
                    version: 1,
                    approval: Some(approval),
                })
                .await,
            Code::InvalidArgument,
        );
        assert_eq!(bad_field(&status_), "approval.decided_at");

        let approved = app.approve(&created.agreement_id, 1).await;
        assert_eq!(status(&approved), pb::AgreementStatus::Approved);
        assert!(approved.in_force);
        let approval = approved.approval.unwrap();
        assert_eq!(approval.recorded_by, "coordinator-2");
        assert_eq!(approval.recorded_at.unwrap().seconds, T0);
        assert_eq!(approval.prosecutor_office, "Parket Leuven");
        let answer = app.check(question(&app.org("caw"), "triage")).await;
        assert!(answer.allowed, "{answer:?} on {}", db.label());
        assert_eq!(
            answer.agreement.unwrap(),
            pb::LegalBasisRef {
                agreement_id: created.agreement_id.clone(),
                agreement_version: 1
            }
        );
        assert_eq!(answer.valid_until.unwrap().seconds, T0 + 365 * DAY);

        // Approved versions are never edited in place.
        let status_ = assert_code(
            app.coordinator()
                .update_agreement_draft(pb::UpdateAgreementDraftRequest {
                    agreement_id: created.agreement_id.clone(),
                    version: 1,
                    terms: Some(app.terms(T0, 30)),
                    change_summary: String::new(),
                })
                .await,
            Code::FailedPrecondition,
        );
        assert_eq!(error_reason(&status_), "NOT_A_DRAFT");
        let status_ = assert_code(
            app.second_coordinator()
                .approve_agreement(pb::ApproveAgreementRequest {
                    agreement_id: created.agreement_id.clone(),
                    version: 1,
                    approval: Some(app.approval()),
                })
                .await,
            Code::FailedPrecondition,
        );
        assert_eq!(error_reason(&status_), "NOT_A_DRAFT");
        // Not even by writing to the database directly.
        let pool = app.service.database().pool();
        for sql in [
            "UPDATE agreement_versions SET valid_until = valid_until + 1",
            "DELETE FROM agreement_versions",
        ] {
            assert!(
                sqlx::query(sql).execute(pool).await.is_err(),
                "{sql} succeeded on {}",
                db.label()
            );
        }
        let after = app.get(&created.agreement_id, 1).await.agreement.unwrap();
        assert_eq!(after.terms, approved.terms);
    }
}

#[tokio::test]
async fn approval_needs_the_signed_document_and_a_validity_not_yet_over() {
    for db in databases().await {
        let app = spawn(db.url()).await;
        let mut terms = app.terms(T0, 365);
        terms.signed_document = None;
        let created = app.create(terms).await;
        let status_ = assert_code(
            app.second_coordinator()
                .approve_agreement(pb::ApproveAgreementRequest {
                    agreement_id: created.agreement_id.clone(),
                    version: 1,
                    approval: Some(app.approval()),
                })
                .await,
            Code::FailedPrecondition,
        );
        assert_eq!(error_reason(&status_), "SIGNED_DOCUMENT_REQUIRED");

        let old = app.create(app.terms(T0 - 400 * DAY, 365)).await;
        let status_ = assert_code(
            app.second_coordinator()
                .approve_agreement(pb::ApproveAgreementRequest {
                    agreement_id: old.agreement_id.clone(),
                    version: 1,
                    approval: Some(app.approval()),
                })
                .await,
            Code::FailedPrecondition,
        );
        assert_eq!(error_reason(&status_), "ALREADY_EXPIRED");
        assert_eq!(
            status(&app.get(&old.agreement_id, 0).await.agreement.unwrap()),
            pb::AgreementStatus::Draft,
            "{}",
            db.label()
        );
    }
}

#[tokio::test]
async fn invalid_terms_are_refused_naming_the_field_and_nothing_is_created() {
    for db in databases().await {
        let app = spawn(db.url()).await;
        let base = app.terms(T0, 365);
        let mut cases: Vec<(&str, pb::AgreementTerms)> = Vec::new();
        let mut t = base.clone();
        t.title = String::new();
        cases.push(("terms.title", t));
        let mut t = base.clone();
        t.districts = vec![];
        cases.push(("terms.districts", t));
        let mut t = base.clone();
        t.districts = vec!["Leuven!".into()];
        cases.push(("terms.districts", t));
        let mut t = base.clone();
        t.parties.truncate(1);
        cases.push(("terms.parties", t));
        let mut t = base.clone();
        t.parties[1].organisation_id = uuid::Uuid::new_v4().to_string();
        cases.push(("terms.parties", t));
        let mut t = base.clone();
        t.parties[1].organisation_id = t.parties[0].organisation_id.clone();
        cases.push(("terms.parties", t));
        let mut t = base.clone();
        t.statutory_purposes = vec![];
        cases.push(("terms.statutory_purposes", t));
        let mut t = base.clone();
        t.processing_purposes = vec!["triage".into(), "triage".into()];
        cases.push(("terms.processing_purposes", t));
        let mut t = base.clone();
        t.valid_until = t.valid_from;
        cases.push(("terms.valid_until", t));
        let mut t = base.clone();
        t.valid_until = None;
        cases.push(("terms.valid_until", t));
        let mut t = base.clone();
        t.scope = Some(pb::AgreementScope {
            tracks: vec![9],
            ..Default::default()
        });
        cases.push(("terms.scope.tracks", t));
        let mut t = base.clone();
        t.signed_document = Some(pb::SignedDocumentRef {
            sha256: vec![1; 20],
            location: String::new(),
        });
        cases.push(("terms.signed_document.sha256", t));
        for (field, terms) in cases {
            let status_ = assert_code(
                app.coordinator()
                    .create_agreement(pb::CreateAgreementRequest { terms: Some(terms) })
                    .await,
                Code::InvalidArgument,
            );
            assert_eq!(bad_field(&status_), field, "{status_:?}");
        }
        let listed = app
            .coordinator()
            .list_agreements(pb::ListAgreementsRequest::default())
            .await
            .unwrap()
            .into_inner();
        assert!(listed.agreements.is_empty(), "{}", db.label());
        assert!(app.audit_entries().await.is_empty());
    }
}

#[tokio::test]
async fn an_amendment_is_a_new_version_and_old_decisions_stay_explainable() {
    for db in databases().await {
        let app = spawn(db.url()).await;
        let mut terms = app.terms(T0, 365);
        let id = app.in_force(terms.clone()).await;
        let caw = app.org("caw");
        let before = app.check(question(&caw, "case_building")).await;
        assert_eq!(before.agreement.as_ref().unwrap().agreement_version, 1);

        // Amend: from day 10, the CAW is no longer a party.
        app.clock.advance(DAY);
        terms.parties.retain(|p| p.organisation_id != caw);
        terms.valid_from = Some(to_timestamp(T0 + 10 * DAY));
        let amend = |base: u32, summary: &str| {
            let mut client = app.coordinator();
            let request = pb::AmendAgreementRequest {
                agreement_id: id.clone(),
                base_version: base,
                terms: Some(terms.clone()),
                change_summary: summary.into(),
            };
            async move { client.amend_agreement(request).await }
        };
        let status_ = assert_code(amend(1, "").await, Code::InvalidArgument);
        assert_eq!(bad_field(&status_), "change_summary");
        let v2 = amend(1, "CAW treedt uit").await.unwrap().into_inner();
        let v2 = v2.agreement.unwrap();
        assert_eq!((v2.version, status(&v2)), (2, pb::AgreementStatus::Draft));
        // Only the latest approved version can be amended, once at a time.
        let status_ = assert_code(amend(1, "again").await, Code::FailedPrecondition);
        assert_eq!(error_reason(&status_), "NOT_LATEST_APPROVED");
        // The draft amendment changes nothing yet.
        let during = app.check(question(&caw, "triage")).await;
        assert!(during.allowed);
        assert_eq!(during.agreement.as_ref().unwrap().agreement_version, 1);

        app.approve(&id, 2).await;
        let approved_at = app.clock.now();
        // Approved but not yet valid: version 1 stays in force until day 10.
        let listed = app.get(&id, 0).await;
        assert_eq!(
            listed
                .versions
                .iter()
                .map(|v| (v.version, v.status))
                .collect::<Vec<_>>(),
            vec![
                (1, pb::AgreementStatus::Approved as i32),
                (2, pb::AgreementStatus::Approved as i32)
            ]
        );
        assert!(!listed.agreement.unwrap().in_force);
        assert!(app.check(question(&caw, "triage")).await.allowed);

        app.clock.advance(9 * DAY);
        let after = app.check(question(&caw, "triage")).await;
        assert!(!after.allowed, "{}", db.label());
        assert_eq!(reason(&after), pb::BasisDenialReason::NotAParty);
        let politie = app.check(question(&app.org("politie"), "triage")).await;
        assert_eq!(politie.agreement.unwrap().agreement_version, 2);
        let got = app.get(&id, 0).await;
        assert_eq!(
            got.versions.iter().map(|v| v.status).collect::<Vec<_>>(),
            vec![
                pb::AgreementStatus::Superseded as i32,
                pb::AgreementStatus::Approved as i32
            ]
        );

        // The decision made before is explainable: version 1 is kept as it
        // was, and asking about that moment gives the same answer.
        let v1 = app.get(&id, 1).await.agreement.unwrap();
        assert!(
            v1.terms
                .unwrap()
                .parties
                .iter()
                .any(|p| p.organisation_id == caw)
        );
        let mut past = question(&caw, "triage");
        past.at = Some(to_timestamp(approved_at - 1));
        let replay = app.check(past).await;
        assert!(replay.allowed);
        assert_eq!(replay.agreement.unwrap().agreement_version, 1);

        let actions: Vec<i32> = app.audit_entries().await.iter().map(|e| e.action).collect();
        assert_eq!(
            actions,
            [
                pb::AuditAction::AgreementCreate,
                pb::AuditAction::AgreementApprove,
                pb::AuditAction::AgreementAmend,
                pb::AuditAction::AgreementApprove
            ]
            .map(|a| a as i32)
        );
    }
}

#[tokio::test]
async fn a_draft_can_be_edited_until_approved() {
    for db in databases().await {
        let app = spawn(db.url()).await;
        let created = app.create(app.terms(T0, 365)).await;
        let mut terms = app.terms(T0, 180);
        terms.processing_purposes = vec!["triage".into()];
        let updated = app
            .coordinator()
            .update_agreement_draft(pb::UpdateAgreementDraftRequest {
                agreement_id: created.agreement_id.clone(),
                version: 1,
                terms: Some(terms.clone()),
                change_summary: "alleen triage".into(),
            })
            .await
            .unwrap()
            .into_inner()
            .agreement
            .unwrap();
        assert_eq!(
            updated.terms.as_ref().unwrap().processing_purposes,
            vec!["triage"]
        );
        app.approve(&created.agreement_id, 1).await;
        let answer = app.check(question(&app.org("vk"), "case_building")).await;
        assert_eq!(
            reason(&answer),
            pb::BasisDenialReason::PurposeNotCovered,
            "{}",
            db.label()
        );
        let entries = app.audit_entries().await;
        assert_eq!(
            entries[1].action,
            pb::AuditAction::AgreementUpdateDraft as i32
        );
    }
}

#[tokio::test]
async fn revocation_ends_every_version_at_once() {
    for db in databases().await {
        let app = spawn(db.url()).await;
        let id = app.in_force(app.terms(T0, 365)).await;
        let revoke = |expected: u32| {
            let mut client = app.coordinator();
            let request = pb::RevokeAgreementRequest {
                agreement_id: id.clone(),
                expected_version: expected,
                reason: pb::RevocationReason::ProsecutorWithdrew as i32,
                explanation: "Machtiging ingetrokken door het parket.".into(),
            };
            async move { client.revoke_agreement(request).await }
        };
        let status_ = assert_code(revoke(2).await, Code::FailedPrecondition);
        assert_eq!(error_reason(&status_), "NOT_LATEST_VERSION");
        app.clock.advance(3600);
        let revoked = revoke(1).await.unwrap().into_inner().agreement.unwrap();
        assert_eq!(status(&revoked), pb::AgreementStatus::Revoked);
        assert!(!revoked.in_force);
        let revocation = revoked.revocation.unwrap();
        assert_eq!(revocation.revoked_at.unwrap().seconds, T0 + 3600);
        assert_eq!(revocation.revoked_by, "coordinator-1");

        let answer = app.check(question(&app.org("politie"), "triage")).await;
        assert_eq!(
            reason(&answer),
            pb::BasisDenialReason::Revoked,
            "{}",
            db.label()
        );
        assert_eq!(answer.agreement.unwrap().agreement_id, id);
        // Before the revocation, there was a basis.
        let mut past = question(&app.org("politie"), "triage");
        past.at = Some(to_timestamp(T0 + 3599));
        assert!(app.check(past).await.allowed);

        let status_ = assert_code(revoke(1).await, Code::FailedPrecondition);
        assert_eq!(error_reason(&status_), "REVOKED");
        let status_ = assert_code(
            app.coordinator()
                .amend_agreement(pb::AmendAgreementRequest {
                    agreement_id: id.clone(),
                    base_version: 1,
                    terms: Some(app.terms(T0, 365)),
                    change_summary: "try".into(),
                })
                .await,
            Code::FailedPrecondition,
        );
        assert_eq!(error_reason(&status_), "REVOKED");
        // The audit entry has the reason code, not the explanation.
        let entries = app.audit_entries().await;
        let last = entries.last().unwrap();
        assert_eq!(last.action, pb::AuditAction::AgreementRevoke as i32);
        assert!(
            last.attributes
                .iter()
                .any(|a| a.key == "reason" && a.value == "REVOCATION_REASON_PROSECUTOR_WITHDREW")
        );
        let bytes = app.audit_bytes().await;
        for secret in ["Machtiging", "Procureur Testnaam", "Samenwerkingsakkoord"] {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{secret} is in the audit log"
            );
        }
    }
}

#[tokio::test]
async fn expiry_is_exact_at_the_boundary() {
    for db in databases().await {
        let app = spawn(db.url()).await;
        let id = app.in_force(app.terms(T0, 30)).await;
        let end = T0 + 30 * DAY;
        app.clock.advance(end - 1 - T0);
        assert!(app.check(question(&app.org("ggz"), "triage")).await.allowed);
        assert!(app.get(&id, 0).await.agreement.unwrap().in_force);
        app.clock.advance(1);
        let answer = app.check(question(&app.org("ggz"), "triage")).await;
        assert_eq!(
            reason(&answer),
            pb::BasisDenialReason::Expired,
            "{}",
            db.label()
        );
        let agreement = app.get(&id, 0).await.agreement.unwrap();
        assert_eq!(status(&agreement), pb::AgreementStatus::Expired);
        assert!(!agreement.in_force);
    }
}

/// With the log down, a change commits with its entry staged (the reply
/// says so); from then on nothing changes until the log has taken the
/// staged entry, which it gets exactly once.
#[tokio::test]
async fn a_change_while_the_audit_log_is_down_is_logged_once_it_is_back() {
    for db in databases().await {
        let app = spawn(db.url()).await;
        let draft = app.create(app.terms(T0, 365)).await;
        let approvals = || async {
            app.audit_entries()
                .await
                .into_iter()
                .filter(|e| e.action == pb::AuditAction::AgreementApprove as i32)
                .count()
        };
        app.sink.set_down(true);
        let pending = assert_code(
            app.second_coordinator()
                .approve_agreement(pb::ApproveAgreementRequest {
                    agreement_id: draft.agreement_id.clone(),
                    version: 1,
                    approval: Some(app.approval()),
                })
                .await,
            Code::Unavailable,
        );
        assert_eq!(error_reason(&pending), "AUDIT_PENDING");
        // The approval took effect; its entry waits in the outbox.
        assert!(app.check(question(&app.org("caw"), "triage")).await.allowed);
        assert_eq!(approvals().await, 0, "{}", db.label());
        assert_eq!(app.service.audit_outbox().pending().await.unwrap(), 1);
        // Further changes are refused, and change nothing.
        let refused = assert_code(
            app.coordinator()
                .create_agreement(pb::CreateAgreementRequest {
                    terms: Some(app.terms(T0, 365)),
                })
                .await,
            Code::Unavailable,
        );
        assert_eq!(error_reason(&refused), "AUDIT_UNAVAILABLE");
        let listed = app
            .coordinator()
            .list_agreements(pb::ListAgreementsRequest::default())
            .await
            .unwrap()
            .into_inner()
            .agreements;
        assert_eq!(listed.len(), 1, "{}", db.label());
        // The log is back: the staged entry goes in once, and changes resume.
        app.sink.set_down(false);
        let outbox = app.service.audit_outbox();
        assert_eq!(outbox.drain(std::time::Duration::ZERO).await.unwrap(), 1);
        assert_eq!(outbox.drain(std::time::Duration::ZERO).await.unwrap(), 0);
        assert_eq!(approvals().await, 1, "{}", db.label());
        app.create(app.terms(T0, 365)).await;
    }
}

#[tokio::test]
async fn agreements_are_listed_by_filter_and_page() {
    for db in databases().await {
        let app = spawn(db.url()).await;
        let leuven = app.in_force(app.terms(T0, 365)).await;
        let mut brugge = app.terms(T0 + 100 * DAY, 365);
        brugge.districts = vec!["brugge".into()];
        brugge
            .parties
            .retain(|p| p.organisation_id != app.org("ocj"));
        let brugge = app.in_force(brugge).await;
        let draft = app.create(app.terms(T0, 10)).await.agreement_id;
        let list = |request: pb::ListAgreementsRequest| {
            let mut client = app.coordinator();
            async move {
                let mut ids: Vec<String> = client
                    .list_agreements(request)
                    .await
                    .unwrap()
                    .into_inner()
                    .agreements
                    .into_iter()
                    .map(|a| a.agreement_id)
                    .collect();
                ids.sort();
                ids
            }
        };
        let sorted = |mut v: Vec<String>| {
            v.sort();
            v
        };
        assert_eq!(
            list(pb::ListAgreementsRequest {
                district: "brugge".into(),
                ..Default::default()
            })
            .await,
            vec![brugge.clone()]
        );
        assert_eq!(
            list(pb::ListAgreementsRequest {
                party_organisation_id: app.org("ocj"),
                ..Default::default()
            })
            .await,
            sorted(vec![leuven.clone(), draft.clone()])
        );
        assert_eq!(
            list(pb::ListAgreementsRequest {
                statuses: vec![pb::AgreementStatus::Draft as i32],
                ..Default::default()
            })
            .await,
            vec![draft.clone()]
        );
        assert_eq!(
            list(pb::ListAgreementsRequest {
                in_force_at: Some(to_timestamp(T0 + DAY)),
                ..Default::default()
            })
            .await,
            vec![leuven.clone()],
            "{}",
            db.label()
        );
        // Pages of one, in id order, covering everything once.
        let mut seen = Vec::new();
        let mut token = String::new();
        loop {
            let page = app
                .coordinator()
                .list_agreements(pb::ListAgreementsRequest {
                    page: Some(pb::PageRequest {
                        page_size: 1,
                        page_token: token,
                    }),
                    ..Default::default()
                })
                .await
                .unwrap()
                .into_inner();
            seen.extend(page.agreements.into_iter().map(|a| a.agreement_id));
            if page.next_page_token.is_empty() {
                break;
            }
            token = page.next_page_token;
        }
        assert_eq!(seen, sorted(vec![leuven, brugge, draft]));
    }
}

/// Several instances starting at once against one fresh database each create
/// and migrate the schema exactly once, and all of them work.
#[tokio::test]
async fn instances_starting_at_once_migrate_once() {
    for db in databases().await {
        let directory = || {
            std::sync::Arc::new(schakel_legal_basis::FixedDirectory::default())
                as std::sync::Arc<dyn schakel_legal_basis::Organisations>
        };
        // Starting changes nothing that needs auditing.
        let sink = std::sync::Arc::new(schakel_kit::audit::OfflineSink);
        let starts = (0..4).map(|_| {
            schakel_legal_basis::LegalBasis::connect(
                db.url(),
                schakel_kit::time::Clock::manual(T0),
                sink.clone(),
                directory(),
            )
        });
        let instances = futures::future::try_join_all(starts).await.unwrap();
        for instance in &instances {
            use sqlx::Row;
            let applied = sqlx::query("SELECT COUNT(*) AS n FROM _sqlx_migrations")
                .fetch_one(instance.database().pool())
                .await
                .unwrap()
                .try_get::<i64, _>("n")
                .unwrap();
            assert_eq!(applied, 4, "{}", db.label());
        }
    }
}

#[tokio::test]
async fn approval_needs_a_coordinator_other_than_the_drafts_writer() {
    for db in databases().await {
        let app = spawn(db.url()).await;
        let created = app.create(app.terms(T0, 365)).await;
        assert_eq!(created.edited_by, "coordinator-1");
        let approve = |client: Client| {
            let id = created.agreement_id.clone();
            let approval = app.approval();
            async move {
                client
                    .clone()
                    .approve_agreement(pb::ApproveAgreementRequest {
                        agreement_id: id,
                        version: 1,
                        approval: Some(approval),
                    })
                    .await
            }
        };
        let status_ = assert_code(approve(app.coordinator()).await, Code::PermissionDenied);
        assert_eq!(error_reason(&status_), "FOUR_EYES", "{}", db.label());
        // The second coordinator changes the terms: now they wrote them, and
        // the first coordinator reviews and approves.
        let updated = app
            .second_coordinator()
            .update_agreement_draft(pb::UpdateAgreementDraftRequest {
                agreement_id: created.agreement_id.clone(),
                version: 1,
                terms: Some(app.terms(T0, 200)),
                change_summary: String::new(),
            })
            .await
            .unwrap()
            .into_inner()
            .agreement
            .unwrap();
        assert_eq!(updated.edited_by, "coordinator-2");
        let status_ = assert_code(
            approve(app.second_coordinator()).await,
            Code::PermissionDenied,
        );
        assert_eq!(error_reason(&status_), "FOUR_EYES");
        let approved = approve(app.coordinator()).await.unwrap().into_inner();
        let approved = approved.agreement.unwrap();
        assert_eq!(status(&approved), pb::AgreementStatus::Approved);
        assert_eq!(approved.approval.unwrap().recorded_by, "coordinator-1");
        // An amendment written by the first coordinator needs the second.
        let amended = app
            .coordinator()
            .amend_agreement(pb::AmendAgreementRequest {
                agreement_id: created.agreement_id.clone(),
                base_version: 1,
                terms: Some(app.terms(T0, 300)),
                change_summary: "Langere looptijd".into(),
            })
            .await
            .unwrap()
            .into_inner()
            .agreement
            .unwrap();
        let status_ = assert_code(
            app.coordinator()
                .approve_agreement(pb::ApproveAgreementRequest {
                    agreement_id: created.agreement_id.clone(),
                    version: amended.version,
                    approval: Some(app.approval()),
                })
                .await,
            Code::PermissionDenied,
        );
        assert_eq!(error_reason(&status_), "FOUR_EYES");
        app.approve(&created.agreement_id, amended.version).await;
    }
}
