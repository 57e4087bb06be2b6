//! What the audit log and the dossier keep of the calls around content:
//! role and state refusals are audited (state refusals as PRECONDITION with
//! their reason code), a registration retry and a listing name their
//! dossiers' entries, and phase and circle changes keep their reasons.

use crate::common::*;
use schakel_kit::{auth::Role, testing::databases};
use schakel_proto::v1 as pb;
use tonic::Code;

use pb::AuditAction as A;

#[tokio::test]
async fn an_aanmelder_neither_advances_nor_adds_and_that_is_audited() {
    for db in databases().await {
        let app = spawn(db.url()).await;
        let id = app.register_family("k1").await.dossier.unwrap().dossier_id;
        let aanmelder = app.as_user("aanmelder-politie", "politie", &[Role::Aanmelder]);
        let deny = Denied::As(pb::AccessDenialReason::RoleNotPermitted);
        let (_, entry) = app
            .refused(
                aanmelder.clone().advance_phase(pb::AdvancePhaseRequest {
                    dossier_id: id.clone(),
                    expected_phase: pb::Phase::Registration as i32,
                    target_phase: pb::Phase::CaseBuilding as i32,
                    track: 0,
                    reason: "dossiervorming".into(),
                }),
                Code::PermissionDenied,
                "ROLE_NOT_PERMITTED",
                A::PhaseAdvance,
                deny,
            )
            .await;
        assert_eq!(entry.target.unwrap().dossier_id, id, "{}", db.label());
        app.refused(
            aanmelder
                .clone()
                .add_participant(pb::AddParticipantRequest {
                    dossier_id: id.clone(),
                    organisation_id: app.orgs["caw"].clone(),
                }),
            Code::PermissionDenied,
            "ROLE_NOT_PERMITTED",
            A::ParticipantAdd,
            deny,
        )
        .await;
    }
}

#[tokio::test]
async fn state_refusals_are_audited_with_their_reason() {
    for db in databases().await {
        let app = spawn(db.url()).await;
        let id = app
            .family_with("k1", &["ggz"])
            .await
            .dossier
            .unwrap()
            .dossier_id;
        let politie = app.team("politie");
        let (_, entry) = app
            .refused(
                politie.clone().advance_phase(pb::AdvancePhaseRequest {
                    dossier_id: id.clone(),
                    expected_phase: pb::Phase::Registration as i32,
                    target_phase: pb::Phase::Assessment as i32,
                    track: 0,
                    reason: "te snel".into(),
                }),
                Code::FailedPrecondition,
                "INVALID_TRANSITION",
                A::PhaseAdvance,
                Denied::Precondition,
            )
            .await;
        assert_eq!(entry.target.unwrap().dossier_id, id, "{}", db.label());
        advance_to(&politie, &id, pb::Phase::CaseBuilding).await;
        let asked = politie
            .clone()
            .request_information(app.ask(&id, "ggz", &["ggz."], "case_building"))
            .await
            .unwrap()
            .into_inner()
            .information_request
            .unwrap();
        let request_id = asked.information_request_id;
        // The sender answers its own question.
        app.refused(
            politie
                .clone()
                .answer_information_request(pb::AnswerInformationRequestRequest {
                    information_request_id: request_id.clone(),
                    contributions: vec![],
                    declined_fields: vec![pb::DeclinedField {
                        path: "ggz.diagnosis".into(),
                        reason: pb::InformationRequestDeclineReason::NoInformation as i32,
                    }],
                    note: String::new(),
                    idempotency_key: String::new(),
                }),
            Code::PermissionDenied,
            "NOT_ADDRESSEE",
            A::InformationRequestAnswer,
            Denied::Precondition,
        )
        .await;
        // The addressee cancels it.
        app.refused(
            app.team("ggz")
                .cancel_information_request(pb::CancelInformationRequestRequest {
                    information_request_id: request_id.clone(),
                    explanation: "Niet voor ons.".into(),
                }),
            Code::PermissionDenied,
            "NOT_YOURS",
            A::InformationRequestCancel,
            Denied::Precondition,
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
        let entries = app.audit_entries().await;
        let entry = entries
            .iter()
            .find(|e| e.index == again.audit_index)
            .expect("the named entry exists");
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
        let listed = app
            .team("politie")
            .list_dossiers(pb::ListDossiersRequest::default())
            .await
            .unwrap()
            .into_inner()
            .dossiers;
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
        let id = app
            .family_with("k1", &["caw"])
            .await
            .dossier
            .unwrap()
            .dossier_id;
        let politie = app.team("politie");
        politie
            .clone()
            .advance_phase(pb::AdvancePhaseRequest {
                dossier_id: id.clone(),
                expected_phase: pb::Phase::Registration as i32,
                target_phase: pb::Phase::CaseBuilding as i32,
                track: 0,
                reason: "Weerhouden voor dossiervorming".into(),
            })
            .await
            .unwrap();
        politie
            .clone()
            .remove_participant(pb::RemoveParticipantRequest {
                dossier_id: id.clone(),
                organisation_id: app.orgs["caw"].clone(),
                reason: "Niet meer betrokken".into(),
            })
            .await
            .unwrap();
        let history = politie
            .clone()
            .get_dossier(read_request(&id, "case_building"))
            .await
            .unwrap()
            .into_inner()
            .history;
        let phase = history
            .iter()
            .find(|e| e.action == A::PhaseAdvance as i32)
            .unwrap_or_else(|| panic!("{}: no phase change in {history:?}", db.label()));
        assert_eq!(
            (phase.from_phase(), phase.to_phase(), phase.reason.as_str()),
            (
                pb::Phase::Registration,
                pb::Phase::CaseBuilding,
                "Weerhouden voor dossiervorming"
            )
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
        let entries = app.audit_entries().await;
        for event in [phase, removal] {
            let entry = entries.iter().find(|e| e.index == event.audit_index);
            assert!(
                entry.is_some_and(|e| e.action == event.action
                    && e.target.as_ref().is_some_and(|t| t.dossier_id == id)),
                "{event:?}"
            );
        }
        // Not for the aanmelder.
        let theirs = app
            .as_user("aanmelder-politie", "politie", &[Role::Aanmelder])
            .get_dossier(read_request(&id, "case_building"))
            .await
            .unwrap()
            .into_inner();
        assert!(theirs.history.is_empty(), "{:?}", theirs.history);
    }
}
