//! What the audit log and the dossier keep of the calls around content:
//! role and state refusals are audited (state refusals as PRECONDITION with
//! their reason code), a registration retry and a listing name their
//! dossiers' entries, and phase and circle changes keep their reasons.

use crate::common::*;
use schakel_kit::testing::databases;
use schakel_proto::v1 as pb;
use tonic::Code;

use pb::AuditAction as A;
use pb::InformationRequestDeclineReason as DeclineReason;
use pb::Phase;

#[tokio::test]
async fn an_aanmelder_neither_advances_nor_adds_and_that_is_audited() {
    for db in databases().await {
        let app = spawn(db.url()).await;
        let id = app.register_family("k1").await.dossier.unwrap().dossier_id;
        let mut aanmelder = app.aanmelder();
        let step = step(
            &id,
            Phase::Registration,
            Phase::CaseBuilding,
            "dossiervorming",
        );
        let advance = aanmelder.advance_phase(step);
        let (_, entry) = app.refused_role(advance, A::PhaseAdvance).await;
        assert_eq!(entry.target.unwrap().dossier_id, id, "{}", db.label());
        let add = aanmelder.add_participant(app.joins(&id, "caw"));
        app.refused_role(add, A::ParticipantAdd).await;
    }
}

#[tokio::test]
async fn state_refusals_are_audited_with_their_reason() {
    for db in databases().await {
        let app = spawn(db.url()).await;
        let id = app.dossier_in("k1", &["ggz"], Phase::Registration).await;
        let politie = app.team("politie");
        let step = step(&id, Phase::Registration, Phase::Assessment, "te snel");
        let (_, entry) = app
            .refused_state(
                politie.clone().advance_phase(step),
                Code::FailedPrecondition,
                "INVALID_TRANSITION",
                A::PhaseAdvance,
            )
            .await;
        assert_eq!(entry.target.unwrap().dossier_id, id, "{}", db.label());
        advance_to(&politie, &id, Phase::CaseBuilding).await;
        let ask = app.ask(&id, "ggz", &["ggz."], "case_building");
        let request_id = asked(&politie, ask).await.information_request_id;
        // The sender answers its own question.
        let nothing = declined("ggz.diagnosis", DeclineReason::NoInformation);
        let answer = answer(&request_id, vec![], vec![nothing]);
        app.refused_state(
            politie.clone().answer_information_request(answer),
            Code::PermissionDenied,
            "NOT_ADDRESSEE",
            A::InformationRequestAnswer,
        )
        .await;
        // The addressee cancels it.
        let cancel = cancel(&request_id, "Niet voor ons.");
        app.refused_state(
            app.team("ggz").cancel_information_request(cancel),
            Code::PermissionDenied,
            "NOT_YOURS",
            A::InformationRequestCancel,
        )
        .await;
    }
}

#[tokio::test]
async fn a_registration_retry_returns_the_persons_and_names_the_entry() {
    for db in databases().await {
        let app = spawn(db.url()).await;
        let first = app.register_family("k1").await;
        let id = first.dossier.clone().unwrap().dossier_id;
        let again = app.register_family("k1").await;
        assert_eq!(again.dossier.as_ref().unwrap().dossier_id, id);
        let pairs = |r: &pb::RegisterDossierResponse| {
            let mut p: Vec<(String, String)> = r
                .persons
                .iter()
                .map(|p| (p.client_ref.clone(), p.person_id.clone()))
                .collect();
            p.sort();
            p
        };
        assert_eq!(pairs(&first).len(), 3);
        assert_eq!(pairs(&again), pairs(&first), "{}", db.label());
        assert_ne!(again.audit_index, 0, "the retry names an audit entry");
        let entry = app.entry_at(again.audit_index).await;
        assert_eq!(entry.action, A::DossierRegister as i32);
        assert_eq!(entry.target.as_ref().unwrap().dossier_id, id);
    }
}

