//! The role gate of the pipeline: privacy officers and coordinators of a
//! circle organisation never reach information requests, Schakel's other
//! services never erase or look up data subjects, and every such refusal is
//! audited.

use crate::common::*;
use schakel_kit::{auth::Role, testing::databases};
use schakel_proto::v1 as pb;
use tonic::Code;

use pb::AccessDenialReason::RoleNotPermitted;
use pb::AuditAction as A;

/// A dossier in case_building with GGZ and CAW in the circle, and an open
/// question of the police to GGZ; returns the dossier and request ids.
async fn open_question(app: &TestApp) -> (String, String) {
    let registered = app.family_with("k1", &["ggz", "caw"]).await;
    let id = registered.dossier.unwrap().dossier_id;
    advance_to(&app.team("politie"), &id, pb::Phase::CaseBuilding).await;
    let asked = app
        .team("politie")
        .request_information(app.ask(&id, "ggz", &["ggz."], "case_building"))
        .await
        .unwrap()
        .into_inner()
        .information_request
        .unwrap();
    (id, asked.information_request_id)
}

#[tokio::test]
async fn oversight_roles_neither_read_nor_close_information_requests() {
    for db in databases().await {
        let app = spawn(db.url()).await;
        let (_, request_id) = open_question(&app).await;
        let get = || pb::GetInformationRequestRequest {
            information_request_id: request_id.clone(),
        };
        for role in [Role::PrivacyOfficer, Role::Coordinator] {
            // Of the addressee (GGZ) and of the sender (the police).
            for partner in ["ggz", "politie"] {
                let user = app.add_user(partner, &[role]);
                let client = app.as_user(&user, partner, &[role]);
                let deny = Denied::As(RoleNotPermitted);
                let (_, entry) = app
                    .refused(
                        client.clone().get_information_request(get()),
                        Code::PermissionDenied,
                        "ROLE_NOT_PERMITTED",
                        A::InformationRequestRead,
                        deny,
                    )
                    .await;
                assert_eq!(entry.actor.unwrap().subject, user, "{}", db.label());
                app.refused(
                    client
                        .clone()
                        .list_information_requests(pb::ListInformationRequestsRequest::default()),
                    Code::PermissionDenied,
                    "ROLE_NOT_PERMITTED",
                    A::InformationRequestRead,
                    deny,
                )
                .await;
                app.refused(
                    client.clone().decline_information_request(
                        pb::DeclineInformationRequestRequest {
                            information_request_id: request_id.clone(),
                            reason: pb::InformationRequestDeclineReason::ProfessionalSecrecy as i32,
                            explanation: String::new(),
                        },
                    ),
                    Code::PermissionDenied,
                    "ROLE_NOT_PERMITTED",
                    A::InformationRequestDecline,
                    deny,
                )
                .await;
                app.refused(
                    client.clone().cancel_information_request(
                        pb::CancelInformationRequestRequest {
                            information_request_id: request_id.clone(),
                            explanation: "Niet meer nodig.".into(),
                        },
                    ),
                    Code::PermissionDenied,
                    "ROLE_NOT_PERMITTED",
                    A::InformationRequestCancel,
                    deny,
                )
                .await;
            }
        }
        // Nothing changed: the addressee still finds it open.
        let read = app
            .team("ggz")
            .get_information_request(get())
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
            let client = app.as_service(service);
            app.refused(
                client.clone().erase_dossier(pb::EraseDossierRequest {
                    dossier_id: id.clone(),
                    reason: pb::ErasureReason::Ordered as i32,
                    reference: "DPO-2026-9".into(),
                }),
                Code::PermissionDenied,
                "ROLE_NOT_PERMITTED",
                A::DossierErase,
                Denied::As(RoleNotPermitted),
            )
            .await;
            app.refused(
                client
                    .clone()
                    .lookup_data_subject(pb::LookupDataSubjectRequest {
                        subject: Some(pb::lookup_data_subject_request::Subject::NationalNumber(
                            "85073003328".into(),
                        )),
                        request_reference: "DSR-2026-9".into(),
                    }),
                Code::PermissionDenied,
                "ROLE_NOT_PERMITTED",
                A::DataSubjectLookup,
                Denied::As(RoleNotPermitted),
            )
            .await;
        }
        // Nothing erased: the dossier reads as before.
        let read = app
            .as_user("aanmelder-politie", "politie", &[Role::Aanmelder])
            .get_dossier(read_request(&id, "triage"))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            texts(&read, "persons.given_name").len(),
            3,
            "{}",
            db.label()
        );
        let erasures = app
            .audit_entries()
            .await
            .iter()
            .filter(|e| {
                e.action == A::DossierErase as i32 && e.decision != pb::Decision::Denied as i32
            })
            .count();
        assert_eq!(erasures, 0);
    }
}
