//! Every administrative change and every token is in the audit log, and no
//! change happens when the log cannot record it (fail closed).

use std::sync::Arc;

use crate::common::*;
use schakel_identity::{Identity, kbo::KboNumber};
use schakel_kit::{
    audit::{AppendFuture, AuditError, AuditSink},
    testing::{databases, error_reason},
};
use schakel_proto::v1 as pb;
use tonic::Code;

#[tokio::test]
async fn changes_and_tokens_are_audited_with_ids_only() {
    for db in databases().await {
        let app = spawn_app(db.url()).await;
        // What the dev seed recorded is not this test's.
        let seeded = app.audit_entries().await.len();
        let coordinator = app.as_user("coordinator").await;
        let org = coordinator
            .clone()
            .create_organisation(pb::CreateOrganisationRequest {
                name: "PZ Aarschot".into(),
                partner_type: "politie".into(),
                region: "leuven".into(),
                kbo_number: KboNumber::from_base(31_337).to_string(),
            })
            .await
            .unwrap()
            .into_inner()
            .organisation
            .unwrap();
        let user = coordinator
            .clone()
            .create_user(pb::CreateUserRequest {
                username: "jan.peeters".into(),
                display_name: "Jan Peeters".into(),
                organisation_id: org.id.clone(),
                roles: vec![pb::Role::TeamMember as i32],
                password: String::new(),
            })
            .await
            .unwrap()
            .into_inner()
            .user
            .unwrap();
        coordinator
            .clone()
            .disable_user(pb::DisableUserRequest {
                user_id: user.id.clone(),
                reason: "vertrokken".into(),
            })
            .await
            .unwrap();
        let rotated = coordinator
            .clone()
            .rotate_signing_key(pb::RotateSigningKeyRequest {})
            .await
            .unwrap()
            .into_inner();
        assert_code(
            app.try_login("team.caw", "wrong").await,
            Code::Unauthenticated,
        );

        let entries = app.audit_entries().await.split_off(seeded);
        let find = |action: pb::AuditAction| {
            entries
                .iter()
                .filter(|e| e.action == action as i32)
                .collect::<Vec<_>>()
        };
        let created = find(pb::AuditAction::OrganisationCreate);
        assert_eq!(created.len(), 1);
        assert_eq!(created[0].target.as_ref().unwrap().organisation_id, org.id);
        assert_eq!(created[0].service, "identity");
        let user_created = find(pb::AuditAction::UserCreate);
        assert_eq!(
            user_created[0].target.as_ref().unwrap().resource_id,
            user.id
        );
        assert_eq!(
            find(pb::AuditAction::UserDisable)[0]
                .target
                .as_ref()
                .unwrap()
                .resource_id,
            user.id
        );
        assert_eq!(
            find(pb::AuditAction::SigningKeyRotate)[0]
                .target
                .as_ref()
                .unwrap()
                .resource_id,
            rotated.kid
        );
        let issued = find(pb::AuditAction::TokenIssue);
        assert!(
            issued
                .iter()
                .any(|e| e.actor.as_ref().unwrap().partner_type == "justitiehuis")
        );
        let failed = find(pb::AuditAction::AuthenticationFail);
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].decision, pb::Decision::Denied as i32);

        // Ids and codes only: no names, user names, passwords or reasons.
        let everything = format!("{entries:?}");
        for secret in [
            "Jan Peeters",
            "jan.peeters",
            "PZ Aarschot",
            "vertrokken",
            "wrong",
            &app.password("coordinator"),
        ] {
            assert!(
                !everything.contains(secret),
                "{secret:?} leaked into the audit log on {}",
                db.label()
            );
        }
    }
}

/// An audit log that is down.
struct DownSink;

impl AuditSink for DownSink {
    fn append(&self, _entry: pb::AuditEntry, _append_id: String) -> AppendFuture<'_> {
        Box::pin(async { Err(AuditError::Unavailable("down".into())) })
    }
}

