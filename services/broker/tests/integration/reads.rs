//! The broker as the policy enforcement point, over gRPC on SQLite and
//! PostgreSQL: registration under a legal basis, the circle, need-to-know
//! per field, phases, expiry of the agreement, fail-closed auditing, and no
//! personal data in clear in the database.

use crate::common::*;
use schakel_kit::{auth::Role, testing::databases};
use schakel_proto::v1 as pb;
use tonic::Code;

#[tokio::test]
async fn a_registration_is_covered_audited_and_read_back_by_need_to_know() {
    for db in databases().await {
        let app = spawn(db.url()).await;
        let registered = app.register_family("k1").await;
        let dossier = registered.dossier.clone().unwrap();
        assert_eq!(dossier.phase, pb::Phase::Registration as i32);
        assert_eq!(
            registered.legal_basis.as_ref().unwrap().agreement_id,
            app.agreement_id
        );
        assert_eq!(dossier.person_ids.len(), 3);
        assert_eq!(dossier.participants.len(), 1);
        // A retry with the same key is the same dossier.
        let again = app.register_family("k1").await;
        assert_eq!(again.dossier.unwrap().dossier_id, dossier.dossier_id);
        // Counted once against the agreement.
        let agreement = app.legal_basis.get(&app.agreement_id, 0).await.unwrap().0;
        assert_eq!(agreement.dossier_count, 1, "{}", db.label());

        // The registrant reads the form back, but not the national number
        // it wrote (contributing it is not reading it).
        let read = read_by(&app.aanmelder(), &dossier.dossier_id, "triage").await;
        assert_eq!(read.decision, pb::Decision::PartiallyGranted as i32);
        assert_eq!(
            texts(&read, "registration.situation_description"),
            vec!["Herhaald fysiek geweld; Marie vreest voor haar leven."]
        );
        let mut names = texts(&read, "persons.given_name");
        names.sort();
        assert_eq!(names, vec!["Lotte", "Marie", "Tom"]);
        assert!(
            read.released
                .iter()
                .any(|f| f.path == "registration.involved_organisations"
                    && f.contributions.len() == 1),
            "the involved organisations of the form are recorded"
        );
        assert_eq!(
            withheld(&read, "persons.national_number"),
            Some(pb::AccessDenialReason::PolicyDenied)
        );
        assert!(texts(&read, "persons.national_number").is_empty());

        // The read is in the audit log with what was released and withheld,
        // and never a value.
        let entries = app.audit_entries().await;
        let last = entries.last().unwrap();
        assert_eq!(last.index, read.audit_index);
        assert_eq!(last.action, pb::AuditAction::DossierRead as i32);
        assert_eq!(last.decision, pb::Decision::PartiallyGranted as i32);
        assert!(
            last.fields_withheld
                .iter()
                .any(|w| w.path == "persons.national_number")
        );
        assert_eq!(
            last.legal_basis.as_ref().unwrap().agreement_id,
            app.agreement_id
        );
        assert!(last.policy_version >= 1);
        assert!(
            entries
                .iter()
                .any(|e| e.action == pb::AuditAction::DossierRegister as i32)
        );
        // Informing went to the legal-basis service, audited there.
        assert_eq!(
            entries
                .iter()
                .filter(|e| e.action == pb::AuditAction::InformingRecord as i32)
                .count(),
            3
        );
        app.assert_audit_log_lacks(&["Marie", "Peeters", "85073003328", "vreest"])
            .await;
    }
}

#[tokio::test]
async fn organisations_outside_the_circle_learn_nothing_not_even_existence() {
    for db in databases().await {
        let app = spawn(db.url()).await;
        let registered = app.register_family("k1").await;
        let id = registered.dossier.unwrap().dossier_id;
        let caw = app.team("caw");
        let read = try_read(&caw, &id, "triage").await;
        assert_refusal(read, Code::PermissionDenied, "NOT_IN_CIRCLE");
        // An unknown dossier looks exactly the same.
        let unknown = uuid::Uuid::new_v4().to_string();
        let read = try_read(&caw, &unknown, "triage").await;
        assert_refusal(read, Code::PermissionDenied, "NOT_IN_CIRCLE");
        // Nor does it appear in their list.
        assert!(listed(&caw).await.is_empty(), "{}", db.label());
        let denials = app
            .audit_entries()
            .await
            .into_iter()
            .filter(|e| e.denial_reason == pb::AccessDenialReason::NotInCircle as i32)
            .count();
        assert_eq!(denials, 2);
        // Coordinators and privacy officers never see content.
        let coordinator = app.as_user("coord", "justitiehuis", &[Role::Coordinator]);
        let read = try_read(&coordinator, &id, "triage").await;
        assert_refusal(read, Code::PermissionDenied, "ROLE_NOT_PERMITTED");
    }
}