#[tokio::test]
async fn every_listed_dossier_has_its_list_entry() {
    for db in databases().await {
        let app = spawn(db.url()).await;
        for key in ["k1", "k2"] {
            app.register_family(key).await;
        }
        let mark = app.audit_entries().await.len();
        let listed = listed(&app.team("politie")).await;
        assert_eq!(listed.len(), 2);
        let named: Vec<String> = app
            .audit_entries()
            .await
            .split_off(mark)
            .into_iter()
            .filter(|e| e.action == A::DossierList as i32)
            .filter_map(|e| e.target.map(|t| t.dossier_id))
            .collect();
        for d in &listed {
            assert!(
                named.contains(&d.dossier_id),
                "{}: no DOSSIER_LIST entry names {} (named: {named:?})",
                db.label(),
                d.dossier_id
            );
        }
    }
}

#[tokio::test]
async fn phase_and_circle_changes_keep_their_reasons() {
    for db in databases().await {
        let app = spawn(db.url()).await;
        let id = app.dossier_in("k1", &["caw"], Phase::Registration).await;
        let politie = app.team("politie");
        let reason = "Weerhouden voor dossiervorming";
        let step = step(&id, Phase::Registration, Phase::CaseBuilding, reason);
        politie.clone().advance_phase(step).await.unwrap();
        let leaves = app.leaves(&id, "caw", "Niet meer betrokken");
        politie.clone().remove_participant(leaves).await.unwrap();
        let history = read_by(&politie, &id, "case_building").await.history;
        let phase = history
            .iter()
            .find(|e| e.action == A::PhaseAdvance as i32)
            .unwrap_or_else(|| panic!("{}: no phase change in {history:?}", db.label()));
        assert_eq!(
            (phase.from_phase(), phase.to_phase(), phase.reason.as_str()),
            (Phase::Registration, Phase::CaseBuilding, reason)
        );
        let removal = history
            .iter()
            .find(|e| e.action == A::ParticipantRemove as i32)
            .expect("the removal");
        assert_eq!(
            (removal.organisation_id.as_str(), removal.reason.as_str()),
            (app.orgs["caw"].as_str(), "Niet meer betrokken")
        );
        assert_eq!(removal.by, "team-politie");
        assert_eq!(removal.by_organisation_id, app.orgs["politie"]);
        // Each event names the entry that recorded the change.
        for event in [phase, removal] {
            let entry = app.entry_at(event.audit_index).await;
            assert!(
                entry.action == event.action
                    && entry.target.as_ref().is_some_and(|t| t.dossier_id == id),
                "{event:?}"
            );
        }
        // Not for the aanmelder.
        let theirs = read_by(&app.aanmelder(), &id, "case_building").await;
        assert!(theirs.history.is_empty(), "{:?}", theirs.history);
    }
}

/// A dossier registered before replies were kept (an older database: no
/// kept reply) still answers its retry, with its persons, as an audited decision.
#[tokio::test]
async fn a_registration_retry_without_a_kept_reply_still_finds_the_dossier() {
    for db in databases().await {
        let app = spawn(db.url()).await;
        let first = app.register_family("k-old").await;
        sqlx::query("DELETE FROM replies")
            .execute(app.broker.database().pool())
            .await
            .unwrap();
        let again = app.register_family("k-old").await;
        let id = first.dossier.clone().unwrap().dossier_id;
        assert_eq!(
            again.dossier.clone().unwrap().dossier_id,
            id,
            "{}",
            db.label()
        );
        let ids = |r: &pb::RegisterDossierResponse| {
            let mut ids: Vec<String> = r.persons.iter().map(|p| p.person_id.clone()).collect();
            ids.sort();
            ids
        };
        assert_eq!(ids(&again), ids(&first));
        let entry = app.entry_at(again.audit_index).await;
        assert_eq!(entry.action, pb::AuditAction::DossierRegister as i32);
        assert_eq!(entry.target.unwrap().dossier_id, id);
    }
}