#[tokio::test]
async fn with_the_log_down_one_change_is_staged_nothing_else_changes_and_no_token_is_issued() {
    for db in databases().await {
        let app = spawn_app(db.url()).await;
        let token = app.token("coordinator").await;
        // A second instance of the service on the same database whose audit log is down.
        let down = Identity::new(
            app.identity.database().clone(),
            app.config.clone(),
            app.auth.clone(),
            app.master.clone(),
            app.clock.clone(),
            Arc::new(DownSink),
        )
        .await
        .unwrap();
        let config = app.pki.server_config();
        let verifier = Arc::new(schakel_kit::auth::TokenVerifier::new(
            app.auth.clone(),
            down.jwks_fetcher(),
        ));
        let routes = tonic::service::Routes::new(down.clone().into_server(&config.limits));
        let server = schakel_kit::testing::RunningServer::start(
            schakel_kit::server::App::build(config, routes, vec![], verifier)
                .await
                .unwrap(),
        );
        let mut client = pb::identity_service_client::IdentityServiceClient::with_interceptor(
            server.channel(app.pki.client_tls()),
            schakel_kit::client::CallContext::with_token(Some(token)),
        );
        let before = app.audit_entries().await.len();
        // The first change commits and its entry is staged: the reply says so.
        let status = client
            .create_organisation(pb::CreateOrganisationRequest {
                name: "Nergens".into(),
                partner_type: "caw".into(),
                region: "leuven".into(),
                kbo_number: KboNumber::from_base(4242).to_string(),
            })
            .await
            .unwrap_err();
        assert_eq!(status.code(), Code::Unavailable, "{status:?}");
        assert_eq!(error_reason(&status), "AUDIT_PENDING");
        // Then no change begins until the log has taken it.
        let status = assert_code(
            client
                .rotate_signing_key(pb::RotateSigningKeyRequest {})
                .await,
            Code::Unavailable,
        );
        assert_eq!(error_reason(&status), "AUDIT_UNAVAILABLE");
        let grant = pb::issue_token_request::Grant::Password(pb::PasswordGrant {
            username: "team.caw".into(),
            password: app.password("team.caw"),
        });
        assert_code(
            client
                .issue_token(pb::IssueTokenRequest {
                    grant: Some(grant),
                    ttl_seconds: 0,
                })
                .await,
            Code::Unavailable,
        );

        // The organisation exists, the signing key is the same, nothing is logged yet.
        let orgs = app
            .as_user("coordinator")
            .await
            .list_organisations(pb::ListOrganisationsRequest {
                partner_type: "caw".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .organisations;
        assert_eq!(orgs.len(), 2, "{}", db.label());
        let jwks = app
            .client(None)
            .get_jwks(pb::GetJwksRequest {})
            .await
            .unwrap()
            .into_inner()
            .jwks_json;
        assert_eq!(
            serde_json::from_str::<serde_json::Value>(&jwks).unwrap()["keys"]
                .as_array()
                .unwrap()
                .len(),
            2,
            "still the same active and next key"
        );
        // (the as_user login above added exactly one TOKEN_ISSUE entry)
        assert_eq!(app.audit_entries().await.len(), before + 1);
        // The staged entry is in the shared database: any instance whose log
        // is reachable delivers it, once.
        assert_eq!(down.audit_outbox().pending().await.unwrap(), 1);
        let drained = app.identity.audit_outbox().drain(std::time::Duration::ZERO);
        assert_eq!(drained.await.unwrap(), 1, "{}", db.label());
        let entries = app.audit_entries().await;
        assert_eq!(entries.len(), before + 2);
        let created = entries.last().unwrap();
        assert_eq!(created.action, pb::AuditAction::OrganisationCreate as i32);
        assert_eq!(down.audit_outbox().pending().await.unwrap(), 0);
    }
}

#[tokio::test]
async fn the_dev_seed_creates_through_the_audited_path_once() {
    let db = schakel_kit::testing::TestDatabase::sqlite().unwrap();
    let app = spawn_app(db.url()).await;
    let by_seed = |entries: &[pb::AuditEntry], action: pb::AuditAction| {
        entries
            .iter()
            .filter(|e| e.action == action as i32)
            .filter(|e| {
                e.actor
                    .as_ref()
                    .is_some_and(|a| a.subject == "svc-dev-seed")
            })
            .count()
    };
    let entries = app.audit_entries().await;
    assert_eq!(by_seed(&entries, pb::AuditAction::OrganisationCreate), 8);
    assert_eq!(
        by_seed(&entries, pb::AuditAction::UserCreate),
        app.accounts.len()
    );
    // Seeding again (a restart) creates nothing, so records nothing.
    let dir = tempfile::tempdir().unwrap();
    schakel_identity::dev::seed(&app.identity, &dir.path().join("again.json"))
        .await
        .unwrap();
    let again = app.audit_entries().await;
    assert_eq!(by_seed(&again, pb::AuditAction::OrganisationCreate), 8);
    assert_eq!(
        by_seed(&again, pb::AuditAction::UserCreate),
        app.accounts.len()
    );
}