#[tokio::test]
async fn each_partner_sees_only_the_fields_it_needs() {
    for db in databases().await {
        let app = spawn(db.url()).await;
        let id = app
            .dossier_in("k1", &["ggz", "caw"], pb::Phase::CaseBuilding)
            .await;
        let politie_team = app.as_user(
            "team-politie",
            "politie",
            &[Role::Aanmelder, Role::TeamMember],
        );
        // GGZ contributes a diagnosis.
        let diagnosis = input("ggz.diagnosis", text_value("Depressieve stoornis"));
        let contributed = app
            .team("ggz")
            .contribute(contribution(&id, "case_building", vec![diagnosis], ""))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(contributed.contributions[0].source_partner_type, "ggz");
        // CAW may not write GGZ's field.
        let theirs = input("ggz.diagnosis", text_value("x"));
        let write = contribution(&id, "case_building", vec![theirs], "");
        let refused = app.team("caw").contribute(write).await;
        assert_refusal(refused, Code::PermissionDenied, "POLICY_DENIED");

        let read = |partner| read_by_team(&app, partner, &id);
        let ggz = read("ggz").await;
        assert_eq!(texts(&ggz, "ggz.diagnosis"), vec!["Depressieve stoornis"]);
        assert_eq!(
            withheld(&ggz, "persons.national_number"),
            Some(pb::AccessDenialReason::PolicyDenied)
        );
        // The partner that must NOT see the mental-health field.
        let caw = read("caw").await;
        assert!(texts(&caw, "ggz.diagnosis").is_empty(), "{}", db.label());
        assert_eq!(
            withheld(&caw, "ggz.diagnosis"),
            Some(pb::AccessDenialReason::PolicyDenied)
        );
        assert!(!texts(&caw, "registration.situation_description").is_empty());
        // Police read the national register number.
        let politie = read("politie").await;
        assert_eq!(
            texts(&politie, "persons.national_number"),
            vec!["85073003328"]
        );
        assert_eq!(
            withheld(&politie, "ggz.diagnosis"),
            Some(pb::AccessDenialReason::PolicyDenied)
        );

        // Phases: only the allowed transitions.
        let closing = step(&id, pb::Phase::CaseBuilding, pb::Phase::Closed, "x");
        let refused = politie_team.clone().advance_phase(closing).await;
        assert_refusal(refused, Code::FailedPrecondition, "INVALID_TRANSITION");
        let stale = step(&id, pb::Phase::Registration, pb::Phase::CaseBuilding, "x");
        let refused = politie_team.clone().advance_phase(stale).await;
        assert_refusal(refused, Code::FailedPrecondition, "PHASE_CHANGED");
    }
}

#[tokio::test]
async fn an_expired_agreement_releases_nothing() {
    for db in databases().await {
        let app = spawn(db.url()).await;
        let registered = app.register_family("k1").await;
        let id = registered.dossier.unwrap().dossier_id;
        app.clock.advance(90 * DAY);
        let read = try_read(&app.aanmelder(), &id, "triage").await;
        let status = assert_refusal(read, Code::PermissionDenied, "NO_LEGAL_BASIS");
        assert_eq!(
            error_metadata(&status, "basis_denial_reason"),
            "BASIS_DENIAL_REASON_EXPIRED",
            "{}",
            db.label()
        );
        let last = app.audit_entries().await.pop().unwrap();
        assert_eq!(last.decision, pb::Decision::Denied as i32);
        assert_eq!(last.basis_denial_reason, "BASIS_DENIAL_REASON_EXPIRED");
    }
}

#[tokio::test]
async fn without_the_audit_log_nothing_is_released_or_stored() {
    for db in databases().await {
        let app = spawn(db.url()).await;
        let registered = app.register_family("k1").await;
        let id = registered.dossier.unwrap().dossier_id;
        app.sink.set_down(true);
        let read = try_read(&app.aanmelder(), &id, "triage").await;
        assert_refusal(read, Code::Unavailable, "AUDIT_UNAVAILABLE");
        assert_code(
            app.aanmelder().register_dossier(registration("k2")).await,
            Code::Unavailable,
        );
        app.sink.set_down(false);
        let listed = listed(&app.team("politie")).await;
        assert_eq!(listed.len(), 1, "{}", db.label());
    }
}

#[tokio::test]
async fn the_database_holds_no_personal_data_in_clear() {
    for db in databases().await {
        let app = spawn(db.url()).await;
        app.register_family("k1").await;
        let pool = app.broker.database().pool();
        let mut dump: Vec<u8> = Vec::new();
        for (table, columns) in [
            (
                "dossiers",
                "dossier_id, district, registering_org, wrapped_key",
            ),
            ("persons", "person_id, roles"),
            (
                "contributions",
                "contribution_id, path, person_id, value, source_org, author, purpose",
            ),
            ("participants", "organisation_id, partner_type, added_by"),
        ] {
            use sqlx::Row;
            let rows = sqlx::query(&format!("SELECT {columns} FROM {table}"))
                .fetch_all(pool)
                .await
                .unwrap();
            for row in rows {
                for i in 0..columns.split(',').count() {
                    if let Ok(Some(text)) = row.try_get::<Option<String>, _>(i) {
                        dump.extend(text.into_bytes());
                    } else if let Ok(Some(bytes)) = row.try_get::<Option<Vec<u8>>, _>(i) {
                        dump.extend(bytes);
                    }
                }
            }
        }
        assert!(dump.len() > 1000, "the dump is not empty: {}", dump.len());
        for secret in [
            "Marie",
            "Peeters",
            "85073003328",
            "vreest",
            "PV-2026-0042",
            "partnergeweld",
        ] {
            assert!(
                !dump.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{secret} in clear in the {} database",
                db.label()
            );
        }
    }
}

