//! CheckBasis over gRPC: every denial reason, the dossier cap under
//! concurrency, informing the client system, and who may ask. Each test runs
//! on SQLite and, when configured, on PostgreSQL, with a manual clock.

use crate::common::*;
use schakel_kit::{auth::Role, testing::databases, time::to_timestamp};
use schakel_proto::v1 as pb;
use tonic::Code;

use pb::BasisDenialReason as R;

#[tokio::test]
async fn every_denial_reason_is_reported_precisely() {
    for db in databases().await {
        let app = spawn(db.url()).await;
        let caw = app.org("caw");
        assert_eq!(
            reason(&app.check(question(&caw, "triage")).await),
            R::NoAgreement
        );

        let mut terms = app.terms(T0, 365);
        terms.processing_purposes = vec!["triage".into(), "case_building".into()];
        terms.scope = Some(pb::AgreementScope {
            max_dossiers: 0,
            tracks: vec![
                pb::Track::CaseSupport as i32,
                pb::Track::ChainApproach as i32,
            ],
            violence_forms: vec!["partnergeweld".into(), "kindermishandeling".into()],
        });
        let id = app.in_force(terms).await;

        let allowed = app.check(question(&caw, "triage")).await;
        assert!(allowed.allowed, "{allowed:?} on {}", db.label());
        assert_eq!(allowed.denial_reason, 0);
        assert_eq!(allowed.checked_at.unwrap().seconds, T0);

        let cases: Vec<(R, pb::CheckBasisRequest)> = vec![
            (R::NotAParty, question(&app.org("outsider"), "triage")),
            (R::PurposeNotCovered, question(&caw, "follow_up")),
            (R::DistrictNotCovered, {
                let mut q = question(&caw, "triage");
                q.dossier.as_mut().unwrap().district = "gent".into();
                q
            }),
            (R::ScopeNotCovered, {
                let mut q = question(&caw, "triage");
                q.dossier.as_mut().unwrap().track = pb::Track::Consult as i32;
                q
            }),
            (R::ScopeNotCovered, {
                let mut q = question(&caw, "triage");
                q.dossier.as_mut().unwrap().violence_forms = vec!["ouderenmishandeling".into()];
                q
            }),
        ];
        for (expected, request) in cases {
            let answer = app.check(request.clone()).await;
            let want = expected;
            assert!(!answer.allowed, "{request:?}");
            assert_eq!(reason(&answer), want, "{request:?} on {}", db.label());
            let names_agreement = !matches!(want, R::NoAgreement | R::NotAParty);
            assert_eq!(answer.agreement.is_some(), names_agreement, "{answer:?}");
            if names_agreement {
                assert_eq!(answer.agreement.unwrap().agreement_id, id);
            }
        }

        // Asked about a moment before the approval was recorded, there was no
        // approved agreement at all.
        let mut before = question(&caw, "triage");
        before.at = Some(to_timestamp(T0 - 1));
        assert_eq!(reason(&app.check(before).await), R::NoAgreement);

        // An agreement approved now that starts later: not yet valid.
        let mut later = app.terms(T0 + 30 * DAY, 365);
        later.districts = vec!["brugge".into()];
        let later_id = app.in_force(later).await;
        let mut q = question(&caw, "triage");
        q.dossier.as_mut().unwrap().district = "brugge".into();
        let answer = app.check(q.clone()).await;
        assert_eq!(reason(&answer), R::NotYetValid, "{}", db.label());
        assert_eq!(answer.agreement.unwrap().agreement_id, later_id);
        app.clock.advance(30 * DAY);
        assert!(app.check(q).await.allowed);

        // Expired and revoked are covered at their boundary in agreements.rs;
        // here, that they are reported through CheckBasis with the agreement.
        app.clock.advance(335 * DAY);
        let answer = app.check(question(&caw, "triage")).await;
        assert_eq!(reason(&answer), R::Expired);
        assert_eq!(answer.agreement.unwrap().agreement_id, id);
        app.coordinator()
            .revoke_agreement(pb::RevokeAgreementRequest {
                agreement_id: later_id.clone(),
                expected_version: 1,
                reason: pb::RevocationReason::PartiesEnded as i32,
                explanation: "Einde pilot.".into(),
            })
            .await
            .unwrap();
        let mut q = question(&caw, "triage");
        q.dossier.as_mut().unwrap().district = "brugge".into();
        let answer = app.check(q).await;
        assert_eq!(reason(&answer), R::Revoked);
        assert_eq!(answer.agreement.unwrap().agreement_id, later_id);
    }
}

