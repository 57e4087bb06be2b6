//! Information requests (vraag tot infodeling) over gRPC on SQLite and
//! PostgreSQL: ask a partner in the circle, answer with contributions (then
//! visible only as the policy allows), decline for professional secrecy,
//! cancel, overdue flags, inbox and outbox, all audited.

use crate::common::*;
use schakel_kit::{testing::databases, time::to_timestamp};
use schakel_proto::v1 as pb;
use tonic::Code;

use pb::InformationRequestStatus as S;

struct Case {
    id: String,
}

async fn case(app: &TestApp) -> Case {
    let registered = app.register_family("k1").await;
    let id = registered.dossier.unwrap().dossier_id;
    let politie = app.team("politie");
    for partner in ["ggz", "caw"] {
        politie
            .clone()
            .add_participant(pb::AddParticipantRequest {
                dossier_id: id.clone(),
                organisation_id: app.orgs[partner].clone(),
            })
            .await
            .unwrap();
    }
    politie
        .clone()
        .advance_phase(pb::AdvancePhaseRequest {
            dossier_id: id.clone(),
            expected_phase: pb::Phase::Registration as i32,
            target_phase: pb::Phase::CaseBuilding as i32,
            track: 0,
            reason: "dossiervorming".into(),
        })
        .await
        .unwrap();
    Case { id }
}

fn ask(case: &Case, to: &str, fields: &[&str], due_days: i64) -> pb::RequestInformationRequest {
    pb::RequestInformationRequest {
        dossier_id: case.id.clone(),
        to_organisation_id: to.into(),
        fields: fields.iter().map(|f| (*f).to_owned()).collect(),
        person_ids: vec![],
        purpose: "case_building".into(),
        justification: "Zicht op de psychische toestand van Tom voor het veiligheidsplan.".into(),
        due_at: Some(to_timestamp(T0 + due_days * DAY)),
        idempotency_key: String::new(),
    }
}

fn text(t: &str) -> pb::FieldValue {
    pb::FieldValue {
        kind: Some(pb::field_value::Kind::Text(t.into())),
    }
}

