//! Retries after a lost reply: the idempotency keys of Contribute,
//! AddPerson, RequestInformation and AnswerInformationRequest return the
//! first outcome and refuse reuse for another request; and a dossier bounds
//! its persons so that it stays readable.

use crate::common::*;
use schakel_kit::{auth::Role, testing::databases};
use schakel_proto::v1 as pb;
use tonic::Code;

use pb::AuditAction as A;

/// The seeded family with GGZ in the circle, in case_building.
async fn case(app: &TestApp) -> String {
    let id = app
        .family_with("k1", &["ggz"])
        .await
        .dossier
        .unwrap()
        .dossier_id;
    advance_to(&app.team("politie"), &id, pb::Phase::CaseBuilding).await;
    id
}

fn diagnosis(id: &str, value: &str, key: &str) -> pb::ContributeRequest {
    pb::ContributeRequest {
        dossier_id: id.into(),
        purpose: "case_building".into(),
        contributions: vec![pb::ContributionInput {
            path: "ggz.diagnosis".into(),
            value: Some(text_value(value)),
            ..Default::default()
        }],
        idempotency_key: key.into(),
    }
}

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
    let read = app
        .team("ggz")
        .get_dossier(request)
        .await
        .unwrap()
        .into_inner();
    read.released
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
        let ggz = app.team("ggz");
        let request = diagnosis(&id, "Depressieve stoornis", "c-1");
        let first = ggz.clone().contribute(request.clone()).await.unwrap();
        let again = ggz.clone().contribute(request).await.unwrap();
        assert_eq!(
            ids(&again.get_ref().contributions),
            ids(&first.get_ref().contributions)
        );
        assert_eq!(diagnoses(&app, &id).await, 1, "{}", db.label());
        app.refused(
            ggz.clone()
                .contribute(diagnosis(&id, "Alcoholafhankelijkheid", "c-1")),
            Code::FailedPrecondition,
            "IDEMPOTENCY_KEY_REUSED",
            A::Contribute,
            Denied::Precondition,
        )
        .await;
        assert_eq!(diagnoses(&app, &id).await, 1);
    }
}

#[tokio::test]
async fn a_person_added_again_is_the_same_person() {
    for db in databases().await {
        let app = spawn(db.url()).await;
        let id = app.register_family("k1").await.dossier.unwrap().dossier_id;
        let add = |given: &str| pb::AddPersonRequest {
            dossier_id: id.clone(),
            purpose: "triage".into(),
            person: Some(pb::ClientPersonInput {
                roles: vec![pb::PersonRole::Familie as i32],
                given_name: given.into(),
                family_name: "Maes".into(),
                ..Default::default()
            }),
            relations: vec![],
            idempotency_key: "p-1".into(),
        };
        let politie = app.team("politie");
        let first = politie
            .clone()
            .add_person(add("Koen"))
            .await
            .unwrap()
            .into_inner();
        let again = politie
            .clone()
            .add_person(add("Koen"))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(again.person_id, first.person_id);
        assert_eq!(again.dossier.unwrap().person_ids.len(), 4, "{}", db.label());
        app.refused(
            politie.clone().add_person(add("Karel")),
            Code::FailedPrecondition,
            "IDEMPOTENCY_KEY_REUSED",
            A::PersonAdd,
            Denied::Precondition,
        )
        .await;
        let dossier = politie
            .clone()
            .get_dossier(read_request(&id, "triage"))
            .await
            .unwrap()
            .into_inner()
            .dossier
            .unwrap();
        assert_eq!(dossier.person_ids.len(), 4);
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
        let request_id = |r: pb::RequestInformationResponse| {
            r.information_request.unwrap().information_request_id
        };
        let first = request_id(
            politie
                .clone()
                .request_information(ask.clone())
                .await
                .unwrap()
                .into_inner(),
        );
        let again = request_id(
            politie
                .clone()
                .request_information(ask.clone())
                .await
                .unwrap()
                .into_inner(),
        );
        assert_eq!(again, first);
        let outbox = politie
            .clone()
            .list_information_requests(pb::ListInformationRequestsRequest {
                r#box: pb::InformationRequestBox::Outbox as i32,
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .information_requests;
        assert_eq!(outbox.len(), 1, "{}", db.label());
        ask.justification = "Een andere vraag over de verslaving van Tom.".into();
        app.refused(
            politie.clone().request_information(ask),
            Code::FailedPrecondition,
            "IDEMPOTENCY_KEY_REUSED",
            A::InformationRequestCreate,
            Denied::Precondition,
        )
        .await;
    }
}

#[tokio::test]
async fn an_answer_retried_is_the_same_answer() {
    for db in databases().await {
        let app = spawn(db.url()).await;
        let id = case(&app).await;
        let asked = app
            .team("politie")
            .request_information(app.ask(&id, "ggz", &["ggz."], "case_building"))
            .await
            .unwrap()
            .into_inner()
            .information_request
            .unwrap();
        let answer = pb::AnswerInformationRequestRequest {
            information_request_id: asked.information_request_id.clone(),
            contributions: vec![pb::ContributionInput {
                path: "ggz.diagnosis".into(),
                value: Some(text_value("Alcoholafhankelijkheid")),
                ..Default::default()
            }],
            declined_fields: vec![],
            note: String::new(),
            idempotency_key: "a-1".into(),
        };
        let ggz = app.team("ggz");
        let first = ggz
            .clone()
            .answer_information_request(answer.clone())
            .await
            .unwrap()
            .into_inner();
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
        let add = |i: usize| pb::AddPersonRequest {
            dossier_id: id.clone(),
            purpose: "triage".into(),
            person: Some(pb::ClientPersonInput {
                roles: vec![pb::PersonRole::Familie as i32],
                given_name: format!("Familielid {i}"),
                family_name: "Peeters".into(),
                ..Default::default()
            }),
            relations: vec![],
            idempotency_key: format!("person-{i}"),
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
        let read = app
            .as_user("aanmelder-politie", "politie", &[Role::Aanmelder])
            .get_dossier(read_request(&id, "triage"))
            .await
            .unwrap_or_else(|s| panic!("{}: {s:?}", db.label()))
            .into_inner();
        assert_eq!(texts(&read, "persons.given_name").len(), 50);
        assert_eq!(read.dossier.unwrap().person_ids.len(), 50);
    }
}
