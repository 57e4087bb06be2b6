//! Data subjects and erasure over gRPC on SQLite and PostgreSQL: a privacy
//! officer finds a person's pseudonymous ids (by national number or by name
//! and birth date) in their organisation's dossiers only, and a dossier is
//! crypto-shredded so that nothing of it can be read or found again.

use crate::common::*;
use schakel_kit::{auth::Role, testing::databases};
use schakel_proto::v1 as pb;
use tonic::Code;

use pb::lookup_data_subject_request::Subject;

/// The pseudonymous ids `client` finds with `request`.
async fn matches(
    client: &Client,
    request: pb::LookupDataSubjectRequest,
) -> Vec<pb::DataSubjectMatch> {
    let found = client.clone().lookup_data_subject(request).await;
    found.unwrap().into_inner().matches
}

#[tokio::test]
async fn privacy_officers_find_data_subjects_and_erase_dossiers() {
    for db in databases().await {
        let app = spawn(db.url()).await;
        let registered = app.register_family("k1").await;
        let id = registered.dossier.clone().unwrap().dossier_id;
        let person = |r: &str| person(&registered, r);
        let dpo = app.as_user("dpo-politie", "politie", &[Role::PrivacyOfficer]);
        let found = matches(&dpo, by_number("85073003328")).await;
        assert_eq!(found.len(), 1, "{}", db.label());
        assert_eq!(
            (found[0].dossier_id.as_str(), found[0].person_id.clone()),
            (id.as_str(), person("tom"))
        );
        let marie = pb::LookupDataSubjectRequest {
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
        };
        let by_name = matches(&dpo, marie).await;
        assert_eq!(by_name.len(), 1);
        assert_eq!(by_name[0].person_id, person("marie"));
        // Another organisation's privacy officer finds nothing of it.
        let dpo_ggz = app.as_user("dpo-ggz", "ggz", &[Role::PrivacyOfficer]);
        let elsewhere = matches(&dpo_ggz, by_number("85073003328")).await;
        assert!(elsewhere.is_empty());
        // Professionals cannot look people up, nor erase.
        assert_code(
            app.team("politie")
                .lookup_data_subject(by_number("85073003328"))
                .await,
            Code::PermissionDenied,
        );
        let erase = erase(&id, pb::ErasureReason::RegisteredInError, "DPO-2026-7");
        assert_code(
            app.team("politie").erase_dossier(erase.clone()).await,
            Code::PermissionDenied,
        );
        // A reference goes into the immutable log: never a national register
        // number or an e-mail address.
        for personal in ["85.07.30-033.28", "marie.peeters@example.be"] {
            let mut named = erase.clone();
            named.reference = personal.into();
            let status = assert_code(
                dpo.clone().erase_dossier(named).await,
                Code::InvalidArgument,
            );
            assert_eq!(bad_field(&status), "reference", "{status:?}");
        }
        // Not without its audit entry.
        app.sink.set_down(true);
        assert_code(
            dpo.clone().erase_dossier(erase.clone()).await,
            Code::Unavailable,
        );
        app.sink.set_down(false);
        let reader = app.aanmelder();
        read_by(&reader, &id, "triage").await;

        let erased = dpo.clone().erase_dossier(erase.clone()).await;
        assert_eq!(erased.unwrap().into_inner().dossier_id, id);
        let read = try_read(&reader, &id, "triage").await;
        assert_refusal(read, Code::NotFound, "ERASED");
        let again = dpo.clone().erase_dossier(erase).await;
        assert_refusal(again, Code::NotFound, "ERASED");
        let gone = matches(&dpo, by_number("85073003328")).await;
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
        let erase_entry = app.granted(pb::AuditAction::DossierErase).await;
        assert!(
            erase_entry
                .attributes
                .iter()
                .any(|a| a.key == "reason" && a.value == "ERASURE_REASON_REGISTERED_IN_ERROR")
        );
        let lookups = app.entries_of(pb::AuditAction::DataSubjectLookup).await;
        assert!(
            lookups
                .iter()
                .any(|e| e.target.as_ref().unwrap().person_ids == vec![person("tom")])
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
        advance_to(&team, &id, pb::Phase::Closed).await;
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
        let read = try_read(&team, &id, "triage").await;
        assert_refusal(read, Code::NotFound, "ERASED");
        let entry = app.granted(pb::AuditAction::DossierErase).await;
        assert!(
            entry
                .attributes
                .iter()
                .any(|a| a.value == "ERASURE_REASON_RETENTION_EXPIRED")
        );
        assert_eq!(entry.target.unwrap().dossier_id, id);
    }
}