#[tokio::test]
async fn a_policy_activated_while_the_broker_runs_governs_the_very_next_read() {
    for db in databases().await {
        let app = spawn(db.url()).await;
        let registered = app.register_family("k1").await;
        let id = registered.dossier.unwrap().dossier_id;
        let reader = app.aanmelder();
        let before = read_by(&reader, &id, "triage").await;
        assert_eq!(
            withheld(&before, "persons.national_number"),
            Some(pb::AccessDenialReason::PolicyDenied)
        );
        // Coordinators let the police's aanmelder read the national number back.
        let version = app
            .activate_policy_with(
                "p, politie, aanmelder, persons.national_number, read, registration, allow\n",
                "aanmelder politie leest rijksregisternummer terug",
            )
            .await;
        let after = read_by(&reader, &id, "triage").await;
        assert_eq!(after.policy_version, version, "{}", db.label());
        assert_eq!(
            texts(&after, "persons.national_number"),
            vec!["85073003328"]
        );
        let last = app.audit_entries().await.pop().unwrap();
        assert_eq!(last.policy_version, version);
    }
}

#[tokio::test]
async fn a_revoked_agreement_and_an_uninformed_victim_stop_reads() {
    for db in databases().await {
        let app = spawn(db.url()).await;
        // A family where the victim is not informed yet.
        let registered = app.register(uninformed("k9")).await;
        let id = registered.dossier.unwrap().dossier_id;
        let reader = app.as_user(
            "team-politie",
            "politie",
            &[Role::Aanmelder, Role::TeamMember],
        );
        // In registration triage reads go on; beyond it the phase, not the
        // purpose declared, says the victim must be informed.
        read_by(&reader, &id, "triage").await;
        advance_to(&reader, &id, pb::Phase::CaseBuilding).await;
        let read = try_read(&reader, &id, "triage").await;
        assert_refusal(read, Code::FailedPrecondition, "PURPOSE_NOT_FOR_PHASE");
        let building = read_request(&id, "case_building");
        let read = reader.clone().get_dossier(building.clone()).await;
        let status = assert_code(read, Code::PermissionDenied);
        assert_eq!(
            error_metadata(&status, "basis_denial_reason"),
            "BASIS_DENIAL_REASON_CLIENT_NOT_INFORMED"
        );
        // Revoked: nothing at all.
        app.revoke_agreement().await;
        let status = assert_code(
            reader.clone().get_dossier(building).await,
            Code::PermissionDenied,
        );
        assert_eq!(
            error_metadata(&status, "basis_denial_reason"),
            "BASIS_DENIAL_REASON_REVOKED",
            "{}",
            db.label()
        );
    }
}

/// The broker reuses what it read of a dossier while its revision is
/// unchanged; a change made elsewhere (another instance, an operator) moves the
/// revision by trigger and governs the very next read.
#[tokio::test]
async fn changes_made_elsewhere_govern_the_next_read() {
    for db in databases().await {
        let app = spawn(db.url()).await;
        let id = app.register_family("k1").await.dossier.unwrap().dossier_id;
        let reader = app.aanmelder();
        for _ in 0..2 {
            let read = read_by(&reader, &id, "triage").await;
            assert_eq!(texts(&read, "registration.situation_description").len(), 1);
        }
        let pool = app.broker.database().pool();
        sqlx::query(
            "UPDATE contributions SET superseded_by = 'elsewhere' \
             WHERE dossier_id = $1 AND path = 'registration.situation_description'",
        )
        .bind(&id)
        .execute(pool)
        .await
        .unwrap();
        let read = read_by(&reader, &id, "triage").await;
        assert!(
            texts(&read, "registration.situation_description").is_empty(),
            "{}",
            db.label()
        );
        sqlx::query("DELETE FROM participants WHERE dossier_id = $1 AND organisation_id = $2")
            .bind(&id)
            .bind(&app.orgs["politie"])
            .execute(pool)
            .await
            .unwrap();
        let read = try_read(&reader, &id, "triage").await;
        let status = assert_code(read, Code::PermissionDenied);
        assert_eq!(error_reason(&status), "NOT_IN_CIRCLE", "{}", db.label());
    }
}

/// `partner`'s team reads a dossier for case_building.
async fn read_by_team(app: &TestApp, partner: &str, id: &str) -> pb::GetDossierResponse {
    read_by(&app.team(partner), id, "case_building").await
}