#[tokio::test]
async fn the_candidate_that_passed_most_checks_names_the_reason() {
    for db in databases().await {
        let app = spawn(db.url()).await;
        // Two agreements cover leuven: one only for triage, one for every
        // purpose but partner violence only.
        let mut triage_only = app.terms(T0, 365);
        triage_only.processing_purposes = vec!["triage".into()];
        app.in_force(triage_only).await;
        let mut partner_violence = app.terms(T0, 365);
        partner_violence.scope = Some(pb::AgreementScope {
            violence_forms: vec!["partnergeweld".into()],
            ..Default::default()
        });
        let pv = app.in_force(partner_violence).await;
        let mut q = question(&app.org("politie"), "case_direction");
        q.dossier.as_mut().unwrap().violence_forms = vec!["kindermishandeling".into()];
        let answer = app.check(q).await;
        // The second got past the purpose check, so its scope is the reason.
        assert_eq!(reason(&answer), R::ScopeNotCovered, "{}", db.label());
        assert_eq!(answer.agreement.unwrap().agreement_id, pv);
    }
}

#[tokio::test]
async fn the_dossier_cap_counts_new_dossiers_once_and_never_overshoots() {
    for db in databases().await {
        let app = spawn(db.url()).await;
        let mut terms = app.terms(T0, 365);
        terms.scope = Some(pb::AgreementScope {
            max_dossiers: 5,
            ..Default::default()
        });
        let id = app.in_force(terms).await;
        let politie = app.org("politie");
        // Twelve registrations at once for five places.
        let mut tasks = Vec::new();
        for _ in 0..12 {
            let mut client = app.broker();
            let mut q = question(&politie, "triage");
            q.count_dossier = true;
            tasks.push(tokio::spawn(async move {
                let answer = client.check_basis(q.clone()).await.unwrap().into_inner();
                (q, answer)
            }));
        }
        let mut counted = Vec::new();
        for task in tasks {
            let (q, answer) = task.await.unwrap();
            if answer.allowed {
                counted.push(q);
            } else {
                assert_eq!(reason(&answer), R::DossierCapReached, "{}", db.label());
                assert_eq!(answer.agreement.unwrap().agreement_id, id);
            }
        }
        assert_eq!(counted.len(), 5, "{}", db.label());
        let agreement = app.get(&id, 0).await.agreement.unwrap();
        assert_eq!(agreement.dossier_count, 5);

        // A counted dossier is not new: it is covered again, without counting.
        let mut again = counted[0].clone();
        let answer = app.check(again.clone()).await;
        assert!(answer.allowed, "{answer:?}");
        again.count_dossier = false;
        assert!(app.check(again).await.allowed);
        // Reads of any dossier are not limited by the cap.
        assert!(app.check(question(&politie, "triage")).await.allowed);
        assert_eq!(app.get(&id, 0).await.agreement.unwrap().dossier_count, 5);
    }
}

fn with_people(
    mut q: pb::CheckBasisRequest,
    victims: &[&str],
    perpetrators: &[&str],
) -> pb::CheckBasisRequest {
    let dossier = q.dossier.as_mut().unwrap();
    dossier.victim_person_ids = victims.iter().map(|s| (*s).to_owned()).collect();
    dossier.perpetrator_person_ids = perpetrators.iter().map(|s| (*s).to_owned()).collect();
    q
}

