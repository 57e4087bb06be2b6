//! Retries after a lost reply: the idempotency keys of Contribute,
//! AddPerson, RequestInformation and AnswerInformationRequest return the
//! first outcome and refuse reuse for another request; and a dossier bounds
//! its persons so that it stays readable.

use crate::common::*;
use schakel_kit::testing::databases;
use schakel_proto::v1 as pb;
use tonic::Code;

use pb::AuditAction as A;

const REUSED: &str = "IDEMPOTENCY_KEY_REUSED";

/// The seeded family with GGZ in the circle, in case_building.
async fn case(app: &TestApp) -> String {
    app.dossier_in("k1", &["ggz"], pb::Phase::CaseBuilding)
        .await
}

/// GGZ's diagnosis `value`, contributed for case_building under `key`.
fn diagnosis(id: &str, value: &str, key: &str) -> pb::ContributeRequest {
    let diagnosis = input("ggz.diagnosis", text_value(value));
    contribution(id, "case_building", vec![diagnosis], key)
}

/// The ids of `contributions`, in order.
fn ids(contributions: &[pb::Contribution]) -> Vec<String> {
    contributions
        .iter()
        .map(|c| c.contribution_id.clone())
        .collect()
}

/// The contributions (history included) to ggz.diagnosis, as GGZ reads them.
async fn diagnoses(app: &TestApp, id: &str) -> usize {
    let mut request = read_request(id, "case_building");
    request.fields = vec!["ggz.diagnosis".into()];
    request.include_history = true;
    let read = app.team("ggz").get_dossier(request).await;
    read.unwrap()
        .into_inner()
        .released
        .iter()
        .filter(|f| f.path == "ggz.diagnosis")
        .map(|f| f.contributions.len())
        .sum()
}

#[tokio::test]
async fn a_contribution_retried_is_stored_once() {
    for db in databases().await {
        let app = spawn(db.url()).await;
        let id = case(&app).await;
        let mut ggz = app.team("ggz");
        let request = diagnosis(&id, "Depressieve stoornis", "c-1");
        let first = ggz.clone().contribute(request.clone()).await.unwrap();
        let again = ggz.clone().contribute(request).await.unwrap();
        assert_eq!(
            ids(&again.get_ref().contributions),
            ids(&first.get_ref().contributions)
        );
        assert_eq!(diagnoses(&app, &id).await, 1, "{}", db.label());
        let other = diagnosis(&id, "Alcoholafhankelijkheid", "c-1");
        let reused = ggz.contribute(other);
        app.refused_state(reused, Code::FailedPrecondition, REUSED, A::Contribute)
            .await;
        assert_eq!(diagnoses(&app, &id).await, 1);
    }
}

#[tokio::test]
async fn a_person_added_again_is_the_same_person() {
    for db in databases().await {
        let app = spawn(db.url()).await;
        let id = app.register_family("k1").await.dossier.unwrap().dossier_id;
        let add = |given: &str| relative(&id, given, "Maes", "p-1");
        let mut politie = app.team("politie");
        let first = politie.add_person(add("Koen")).await.unwrap().into_inner();
        let again = politie.add_person(add("Koen")).await.unwrap().into_inner();
        assert_eq!(again.person_id, first.person_id);
        assert_eq!(again.dossier.unwrap().person_ids.len(), 4, "{}", db.label());
        let reused = politie.add_person(add("Karel"));
        app.refused_state(reused, Code::FailedPrecondition, REUSED, A::PersonAdd)
            .await;
        let read = read_by(&politie, &id, "triage").await;
        assert_eq!(read.dossier.unwrap().person_ids.len(), 4);
    }
}

#[tokio::test]
async fn a_question_asked_again_is_asked_once() {
    for db in databases().await {
        let app = spawn(db.url()).await;
        let id = case(&app).await;
        let politie = app.team("politie");
        let mut ask = app.ask(&id, "ggz", &["ggz."], "case_building");
        ask.idempotency_key = "r-1".into();
        let first = asked(&politie, ask.clone()).await.information_request_id;
        let again = asked(&politie, ask.clone()).await.information_request_id;
        assert_eq!(again, first);
        let outbox = questions(&politie, mailbox(pb::InformationRequestBox::Outbox)).await;
        assert_eq!(outbox.len(), 1, "{}", db.label());
        ask.justification = "Een andere vraag over de verslaving van Tom.".into();
        app.refused_state(
            politie.clone().request_information(ask),
            Code::FailedPrecondition,
            REUSED,
            A::InformationRequestCreate,
        )
        .await;
    }
}

#[tokio::test]
async fn an_answer_retried_is_the_same_answer() {
    for db in databases().await {
        let app = spawn(db.url()).await;
        let id = case(&app).await;
        let ask = app.ask(&id, "ggz", &["ggz."], "case_building");
        let asked = asked(&app.team("politie"), ask).await;
        let alcohol = input("ggz.diagnosis", text_value("Alcoholafhankelijkheid"));
        let answer = pb::AnswerInformationRequestRequest {
            idempotency_key: "a-1".into(),
            ..answer(&asked.information_request_id, vec![alcohol], vec![])
        };
        let mut ggz = app.team("ggz");
        let first = ggz.answer_information_request(answer.clone()).await;
        let first = first.unwrap().into_inner();
        let again = ggz
            .clone()
            .answer_information_request(answer)
            .await
            .unwrap_or_else(|s| panic!("{}: the retry was refused: {s:?}", db.label()))
            .into_inner();
        assert_eq!(ids(&again.contributions), ids(&first.contributions));
        let status = |r: &pb::AnswerInformationRequestResponse| {
            r.information_request.as_ref().map(|q| q.status)
        };
        assert_eq!(status(&again), status(&first));
        assert_eq!(
            status(&again),
            Some(pb::InformationRequestStatus::Answered as i32)
        );
        assert_eq!(diagnoses(&app, &id).await, 1);
    }
}

#[tokio::test]
async fn a_dossier_full_of_persons_stays_readable() {
    for db in databases().await {
        let app = spawn(db.url()).await;
        let id = app.register_family("k1").await.dossier.unwrap().dossier_id;
        let politie = app.team("politie");
        let add = |i: usize| {
            relative(
                &id,
                &format!("Familielid {i}"),
                "Peeters",
                &format!("person-{i}"),
            )
        };
        // The family has 3; 47 more fill the dossier to 50.
        for i in 4..=50 {
            politie.clone().add_person(add(i)).await.unwrap();
        }
        app.refused(
            politie.clone().add_person(add(51)),
            Code::ResourceExhausted,
            "DOSSIER_LIMIT",
            A::PersonAdd,
            Denied::Any,
        )
        .await;
        let read = try_read(&app.aanmelder(), &id, "triage").await;
        let read = read.unwrap_or_else(|s| panic!("{}: {s:?}", db.label()));
        let read = read.into_inner();
        assert_eq!(texts(&read, "persons.given_name").len(), 50);
        assert_eq!(read.dossier.unwrap().person_ids.len(), 50);
    }
}
