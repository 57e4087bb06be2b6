//! Data subjects and erasure over gRPC on SQLite and PostgreSQL: a privacy
//! officer finds a person's pseudonymous ids (by national number or by name
//! and birth date) in their organisation's dossiers only, and a dossier is
//! crypto-shredded so that nothing of it can be read or found again.

use crate::common::*;
use schakel_kit::{auth::Role, testing::databases};
use schakel_proto::v1 as pb;
use tonic::Code;

use pb::lookup_data_subject_request::Subject;

fn by_number(n: &str) -> pb::LookupDataSubjectRequest {
    pb::LookupDataSubjectRequest {
        subject: Some(Subject::NationalNumber(n.into())),
        request_reference: "DSR-2026-17".into(),
    }
}

#[tokio::test]
async fn privacy_officers_find_data_subjects_and_erase_dossiers() {
    for db in databases().await {
        let app = spawn(db.url()).await;
        let registered = app.register_family("k1").await;
        let id = registered.dossier.unwrap().dossier_id;
        let person = |r: &str| {
            registered
                .persons
                .iter()
                .find(|p| p.client_ref == r)
                .unwrap()
                .person_id
                .clone()
        };
        let dpo = app.as_user("dpo-politie", "politie", &[Role::PrivacyOfficer]);
        let found = dpo
            .clone()
            .lookup_data_subject(by_number("85073003328"))
            .await
            .unwrap()
            .into_inner()
            .matches;
        assert_eq!(found.len(), 1, "{}", db.label());
        assert_eq!(
            (found[0].dossier_id.as_str(), found[0].person_id.clone()),
            (id.as_str(), person("tom"))
        );
        let by_name = dpo
            .clone()
            .lookup_data_subject(pb::LookupDataSubjectRequest {
                subject: Some(Subject::NameAndBirthDate(pb::NameAndBirthDate {
                    given_name: " marie".into(),
                    family_name: "PEETERS".into(),
                    birth_date: Some(pb::CalendarDate {
                        year: 1985,
                        month: 7,
                        day: 30,
                    }),
                })),
                request_reference: "DSR-2026-18".into(),
            })
            .await
            .unwrap()
            .into_inner()
            .matches;
        assert_eq!(by_name.len(), 1);
        assert_eq!(by_name[0].person_id, person("marie"));
        // Another organisation's privacy officer finds nothing of it.
        let elsewhere = app
            .as_user("dpo-ggz", "ggz", &[Role::PrivacyOfficer])
            .lookup_data_subject(by_number("85073003328"))
            .await
            .unwrap()
            .into_inner()
            .matches;
        assert!(elsewhere.is_empty());
        // Professionals cannot look people up, nor erase.
        assert_code(
            app.team("politie")
                .lookup_data_subject(by_number("85073003328"))
                .await,
            Code::PermissionDenied,
        );
        let erase = pb::EraseDossierRequest {
            dossier_id: id.clone(),
            reason: pb::ErasureReason::RegisteredInError as i32,
            reference: "DPO-2026-7".into(),
        };
        assert_code(
            app.team("politie").erase_dossier(erase.clone()).await,
            Code::PermissionDenied,
        );
        // Not without its audit entry.
        app.sink.set_down(true);
        assert_code(
            dpo.clone().erase_dossier(erase.clone()).await,
            Code::Unavailable,
        );
        app.sink.set_down(false);
        let reader = app.as_user("aanmelder-politie", "politie", &[Role::Aanmelder]);
        reader
            .clone()
            .get_dossier(read_request(&id, "triage"))
            .await
            .unwrap();

        let erased = dpo
            .clone()
            .erase_dossier(erase.clone())
            .await
            .unwrap()
            .into_inner();
        assert_eq!(erased.dossier_id, id);
        let status = assert_code(
            reader
                .clone()
                .get_dossier(read_request(&id, "triage"))
                .await,
            Code::NotFound,
        );
        assert_eq!(error_reason(&status), "ERASED");
        let status = assert_code(dpo.clone().erase_dossier(erase).await, Code::NotFound);
        assert_eq!(error_reason(&status), "ERASED");
        let gone = dpo
            .clone()
            .lookup_data_subject(by_number("85073003328"))
            .await
            .unwrap()
            .into_inner()
            .matches;
        assert!(gone.is_empty(), "{}", db.label());
        // Nothing sealed remains; the audit log keeps the decisions.
        use sqlx::Row;
        let pool = app.broker.database().pool();
        let left = sqlx::query("SELECT COUNT(*) AS n FROM contributions WHERE value IS NOT NULL")
            .fetch_one(pool)
            .await
            .unwrap()
            .try_get::<i64, _>("n")
            .unwrap();
        assert_eq!(left, 0);
        let entries = app.audit_entries().await;
        let erase_entry = entries
            .iter()
            .find(|e| {
                e.action == pb::AuditAction::DossierErase as i32
                    && e.decision == pb::Decision::Granted as i32
            })
            .unwrap();
        assert!(
            erase_entry
                .attributes
                .iter()
                .any(|a| a.key == "reason" && a.value == "ERASURE_REASON_REGISTERED_IN_ERROR")
        );
        assert!(
            entries
                .iter()
                .any(|e| e.action == pb::AuditAction::DataSubjectLookup as i32
                    && e.target.as_ref().unwrap().person_ids == vec![person("tom")])
        );
    }
}

#[tokio::test]
async fn closed_dossiers_are_erased_after_their_retention() {
    for db in databases().await {
        let app = spawn(db.url()).await;
        let registered = app.register_family("k1").await;
        let id = registered.dossier.unwrap().dossier_id;
        let team = app.as_user(
            "team-politie",
            "politie",
            &[Role::Aanmelder, Role::TeamMember],
        );
        use pb::Phase::*;
        for (from, to, track) in [
            (Registration, CaseBuilding, pb::Track::Unspecified),
            (CaseBuilding, Assessment, pb::Track::Unspecified),
            (Assessment, CaseDirection, pb::Track::ChainApproach),
            (CaseDirection, FollowUp, pb::Track::Unspecified),
            (FollowUp, Closed, pb::Track::Unspecified),
        ] {
            team.clone()
                .advance_phase(pb::AdvancePhaseRequest {
                    dossier_id: id.clone(),
                    expected_phase: from as i32,
                    target_phase: to as i32,
                    track: track as i32,
                    reason: "volgende stap".into(),
                })
                .await
                .unwrap();
        }
        let retention = std::time::Duration::from_secs(30 * DAY as u64);
        // Not yet: kept until the retention has passed.
        app.clock.advance(30 * DAY - 1);
        assert_eq!(app.broker.erase_expired(retention).await.unwrap(), 0);
        app.clock.advance(1);
        assert_eq!(
            app.broker.erase_expired(retention).await.unwrap(),
            1,
            "{}",
            db.label()
        );
        assert_eq!(app.broker.erase_expired(retention).await.unwrap(), 0);
        let status = assert_code(
            team.clone().get_dossier(read_request(&id, "triage")).await,
            Code::NotFound,
        );
        assert_eq!(error_reason(&status), "ERASED");
        let entry = app
            .audit_entries()
            .await
            .into_iter()
            .find(|e| {
                e.action == pb::AuditAction::DossierErase as i32
                    && e.decision == pb::Decision::Granted as i32
            })
            .unwrap();
        assert!(
            entry
                .attributes
                .iter()
                .any(|a| a.value == "ERASURE_REASON_RETENTION_EXPIRED")
        );
        assert_eq!(entry.target.unwrap().dossier_id, id);
    }
}