#[tokio::test]
async fn beyond_triage_the_victim_is_informed_and_the_perpetrator_informed_or_deferred() {
    for db in databases().await {
        let app = spawn(db.url()).await;
        app.in_force(app.terms(T0, 365)).await;
        let caw = app.org("caw");
        let victim = uuid::Uuid::new_v4().to_string();
        let child = uuid::Uuid::new_v4().to_string();
        let perpetrator = uuid::Uuid::new_v4().to_string();
        let q = with_people(
            question(&caw, "case_building"),
            &[&victim, &child],
            &[&perpetrator],
        );
        let dossier_id = q.dossier.as_ref().unwrap().dossier_id.clone();

        // Triage needs no informing, unless the caller (the broker, from the
        // dossier's phase) says it does; and the other way round.
        let mut triage = q.clone();
        triage.purpose = "triage".into();
        assert!(app.check(triage.clone()).await.allowed);
        triage.informing = pb::InformingRequirement::Required as i32;
        assert_eq!(reason(&app.check(triage).await), R::ClientNotInformed);
        let mut unchecked = q.clone();
        unchecked.informing = pb::InformingRequirement::NotRequired as i32;
        assert!(app.check(unchecked).await.allowed);

        let answer = app.check(q.clone()).await;
        assert_eq!(reason(&answer), R::ClientNotInformed, "{}", db.label());
        let mut missing = vec![victim.clone(), child.clone(), perpetrator.clone()];
        missing.sort();
        assert_eq!(answer.uninformed_person_ids, missing);

        let professional = pb::Actor {
            subject: "user-caw-1".into(),
            kind: pb::PrincipalKind::User as i32,
            organisation_id: caw.clone(),
            partner_type: "caw".into(),
            roles: vec![pb::Role::TeamMember as i32],
        };
        let record = |person: &str, details: pb::InformingDetails| {
            let mut client = app.broker();
            let request = pb::RecordInformingRequest {
                dossier_id: dossier_id.clone(),
                person_id: person.into(),
                details: Some(details),
                on_behalf_of: Some(professional.clone()),
                trace_id: String::new(),
            };
            async move { client.record_informing(request).await }
        };
        let informed = pb::InformingDetails {
            state: pb::InformingState::Informed as i32,
            informed_at: Some(to_timestamp(T0 - 3600)),
            method: pb::InformingMethod::InPerson as i32,
            ..Default::default()
        };
        let deferred = pb::InformingDetails {
            state: pb::InformingState::Deferred as i32,
            deferral_reason: pb::DeferralReason::SafetyOfVictim as i32,
            deferral_explanation: "Pleger is gewelddadig bij contact; team beslist later.".into(),
            review_at: Some(to_timestamp(T0 + 14 * DAY)),
            ..Default::default()
        };
        let saved = record(&victim, informed.clone())
            .await
            .unwrap()
            .into_inner();
        let saved = saved.record.unwrap();
        assert_eq!(
            saved.details.as_ref().unwrap().informed_by_organisation_id,
            caw,
            "the professional's organisation informed by default"
        );
        // A deferred victim is not informed: safety for the victim means
        // telling the victim.
        record(&child, deferred.clone()).await.unwrap();
        record(&perpetrator, deferred.clone()).await.unwrap();
        let answer = app.check(q.clone()).await;
        assert_eq!(reason(&answer), R::ClientNotInformed);
        assert_eq!(answer.uninformed_person_ids, vec![child.clone()]);

        record(&child, informed.clone()).await.unwrap();
        let answer = app.check(q.clone()).await;
        assert!(answer.allowed, "{answer:?} on {}", db.label());

        // The latest record counts: set back to not informed, denied again.
        record(
            &perpetrator,
            pb::InformingDetails {
                state: pb::InformingState::NotInformed as i32,
                ..Default::default()
            },
        )
        .await
        .unwrap();
        let answer = app.check(q.clone()).await;
        assert_eq!(answer.uninformed_person_ids, vec![perpetrator.clone()]);

        // History is kept: latest per person first, then older ones.
        let records = app
            .broker()
            .list_informing_records(pb::ListInformingRecordsRequest {
                dossier_id: dossier_id.clone(),
                include_history: true,
            })
            .await
            .unwrap()
            .into_inner()
            .records;
        assert_eq!(records.len(), 5);
        let latest_only = app
            .broker()
            .list_informing_records(pb::ListInformingRecordsRequest {
                dossier_id: dossier_id.clone(),
                include_history: false,
            })
            .await
            .unwrap()
            .into_inner()
            .records;
        assert_eq!(latest_only.len(), 3);
        // Append-only, in the database too.
        assert!(
            sqlx::query("UPDATE informing_records SET state = 2")
                .execute(app.service.database().pool())
                .await
                .is_err()
        );

        // Audited as the professional, with codes, never the explanation.
        let entries = app.audit_entries().await;
        let informing: Vec<_> = entries
            .iter()
            .filter(|e| e.action == pb::AuditAction::InformingRecord as i32)
            .collect();
        assert_eq!(informing.len(), 5);
        assert_eq!(informing[0].actor.as_ref().unwrap().subject, "user-caw-1");
        let target = informing[0].target.as_ref().unwrap();
        assert_eq!(target.dossier_id, dossier_id);
        assert_eq!(target.person_ids, vec![victim.clone()]);
        let bytes = app.audit_bytes().await;
        assert!(!bytes.windows(7).any(|w| w == b"Pleger "));
    }
}