#[tokio::test]
async fn a_request_is_answered_declined_or_cancelled_by_the_right_party() {
    for db in databases().await {
        let app = spawn(db.url()).await;
        let case = case(&app).await;
        let politie = app.team("politie");
        let asked = politie
            .clone()
            .request_information(ask(&case, &app.orgs["ggz"], &["ggz."], 7))
            .await
            .unwrap()
            .into_inner()
            .information_request
            .unwrap();
        assert_eq!(asked.status, S::Open as i32);
        // Only an organisation in the circle can be asked.
        let status = assert_code(
            politie
                .clone()
                .request_information(ask(&case, &app.orgs["vk"], &["child_welfare."], 7))
                .await,
            Code::FailedPrecondition,
        );
        assert_eq!(error_reason(&status), "NOT_IN_CIRCLE");

        // GGZ finds it in its inbox; CAW, in the circle but not addressed, does not.
        let inbox = |partner: &'static str| {
            let mut client = app.team(partner);
            async move {
                client
                    .list_information_requests(pb::ListInformationRequestsRequest {
                        r#box: pb::InformationRequestBox::Inbox as i32,
                        ..Default::default()
                    })
                    .await
                    .unwrap()
                    .into_inner()
                    .information_requests
            }
        };
        assert_eq!(inbox("ggz").await.len(), 1, "{}", db.label());
        assert!(inbox("caw").await.is_empty());
        assert_code(
            app.team("caw")
                .get_information_request(pb::GetInformationRequestRequest {
                    information_request_id: asked.information_request_id.clone(),
                })
                .await,
            Code::NotFound,
        );
        // The asker cannot answer its own question.
        let status = assert_code(
            politie
                .clone()
                .answer_information_request(pb::AnswerInformationRequestRequest {
                    information_request_id: asked.information_request_id.clone(),
                    ..Default::default()
                })
                .await,
            Code::PermissionDenied,
        );
        assert_eq!(error_reason(&status), "NOT_ADDRESSEE");

        // GGZ answers the diagnosis and declines the clinical notes.
        let answered = app
            .team("ggz")
            .answer_information_request(pb::AnswerInformationRequestRequest {
                information_request_id: asked.information_request_id.clone(),
                contributions: vec![pb::ContributionInput {
                    path: "ggz.diagnosis".into(),
                    person_id: String::new(),
                    value: Some(text("Alcoholafhankelijkheid")),
                    supersedes_contribution_id: String::new(),
                }],
                declined_fields: vec![pb::DeclinedField {
                    path: "ggz.clinical_notes".into(),
                    reason: pb::InformationRequestDeclineReason::ProfessionalSecrecy as i32,
                }],
                note: String::new(),
                idempotency_key: String::new(),
            })
            .await
            .unwrap()
            .into_inner();
        let request = answered.information_request.unwrap();
        assert_eq!(request.status, S::PartiallyAnswered as i32);
        assert_eq!(request.answer_contribution_ids.len(), 1);
        assert_eq!(
            answered.contributions[0].information_request_id,
            asked.information_request_id
        );
        // The answer is a contribution: the police still may not read it.
        let read = politie
            .clone()
            .get_dossier(read_request(&case.id, "case_building"))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            withheld(&read, "ggz.diagnosis"),
            Some(pb::AccessDenialReason::PolicyDenied),
            "{}",
            db.label()
        );
        let ggz = app
            .team("ggz")
            .get_dossier(read_request(&case.id, "case_building"))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(texts(&ggz, "ggz.diagnosis"), vec!["Alcoholafhankelijkheid"]);
        // Answered is closed.
        let status = assert_code(
            app.team("ggz")
                .decline_information_request(pb::DeclineInformationRequestRequest {
                    information_request_id: asked.information_request_id.clone(),
                    reason: pb::InformationRequestDeclineReason::Other as i32,
                    explanation: String::new(),
                })
                .await,
            Code::FailedPrecondition,
        );
        assert_eq!(error_reason(&status), "NOT_OPEN");

        // A question to CAW goes overdue, then CAW declines it.
        let to_caw = politie
            .clone()
            .request_information(ask(&case, &app.orgs["caw"], &["finances."], 3))
            .await
            .unwrap()
            .into_inner()
            .information_request
            .unwrap();
        app.clock.advance(4 * DAY);
        let overdue = politie
            .clone()
            .list_information_requests(pb::ListInformationRequestsRequest {
                r#box: pb::InformationRequestBox::Outbox as i32,
                overdue_only: true,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .information_requests;
        assert_eq!(overdue.len(), 1);
        assert_eq!(
            overdue[0].information_request_id,
            to_caw.information_request_id
        );
        let status = assert_code(
            politie
                .clone()
                .decline_information_request(pb::DeclineInformationRequestRequest {
                    information_request_id: to_caw.information_request_id.clone(),
                    reason: pb::InformationRequestDeclineReason::NoInformation as i32,
                    explanation: String::new(),
                })
                .await,
            Code::PermissionDenied,
        );
        assert_eq!(error_reason(&status), "NOT_YOURS");
        let declined = app
            .team("caw")
            .decline_information_request(pb::DeclineInformationRequestRequest {
                information_request_id: to_caw.information_request_id.clone(),
                reason: pb::InformationRequestDeclineReason::ProfessionalSecrecy as i32,
                explanation: "Beroepsgeheim: geen toestemming van de cliënt.".into(),
            })
            .await
            .unwrap()
            .into_inner()
            .information_request
            .unwrap();
        assert_eq!(declined.status, S::Declined as i32);
        assert!(!declined.overdue);

        // The sender withdraws a third question.
        let third = politie
            .clone()
            .request_information(ask(&case, &app.orgs["ggz"], &["substance_use."], 10))
            .await
            .unwrap()
            .into_inner()
            .information_request
            .unwrap();
        let cancelled = politie
            .clone()
            .cancel_information_request(pb::CancelInformationRequestRequest {
                information_request_id: third.information_request_id.clone(),
                explanation: "Niet meer nodig.".into(),
            })
            .await
            .unwrap()
            .into_inner()
            .information_request
            .unwrap();
        assert_eq!(cancelled.status, S::Cancelled as i32);

        // All in the audit log, without the free text.
        let entries = app.audit_entries().await;
        for action in [
            pb::AuditAction::InformationRequestCreate,
            pb::AuditAction::InformationRequestAnswer,
            pb::AuditAction::InformationRequestDecline,
            pb::AuditAction::InformationRequestCancel,
        ] {
            assert!(
                entries.iter().any(|e| e.action == action as i32),
                "{action:?} missing"
            );
        }
        let log = app.audit.log();
        let size = log.checkpoint().await.unwrap().tree_size;
        let bytes: Vec<u8> = log
            .leaves(0, size)
            .await
            .unwrap()
            .into_iter()
            .flat_map(|l| l.entry_bytes)
            .collect();
        for secret in ["psychische", "Beroepsgeheim", "Alcohol"] {
            assert!(
                !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                "{secret} in the audit log"
            );
        }
        // Nor in clear in the broker's database.
        use sqlx::Row;
        let rows = sqlx::query("SELECT sealed FROM information_requests")
            .fetch_all(app.broker.database().pool())
            .await
            .unwrap();
        assert_eq!(rows.len(), 3);
        for row in rows {
            let sealed: Vec<u8> = row.try_get("sealed").unwrap();
            assert!(!sealed.windows(10).any(|w| w == b"psychische"));
        }
    }
}
