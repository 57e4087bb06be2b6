//! A login flood against `schakel dev` (all five services in one process,
//! one audit writer): 64 concurrent wrong guesses and then the right password
//! for one account are all refused, within bounded memory; then 5,000 more
//! attempts on a locked account and a burst on the client-certificate grant
//! add a bounded number of audit entries while a partner keeps reading.

use crate::support::{DevServer, exclusive, stdout_ok};
use schakel_kit::{client::CallContext, tls};
use schakel_proto::v1::{
    self as pb, audit_service_client::AuditServiceClient,
    broker_service_client::BrokerServiceClient, identity_service_client::IdentityServiceClient,
    issue_token_request::Grant,
};

/// The process's peak resident set (VmHWM), in KiB.
fn peak_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

fn password(username: &str, password: &str) -> pb::IssueTokenRequest {
    pb::IssueTokenRequest {
        grant: Some(Grant::Password(pb::PasswordGrant {
            username: username.into(),
            password: password.into(),
        })),
        ttl_seconds: 0,
    }
}

async fn tree_size(
    audit: &mut AuditServiceClient<
        tonic::service::interceptor::InterceptedService<tonic::transport::Channel, CallContext>,
    >,
) -> u64 {
    audit
        .get_checkpoint(pb::GetCheckpointRequest {})
        .await
        .unwrap()
        .into_inner()
        .checkpoint
        .unwrap()
        .tree_size
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[expect(
    clippy::await_holding_lock,
    reason = "the lock keeps whole tests apart; nothing else in this runtime takes it"
)]
async fn a_login_flood_is_bounded_in_memory_and_in_the_log_and_reads_go_on() {
    let _alone = exclusive();
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let server = DevServer::start(&data);
    let token = |user: &str| {
        stdout_ok(&server.cli_as(user, &["login"]))
            .trim()
            .to_owned()
    };
    // Every token this test needs, before the flood locks its peer address out.
    let (reader, officer) = (token("team.politie"), token("privacy.officer"));
    let channel = schakel_kit::client::channel(
        &server.url,
        tls::client_config(&data.join("tls/ca.pem"), None).unwrap(),
    )
    .unwrap();
    let identity = IdentityServiceClient::new(channel.clone());
    let mut broker = BrokerServiceClient::with_interceptor(
        channel.clone(),
        CallContext::with_token(Some(reader)),
    );
    let mut audit = AuditServiceClient::with_interceptor(
        channel.clone(),
        CallContext::with_token(Some(officer)),
    );
    // The dossier the dev seed registered, which team.politie may read.
    let listed = broker
        .list_dossiers(pb::ListDossiersRequest::default())
        .await
        .unwrap()
        .into_inner();
    let dossier_id = listed.dossiers[0].dossier_id.clone();
    let read = pb::GetDossierRequest {
        dossier_id,
        purpose: "case_building".into(),
        ..Default::default()
    };
    broker.get_dossier(read.clone()).await.unwrap();

    // 64 concurrent wrong guesses, then the right password: all refused
    // (each attempt is counted before its hash), in bounded memory.
    let before_kib = peak_kib(server.pid());
    let guesses = (0..64).map(|i| {
        let mut identity = identity.clone();
        async move {
            identity
                .issue_token(password("team.ggz", &format!("wrong guess {i}")))
                .await
        }
    });
    let answers = futures::future::join_all(guesses).await;
    assert!(
        answers.iter().all(Result::is_err),
        "a wrong guess was accepted"
    );
    let right = server.password("team.ggz");
    let status = identity
        .clone()
        .issue_token(password("team.ggz", &right))
        .await
        .unwrap_err();
    assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
    let after_kib = peak_kib(server.pid());
    eprintln!(
        "schakel dev peak RSS (all five services): {before_kib} KiB before, {after_kib} KiB after 64 concurrent guesses"
    );

    // The flood: 5,000 attempts on the locked account and 500 on the
    // certificate grant without a certificate, while a partner reads.
    let size_before = tree_size(&mut audit).await;
    let flood = async {
        let passwords = (0..8).map(|worker| {
            let mut identity = identity.clone();
            async move {
                for i in 0..625 {
                    let guess = format!("guess {worker}-{i}");
                    assert!(
                        identity
                            .issue_token(password("team.ggz", &guess))
                            .await
                            .is_err()
                    );
                }
            }
        });
        let certificates = (0..4).map(|_| {
            let mut identity = identity.clone();
            async move {
                for _ in 0..125 {
                    let grant = pb::IssueTokenRequest {
                        grant: Some(Grant::ClientCertificate(pb::ClientCertificateGrant {
                            client_id: "svc-broker".into(),
                        })),
                        ttl_seconds: 0,
                    };
                    assert!(identity.issue_token(grant).await.is_err());
                }
            }
        });
        futures::future::join(
            futures::future::join_all(passwords),
            futures::future::join_all(certificates),
        )
        .await;
    };
    let reads = async {
        let mut done = 0u64;
        for _ in 0..100 {
            broker
                .clone()
                .get_dossier(read.clone())
                .await
                .expect("a read during the flood");
            done += 1;
        }
        done
    };
    let ((), reads) = futures::future::join(flood, reads).await;
    let size_after = tree_size(&mut audit).await;
    let added = size_after - size_before;
    eprintln!("5,500 refused token requests and {reads} reads added {added} audit entries");
    // Each read is one entry; the refusals add one entry per grant, reason
    // and peer per failure window.
    assert!(
        added <= reads + 8,
        "{added} entries for {reads} reads and 5,500 refusals"
    );
    server.stop();
}