#[tokio::test]
async fn informing_records_are_validated_and_nothing_is_stored_when_refused() {
    for db in databases().await {
        let app = spawn(db.url()).await;
        let dossier_id = uuid::Uuid::new_v4().to_string();
        let person = uuid::Uuid::new_v4().to_string();
        let actor = pb::Actor {
            subject: "user-vk-1".into(),
            organisation_id: app.org("vk"),
            ..Default::default()
        };
        let cases = [
            (
                "details.review_at",
                pb::InformingDetails {
                    state: pb::InformingState::Deferred as i32,
                    deferral_reason: pb::DeferralReason::SafetyOfChildren as i32,
                    ..Default::default()
                },
            ),
            (
                "details.review_at",
                pb::InformingDetails {
                    state: pb::InformingState::Deferred as i32,
                    deferral_reason: pb::DeferralReason::SafetyOfChildren as i32,
                    review_at: Some(to_timestamp(T0)),
                    ..Default::default()
                },
            ),
            (
                "details.method",
                pb::InformingDetails {
                    state: pb::InformingState::Informed as i32,
                    informed_at: Some(to_timestamp(T0)),
                    ..Default::default()
                },
            ),
            (
                "details.informed_at",
                pb::InformingDetails {
                    state: pb::InformingState::Informed as i32,
                    informed_at: Some(to_timestamp(T0 + DAY)),
                    method: pb::InformingMethod::Phone as i32,
                    ..Default::default()
                },
            ),
            (
                "details",
                pb::InformingDetails {
                    state: pb::InformingState::Informed as i32,
                    informed_at: Some(to_timestamp(T0)),
                    method: pb::InformingMethod::Phone as i32,
                    review_at: Some(to_timestamp(T0 + DAY)),
                    ..Default::default()
                },
            ),
            ("details.state", pb::InformingDetails::default()),
        ];
        for (field, details) in cases {
            let status_ = assert_code(
                app.broker()
                    .record_informing(pb::RecordInformingRequest {
                        dossier_id: dossier_id.clone(),
                        person_id: person.clone(),
                        details: Some(details),
                        on_behalf_of: Some(actor.clone()),
                        trace_id: String::new(),
                    })
                    .await,
                Code::InvalidArgument,
            );
            assert_eq!(bad_field(&status_), field, "{status_:?}");
        }
        let status_ = assert_code(
            app.broker()
                .record_informing(pb::RecordInformingRequest {
                    dossier_id: dossier_id.clone(),
                    person_id: "Jan Janssens".into(),
                    details: None,
                    on_behalf_of: Some(actor.clone()),
                    trace_id: String::new(),
                })
                .await,
            Code::InvalidArgument,
        );
        assert_eq!(bad_field(&status_), "person_id");
        let records = app
            .broker()
            .list_informing_records(pb::ListInformingRecordsRequest {
                dossier_id,
                include_history: true,
            })
            .await
            .unwrap()
            .into_inner()
            .records;
        assert!(records.is_empty(), "{}", db.label());
        assert!(app.audit_entries().await.is_empty());
    }
}

#[tokio::test]
async fn only_schakels_services_record_informing_and_count_dossiers() {
    for db in databases().await {
        let app = spawn(db.url()).await;
        app.in_force(app.terms(T0, 365)).await;
        let team = app.as_user("team-caw", "caw", &[Role::TeamMember]);
        let coordinator = app.coordinator();
        let request = pb::RecordInformingRequest {
            dossier_id: uuid::Uuid::new_v4().to_string(),
            person_id: uuid::Uuid::new_v4().to_string(),
            details: None,
            on_behalf_of: None,
            trace_id: String::new(),
        };
        // Another of Schakel's services is refused too: only the broker
        // needs these methods.
        let policy_service = app.service("policy");
        for client in [team.clone(), coordinator.clone(), policy_service.clone()] {
            let status_ = assert_code(
                client.clone().record_informing(request.clone()).await,
                Code::PermissionDenied,
            );
            assert_eq!(error_reason(&status_), "PEER_NOT_ALLOWED");
            assert_code(
                client
                    .clone()
                    .list_informing_records(pb::ListInformingRecordsRequest {
                        dossier_id: request.dossier_id.clone(),
                        include_history: false,
                    })
                    .await,
                Code::PermissionDenied,
            );
        }
        // A professional cannot probe the basis directly (the broker does,
        // after checking the dossier's circle); a coordinator may try an
        // agreement out, but not count dossiers.
        let q = question(&app.org("caw"), "triage");
        assert_code(
            team.clone().check_basis(q.clone()).await,
            Code::PermissionDenied,
        );
        let answer = coordinator.clone().check_basis(q.clone()).await.unwrap();
        assert!(answer.into_inner().allowed, "{}", db.label());
        let mut counting = q;
        counting.count_dossier = true;
        assert_code(
            coordinator.clone().check_basis(counting).await,
            Code::PermissionDenied,
        );
        assert_code(
            app.anonymous()
                .check_basis(question(&app.org("caw"), "triage"))
                .await,
            Code::Unauthenticated,
        );
    }
}

