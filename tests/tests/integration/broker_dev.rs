//! A partner system against `schakel dev`: the police register a family
//! (aanmelding) and read it back, filtered by need-to-know; an organisation
//! outside the dossier's circle learns nothing. gRPC over TLS with the dev CA,
//! tokens from the identity service, all in the one `schakel dev` process.

use crate::support::{DevServer, stdout_ok};
use schakel_kit::{client::CallContext, tls};
use schakel_proto::v1::{self as pb, broker_service_client::BrokerServiceClient};
use tonic_types::StatusExt;

fn person(client_ref: &str, role: pb::PersonRole, given: &str) -> pb::ClientPersonInput {
    pb::ClientPersonInput {
        client_ref: client_ref.into(),
        roles: vec![role as i32],
        given_name: given.into(),
        family_name: "Janssens".into(),
        birth_date: Some(pb::CalendarDate {
            year: 1990,
            month: 0,
            day: 0,
        }),
        national_number: String::new(),
        address: None,
        informing: None,
    }
}

#[tokio::test]
async fn the_police_register_a_family_and_only_the_circle_reads_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let server = DevServer::start(&data);
    let token = |user: &str| {
        stdout_ok(&server.cli_as(user, &["login"]))
            .trim()
            .to_owned()
    };
    let tls = tls::client_config(&data.join("tls/ca.pem"), None).unwrap();
    let channel = schakel_kit::client::channel(&server.url, tls).unwrap();
    let client = |user: &str| {
        BrokerServiceClient::with_interceptor(
            channel.clone(),
            CallContext::with_token(Some(token(user))),
        )
    };

    let registered = client("aanmelder.politie")
        .register_dossier(pb::RegisterDossierRequest {
            district: "leuven".into(),
            requested_track: pb::Track::ChainApproach as i32,
            form: Some(pb::RegistrationForm {
                violence_types: vec!["fysiek".into()],
                violence_forms: vec!["partnergeweld".into()],
                situation_description: "Slaag na scheiding.".into(),
                persons: vec![
                    person("a", pb::PersonRole::Slachtoffer, "An"),
                    person("b", pb::PersonRole::Pleger, "Bart"),
                ],
                ..Default::default()
            }),
            idempotency_key: "e2e-1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let dossier_id = registered.dossier.unwrap().dossier_id;
    assert!(
        registered.legal_basis.is_some(),
        "registered under the seeded agreement"
    );

    let read = client("aanmelder.politie")
        .get_dossier(pb::GetDossierRequest {
            dossier_id: dossier_id.clone(),
            purpose: "triage".into(),
            fields: vec!["registration.".into(), "persons.given_name".into()],
            person_ids: vec![],
            include_history: false,
        })
        .await
        .unwrap()
        .into_inner();
    let released: Vec<&str> = read.released.iter().map(|f| f.path.as_str()).collect();
    assert!(
        released.contains(&"registration.situation_description"),
        "{released:?}"
    );
    assert!(released.contains(&"persons.given_name"), "{released:?}");

    let refused = client("team.caw")
        .get_dossier(pb::GetDossierRequest {
            dossier_id,
            purpose: "triage".into(),
            fields: vec![],
            person_ids: vec![],
            include_history: false,
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::PermissionDenied);
    assert_eq!(
        refused.get_error_details().error_info().unwrap().reason,
        "NOT_IN_CIRCLE"
    );
    // Both decisions are in the audit log.
    let logged = stdout_ok(&server.cli_as("privacy.officer", &["audit", "query"]));
    assert!(
        logged.contains("DOSSIER_REGISTER") && logged.contains("DOSSIER_READ"),
        "{logged}"
    );
    server.stop();
}
