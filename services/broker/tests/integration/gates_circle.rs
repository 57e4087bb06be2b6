//! The circle gate and the circle's own rules: an organisation that left
//! the circle loses the dossier's information requests, only a real
//! casusregisseur of the named organisation is appointed, the case
//! director's organisation stays, and only organisations covered by the
//! agreement join.

use crate::common::*;
use schakel_kit::{auth::Role, testing::databases};
use schakel_proto::v1 as pb;
use tonic::Code;

use pb::AuditAction as A;

/// The seeded family with CAW in the circle, in assessment.
async fn in_assessment(app: &TestApp) -> String {
    let id = app
        .family_with("k1", &["caw"])
        .await
        .dossier
        .unwrap()
        .dossier_id;
    advance_to(&app.team("politie"), &id, pb::Phase::Assessment).await;
    id
}

fn appoint(id: &str, user_id: &str, organisation_id: &str) -> pb::AssignCaseDirectorRequest {
    pb::AssignCaseDirectorRequest {
        dossier_id: id.into(),
        user_id: user_id.into(),
        organisation_id: organisation_id.into(),
    }
}

#[tokio::test]
async fn a_removed_organisation_loses_the_dossiers_information_requests() {
    for db in databases().await {
        let app = spawn(db.url()).await;
        let id = app
            .family_with("k1", &["caw", "ggz"])
            .await
            .dossier
            .unwrap()
            .dossier_id;
        advance_to(&app.team("politie"), &id, pb::Phase::CaseBuilding).await;
        // CAW receives one question and sends one.
        let to_caw = app
            .team("politie")
            .request_information(app.ask(&id, "caw", &["finances."], "case_building"))
            .await
            .unwrap()
            .into_inner()
            .information_request
            .unwrap();
        app.team("caw")
            .request_information(app.ask(&id, "politie", &["police."], "case_building"))
            .await
            .unwrap();
        let list = || {
            let mut caw = app.team("caw");
            async move {
                caw.list_information_requests(pb::ListInformationRequestsRequest::default())
                    .await
                    .unwrap()
                    .into_inner()
                    .information_requests
            }
        };
        assert_eq!(list().await.len(), 2, "{}", db.label());
        app.team("politie")
            .remove_participant(pb::RemoveParticipantRequest {
                dossier_id: id.clone(),
                organisation_id: app.orgs["caw"].clone(),
                reason: "Niet meer betrokken".into(),
            })
            .await
            .unwrap();
        let left: Vec<_> = list()
            .await
            .into_iter()
            .filter(|r| r.dossier_id == id)
            .map(|r| r.information_request_id)
            .collect();
        assert!(left.is_empty(), "{}: still listed {left:?}", db.label());
        let status = assert_code(
            app.team("caw")
                .get_information_request(pb::GetInformationRequestRequest {
                    information_request_id: to_caw.information_request_id.clone(),
                })
                .await,
            Code::PermissionDenied,
        );
        assert_eq!(error_reason(&status), "NOT_IN_CIRCLE");
    }
}

#[tokio::test]
async fn only_a_casusregisseur_of_the_named_organisation_is_appointed() {
    for db in databases().await {
        let app = spawn(db.url()).await;
        let id = in_assessment(&app).await;
        let caw = app.orgs["caw"].clone();
        let real = app.add_user("caw", &[Role::Casusregisseur]);
        let wrong = [
            (app.add_user("caw", &[Role::TeamMember]), caw.clone()),
            (app.add_user("caw", &[Role::Coordinator]), caw.clone()),
            (uuid::Uuid::new_v4().to_string(), caw.clone()),
            (real.clone(), app.orgs["politie"].clone()),
        ];
        for (user, org) in &wrong {
            let (_, entry) = app
                .refused(
                    app.team("politie")
                        .assign_case_director(appoint(&id, user, org)),
                    Code::FailedPrecondition,
                    "NOT_A_CASUSREGISSEUR",
                    A::CaseDirectorAssign,
                    Denied::Precondition,
                )
                .await;
            assert_eq!(entry.target.unwrap().dossier_id, id, "{}", db.label());
        }
        let dossier = app
            .team("politie")
            .get_dossier(read_request(&id, "triage"))
            .await
            .unwrap()
            .into_inner()
            .dossier
            .unwrap();
        assert_eq!(dossier.case_director, None, "nothing was appointed");
        let assigned = app
            .team("politie")
            .assign_case_director(appoint(&id, &real, &caw))
            .await
            .unwrap()
            .into_inner()
            .dossier
            .unwrap()
            .case_director
            .unwrap();
        assert_eq!((assigned.user_id, assigned.organisation_id), (real, caw));
    }
}

#[tokio::test]
async fn the_case_directors_organisation_stays_in_the_circle() {
    for db in databases().await {
        let app = spawn(db.url()).await;
        let id = in_assessment(&app).await;
        let director = app.add_user("caw", &[Role::Casusregisseur]);
        app.team("politie")
            .assign_case_director(appoint(&id, &director, &app.orgs["caw"]))
            .await
            .unwrap();
        app.refused(
            app.team("politie")
                .remove_participant(pb::RemoveParticipantRequest {
                    dossier_id: id.clone(),
                    organisation_id: app.orgs["caw"].clone(),
                    reason: "Niet meer betrokken".into(),
                }),
            Code::FailedPrecondition,
            "NOT_REMOVABLE",
            A::ParticipantRemove,
            Denied::Precondition,
        )
        .await;
        // CAW still reads the dossier.
        app.team("caw")
            .get_dossier(read_request(&id, "triage"))
            .await
            .unwrap_or_else(|s| panic!("{}: {s:?}", db.label()));
    }
}

#[tokio::test]
async fn only_organisations_covered_by_the_agreement_join_the_circle() {
    for db in databases().await {
        let app = spawn(db.url()).await;
        let id = app.register_family("k1").await.dossier.unwrap().dossier_id;
        let (status, _) = app
            .refused(
                app.team("politie")
                    .add_participant(pb::AddParticipantRequest {
                        dossier_id: id.clone(),
                        organisation_id: app.orgs["outsider"].clone(),
                    }),
                Code::FailedPrecondition,
                "NOT_COVERED",
                A::ParticipantAdd,
                Denied::Precondition,
            )
            .await;
        assert!(
            error_metadata(&status, "basis_denial_reason").starts_with("BASIS_DENIAL_REASON_"),
            "{status:?}"
        );
        let listed = app
            .team("outsider")
            .list_dossiers(pb::ListDossiersRequest::default())
            .await
            .unwrap()
            .into_inner()
            .dossiers;
        assert!(listed.is_empty(), "{}: {listed:?}", db.label());
        let dossier = app
            .team("politie")
            .get_dossier(read_request(&id, "triage"))
            .await
            .unwrap()
            .into_inner()
            .dossier
            .unwrap();
        assert_eq!(dossier.participants.len(), 1);
    }
}
