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
    app.dossier_in("k1", &["caw"], pb::Phase::Assessment).await
}

#[tokio::test]
async fn a_removed_organisation_loses_the_dossiers_information_requests() {
    for db in databases().await {
        let app = spawn(db.url()).await;
        let politie = app.team("politie");
        let id = app
            .dossier_in("k1", &["caw", "ggz"], pb::Phase::CaseBuilding)
            .await;
        // CAW receives one question and sends one.
        let ask = app.ask(&id, "caw", &["finances."], "case_building");
        let to_caw = asked(&politie, ask).await.information_request_id;
        let ask = app.ask(&id, "politie", &["police."], "case_building");
        let caw = app.team("caw");
        asked(&caw, ask).await;
        let list = || questions(&caw, Default::default());
        assert_eq!(list().await.len(), 2, "{}", db.label());
        let leaves = app.leaves(&id, "caw", "Niet meer betrokken");
        politie.clone().remove_participant(leaves).await.unwrap();
        let left: Vec<_> = list()
            .await
            .into_iter()
            .filter(|r| r.dossier_id == id)
            .map(|r| r.information_request_id)
            .collect();
        assert!(left.is_empty(), "{}: still listed {left:?}", db.label());
        let read = app
            .team("caw")
            .get_information_request(question(&to_caw))
            .await;
        assert_refusal(read, Code::PermissionDenied, "NOT_IN_CIRCLE");
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
                .refused_state(
                    app.team("politie")
                        .assign_case_director(appoint(&id, user, org)),
                    Code::FailedPrecondition,
                    "NOT_A_CASUSREGISSEUR",
                    A::CaseDirectorAssign,
                )
                .await;
            assert_eq!(entry.target.unwrap().dossier_id, id, "{}", db.label());
        }
        let dossier = read_by(&app.team("politie"), &id, "triage").await;
        assert_eq!(
            dossier.dossier.unwrap().case_director,
            None,
            "nothing was appointed"
        );
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
        let leaves = app.leaves(&id, "caw", "Niet meer betrokken");
        app.refused_state(
            app.team("politie").remove_participant(leaves),
            Code::FailedPrecondition,
            "NOT_REMOVABLE",
            A::ParticipantRemove,
        )
        .await;
        // CAW still reads the dossier.
        let read = try_read(&app.team("caw"), &id, "triage").await;
        read.unwrap_or_else(|s| panic!("{}: {s:?}", db.label()));
    }
}

#[tokio::test]
async fn only_organisations_covered_by_the_agreement_join_the_circle() {
    for db in databases().await {
        let app = spawn(db.url()).await;
        let id = app.register_family("k1").await.dossier.unwrap().dossier_id;
        let (status, _) = app
            .refused_state(
                app.team("politie")
                    .add_participant(app.joins(&id, "outsider")),
                Code::FailedPrecondition,
                "NOT_COVERED",
                A::ParticipantAdd,
            )
            .await;
        assert!(
            error_metadata(&status, "basis_denial_reason").starts_with("BASIS_DENIAL_REASON_"),
            "{status:?}"
        );
        let listed = listed(&app.team("outsider")).await;
        assert!(listed.is_empty(), "{}: {listed:?}", db.label());
        let read = read_by(&app.team("politie"), &id, "triage").await;
        assert_eq!(read.dossier.unwrap().participants.len(), 1);
    }
}
