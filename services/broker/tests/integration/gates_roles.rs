//! The role gate of the pipeline: privacy officers and coordinators of a
//! circle organisation never reach information requests, Schakel's other
//! services never erase or look up data subjects, and every such refusal is
//! audited.

use crate::common::*;
use schakel_kit::{auth::Role, testing::databases};
use schakel_proto::v1 as pb;

use pb::AuditAction as A;
use pb::InformationRequestDeclineReason as DeclineReason;

/// A dossier in case_building with GGZ and CAW in the circle, and an open
/// question of the police to GGZ; returns the dossier and request ids.
async fn open_question(app: &TestApp) -> (String, String) {
    let id = app
        .dossier_in("k1", &["ggz", "caw"], pb::Phase::CaseBuilding)
        .await;
    let ask = app.ask(&id, "ggz", &["ggz."], "case_building");
    let asked = asked(&app.team("politie"), ask).await;
    (id, asked.information_request_id)
}

#[tokio::test]
async fn oversight_roles_neither_read_nor_close_information_requests() {
    for db in databases().await {
        let app = spawn(db.url()).await;
        let (_, request_id) = open_question(&app).await;
        for role in [Role::PrivacyOfficer, Role::Coordinator] {
            // Of the addressee (GGZ) and of the sender (the police).
            for partner in ["ggz", "politie"] {
                let user = app.add_user(partner, &[role]);
                let mut client = app.as_user(&user, partner, &[role]);
                let read = client.get_information_request(question(&request_id));
                let (_, entry) = app.refused_role(read, A::InformationRequestRead).await;
                assert_eq!(entry.actor.unwrap().subject, user, "{}", db.label());
                let list =
                    client.list_information_requests(pb::ListInformationRequestsRequest::default());
                app.refused_role(list, A::InformationRequestRead).await;
                let secrecy = decline(&request_id, DeclineReason::ProfessionalSecrecy, "");
                let declined = client.decline_information_request(secrecy);
                app.refused_role(declined, A::InformationRequestDecline)
                    .await;
                let withdrawn = cancel(&request_id, "Niet meer nodig.");
                let cancelled = client.cancel_information_request(withdrawn);
                app.refused_role(cancelled, A::InformationRequestCancel)
                    .await;
            }
        }
        // Nothing changed: the addressee still finds it open.
        let read = app
            .team("ggz")
            .get_information_request(question(&request_id))
            .await
            .unwrap()
            .into_inner()
            .information_request
            .unwrap();
        assert_eq!(
            read.status,
            pb::InformationRequestStatus::Open as i32,
            "{}",
            db.label()
        );
    }
}

#[tokio::test]
async fn other_schakel_services_neither_erase_nor_look_up() {
    for db in databases().await {
        let app = spawn(db.url()).await;
        let id = app.register_family("k1").await.dossier.unwrap().dossier_id;
        for service in ["policy", "legal-basis", "audit"] {
            let mut client = app.as_service(service);
            let ordered = erase(&id, pb::ErasureReason::Ordered, "DPO-2026-9");
            app.refused_role(client.erase_dossier(ordered), A::DossierErase)
                .await;
            let lookup = client.lookup_data_subject(by_number("85073003328"));
            app.refused_role(lookup, A::DataSubjectLookup).await;
        }
        // Nothing erased: the dossier reads as before.
        let read = read_by(&app.aanmelder(), &id, "triage").await;
        assert_eq!(
            texts(&read, "persons.given_name").len(),
            3,
            "{}",
            db.label()
        );
        let erasures = app
            .entries_of(A::DossierErase)
            .await
            .iter()
            .filter(|e| e.decision != pb::Decision::Denied as i32)
            .count();
        assert_eq!(erasures, 0);
    }
}
