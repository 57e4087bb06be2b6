//! Health follows readiness: a service that cannot answer yet (an audit
//! instance standing by) reports NOT_SERVING, and SERVING once it can, so
//! that orchestrators route calls only to ready instances. Over TLS on port 0.

use schakel_kit::{
    server::App,
    testing::{RunningServer, TestIssuer, TestPki},
};
use tonic_health::pb::{
    HealthCheckRequest, health_check_response::ServingStatus, health_client::HealthClient,
};

#[tokio::test]
async fn health_reports_not_serving_until_ready() {
    let pki = TestPki::new();
    let issuer = TestIssuer::new();
    let (ready, readiness) = tokio::sync::watch::channel(false);
    let app = App::build(
        pki.server_config(),
        tonic::service::Routes::default(),
        vec!["schakel.v1.AuditService".into()],
        issuer.verifier(),
    )
    .await
    .unwrap()
    .with_readiness(readiness);
    let server = RunningServer::start(app);
    let mut health = HealthClient::new(server.channel(pki.client_tls()));
    let mut watch = health
        .watch(HealthCheckRequest {
            service: "schakel.v1.AuditService".into(),
        })
        .await
        .unwrap()
        .into_inner();
    let first = watch.message().await.unwrap().unwrap();
    assert_eq!(first.status, ServingStatus::NotServing as i32);
    let overall = health
        .check(HealthCheckRequest {
            service: String::new(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(overall.status, ServingStatus::NotServing as i32);

    ready.send_replace(true);
    let next = watch.message().await.unwrap().unwrap();
    assert_eq!(next.status, ServingStatus::Serving as i32);

    ready.send_replace(false);
    let again = watch.message().await.unwrap().unwrap();
    assert_eq!(again.status, ServingStatus::NotServing as i32);
    drop((watch, health));
    server.stop().await.unwrap();
}
