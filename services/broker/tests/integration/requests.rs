//! Information requests (vraag tot infodeling) over gRPC on SQLite and
//! PostgreSQL: ask a partner in the circle, answer with contributions (then
//! visible only as the policy allows), decline for professional secrecy,
//! cancel, overdue flags, inbox and outbox, all audited.

use crate::common::*;
use schakel_kit::{testing::databases, time::to_timestamp};
use schakel_proto::v1 as pb;
use tonic::Code;

use pb::InformationRequestBox as Mailbox;
use pb::InformationRequestDeclineReason as Decline;
use pb::InformationRequestStatus as S;

/// The seeded family with GGZ and CAW in the circle, in case_building.
async fn case(app: &TestApp) -> String {
    app.dossier_in("k1", &["ggz", "caw"], pb::Phase::CaseBuilding)
        .await
}

/// A question to `to` about `fields` for case_building, about Tom's mental
/// state, due `due_days` after T0.
fn ask(
    app: &TestApp,
    id: &str,
    to: &str,
    fields: &[&str],
    due_days: i64,
) -> pb::RequestInformationRequest {
    pb::RequestInformationRequest {
        justification: "Zicht op de psychische toestand van Tom voor het veiligheidsplan.".into(),
        due_at: Some(to_timestamp(T0 + due_days * DAY)),
        ..app.ask(id, to, fields, "case_building")
    }
}

#[tokio::test]
async fn a_request_is_answered_declined_or_cancelled_by_the_right_party() {
    for db in databases().await {
        let app = spawn(db.url()).await;
        let id = case(&app).await;
        let politie = app.team("politie");
        let first = asked(&politie, ask(&app, &id, "ggz", &["ggz."], 7)).await;
        let qid = first.information_request_id.clone();
        assert_eq!(first.status, S::Open as i32);
        // Only an organisation in the circle can be asked.
        let to_vk = ask(&app, &id, "vk", &["child_welfare."], 7);
        let refused = politie.clone().request_information(to_vk).await;
        assert_refusal(refused, Code::FailedPrecondition, "NOT_IN_CIRCLE");

        // GGZ finds it in its inbox; CAW, in the circle but not addressed, does not.
        let inbox = |partner| questions_of(&app, partner, mailbox(Mailbox::Inbox));
        assert_eq!(inbox("ggz").await.len(), 1, "{}", db.label());
        assert!(inbox("caw").await.is_empty());
        assert_code(
            app.team("caw")
                .get_information_request(question(&qid))
                .await,
            Code::NotFound,
        );
        // The asker cannot answer its own question.
        let own = answer(&qid, vec![], vec![]);
        let refused = politie.clone().answer_information_request(own).await;
        assert_refusal(refused, Code::PermissionDenied, "NOT_ADDRESSEE");

        // GGZ answers the diagnosis and declines the clinical notes.
        let diagnosis = input("ggz.diagnosis", text_value("Alcoholafhankelijkheid"));
        let notes = declined("ggz.clinical_notes", Decline::ProfessionalSecrecy);
        let answered = app
            .team("ggz")
            .answer_information_request(answer(&qid, vec![diagnosis], vec![notes]))
            .await
            .unwrap()
            .into_inner();
        let request = answered.information_request.unwrap();
        assert_eq!(request.status, S::PartiallyAnswered as i32);
        assert_eq!(request.answer_contribution_ids.len(), 1);
        assert_eq!(answered.contributions[0].information_request_id, qid);
        // The answer is a contribution: the police still may not read it.
        let read = read_by(&politie, &id, "case_building").await;
        assert_eq!(
            withheld(&read, "ggz.diagnosis"),
            Some(pb::AccessDenialReason::PolicyDenied),
            "{}",
            db.label()
        );
        let ggz = read_by(&app.team("ggz"), &id, "case_building").await;
        assert_eq!(texts(&ggz, "ggz.diagnosis"), vec!["Alcoholafhankelijkheid"]);
        // Answered is closed.
        let other = decline(&qid, Decline::Other, "");
        let refused = app.team("ggz").decline_information_request(other).await;
        assert_refusal(refused, Code::FailedPrecondition, "NOT_OPEN");

        // A question to CAW goes overdue, then CAW declines it.
        let to_caw = asked(&politie, ask(&app, &id, "caw", &["finances."], 3)).await;
        let caw_id = to_caw.information_request_id;
        app.clock.advance(4 * DAY);
        let overdue = pb::ListInformationRequestsRequest {
            overdue_only: true,
            ..mailbox(Mailbox::Outbox)
        };
        let overdue = questions(&politie, overdue).await;
        assert_eq!(overdue.len(), 1);
        assert_eq!(overdue[0].information_request_id, caw_id);
        let nothing = decline(&caw_id, Decline::NoInformation, "");
        let refused = politie.clone().decline_information_request(nothing).await;
        assert_refusal(refused, Code::PermissionDenied, "NOT_YOURS");
        let secrecy = decline(
            &caw_id,
            Decline::ProfessionalSecrecy,
            "Beroepsgeheim: geen toestemming van de cliënt.",
        );
        let declined = app
            .team("caw")
            .decline_information_request(secrecy)
            .await
            .unwrap()
            .into_inner()
            .information_request
            .unwrap();
        assert_eq!(declined.status, S::Declined as i32);
        assert!(!declined.overdue);

        // The sender withdraws a third question.
        let third = asked(&politie, ask(&app, &id, "ggz", &["substance_use."], 10)).await;
        let cancelled = politie
            .clone()
            .cancel_information_request(cancel(&third.information_request_id, "Niet meer nodig."))
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
        app.assert_audit_log_lacks(&["psychische", "Beroepsgeheim", "Alcohol"])
            .await;
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

/// The information requests `partner`'s team lists with `request`.
async fn questions_of(
    app: &TestApp,
    partner: &str,
    request: pb::ListInformationRequestsRequest,
) -> Vec<pb::InformationRequest> {
    questions(&app.team(partner), request).await
}