#[tokio::test]
async fn malformed_questions_are_refused_naming_the_field() {
    for db in databases().await {
        let app = spawn(db.url()).await;
        let caw = app.org("caw");
        let mut cases: Vec<(&str, pb::CheckBasisRequest)> = Vec::new();
        cases.push(("organisation_id", question("politie", "triage")));
        cases.push(("purpose", question(&caw, "Triage!")));
        let mut q = question(&caw, "triage");
        q.dossier = None;
        cases.push(("dossier", q));
        let mut q = question(&caw, "triage");
        q.dossier.as_mut().unwrap().district = String::new();
        cases.push(("dossier.district", q));
        let mut q = question(&caw, "triage");
        q.dossier.as_mut().unwrap().track = 42;
        cases.push(("dossier.track", q));
        let mut q = question(&caw, "triage");
        q.dossier.as_mut().unwrap().victim_person_ids = vec!["Marie".into()];
        cases.push(("dossier.victim_person_ids", q));
        let mut q = question(&caw, "triage");
        q.dossier.as_mut().unwrap().dossier_id = String::new();
        q.count_dossier = true;
        cases.push(("dossier.dossier_id", q));
        for (field, request) in cases {
            let status_ = assert_code(
                app.broker().check_basis(request).await,
                Code::InvalidArgument,
            );
            assert_eq!(bad_field(&status_), field, "{} {status_:?}", db.label());
        }
    }
}

/// CheckBasis keeps the decoded agreements between calls; a change made by
/// another instance (or directly in the database) must still govern the very
/// next decision.
#[tokio::test]
async fn changes_by_another_instance_govern_the_next_check() {
    for db in databases().await {
        let app = spawn(db.url()).await;
        let id = app.in_force(app.terms(T0, 365)).await;
        let caw = app.org("caw");
        assert!(app.check(question(&caw, "triage")).await.allowed);
        let directory = schakel_legal_basis::FixedDirectory::of(
            app.orgs
                .iter()
                .map(|(p, id)| (id.clone(), p.to_string()))
                .collect(),
        );
        let other = schakel_legal_basis::LegalBasis::connect(
            db.url(),
            app.clock.clone(),
            app.sink.clone(),
            std::sync::Arc::new(directory),
        )
        .await
        .unwrap();
        let coordinator = pb::Actor {
            subject: "coordinator-2".into(),
            kind: pb::PrincipalKind::User as i32,
            roles: vec![pb::Role::Coordinator as i32],
            ..Default::default()
        };
        other
            .revoke(
                &coordinator,
                &id,
                1,
                pb::RevocationReason::ProsecutorWithdrew as i32,
                "Machtiging ingetrokken.",
            )
            .await
            .unwrap();
        assert_eq!(
            reason(&app.check(question(&caw, "triage")).await),
            R::Revoked,
            "{}",
            db.label()
        );
        // A second agreement written straight into the database (a restore,
        // say) is seen as well: the generation moves by trigger.
        let second = app.in_force(app.terms(T0, 365)).await;
        assert!(app.check(question(&caw, "triage")).await.allowed);
        sqlx::query(
            "UPDATE agreements SET \
             revoked_at = (SELECT revoked_at FROM agreements WHERE agreement_id = $1), \
             revocation = (SELECT revocation FROM agreements WHERE agreement_id = $1) \
             WHERE agreement_id = $2",
        )
        .bind(&id)
        .bind(&second)
        .execute(app.service.database().pool())
        .await
        .unwrap();
        assert_eq!(
            reason(&app.check(question(&caw, "triage")).await),
            R::Revoked,
            "{}",
            db.label()
        );
    }
}
