//! Disabled users and service accounts lose their tokens within the bound;
//! service accounts are listed, disabled and given a new secret; oversight
//! accounts need a second coordinator.

use crate::common::*;
use schakel_kit::testing::{databases, error_reason};
use schakel_proto::v1::{self as pb, issue_token_request::Grant};
use tonic::Code;

/// A WhoAmI call's future.
type Answer = std::pin::Pin<
    Box<
        dyn std::future::Future<Output = Result<tonic::Response<pb::WhoAmIResponse>, tonic::Status>>
            + Send,
    >,
>;

fn who(client: &Client) -> impl Fn() -> Answer + '_ {
    move || {
        let mut c = client.clone();
        Box::pin(async move { c.who_am_i(pb::WhoAmIRequest {}).await })
    }
}

async fn secret_login(
    app: &TestApp,
    client_id: &str,
    secret: &str,
) -> Result<String, tonic::Status> {
    app.client(None)
        .issue_token(pb::IssueTokenRequest {
            grant: Some(Grant::ClientCredentials(pb::ClientCredentialsGrant {
                client_id: client_id.into(),
                client_secret: secret.into(),
            })),
            ttl_seconds: 0,
        })
        .await
        .map(|r| r.into_inner().access_token)
}

#[tokio::test]
async fn a_disabled_users_tokens_stop_within_the_bound() {
    for db in databases().await {
        let app = spawn_app(db.url()).await;
        let user = app.as_user("team.caw").await;
        let me = user.clone().who_am_i(pb::WhoAmIRequest {}).await.unwrap();
        let id = me.into_inner().actor.unwrap().subject;
        app.as_user("coordinator")
            .await
            .disable_user(pb::DisableUserRequest {
                user_id: id.clone(),
                reason: "left the organisation".into(),
            })
            .await
            .unwrap();
        refused_within_bound(who(&user), "TOKEN_REVOKED").await;
        let again = app.try_login("team.caw", &app.password("team.caw")).await;
        assert_code(again, Code::Unauthenticated);
        // Another user's token is untouched.
        app.as_user("team.politie")
            .await
            .who_am_i(pb::WhoAmIRequest {})
            .await
            .unwrap();
        let set = app.identity.published().await.unwrap();
        assert!(set.revoked.iter().any(|r| r.sub == id), "{}", db.label());
    }
}

#[tokio::test]
async fn service_accounts_are_listed_disabled_and_given_new_secrets() {
    for db in databases().await {
        let app = spawn_app(db.url()).await;
        let coordinator = app.as_user("coordinator").await;
        let caw = app.organisation_id("caw").await;
        let created = coordinator
            .clone()
            .create_service_account(pb::CreateServiceAccountRequest {
                name: "CAW registratiesysteem".into(),
                organisation_id: caw.clone(),
                roles: vec![pb::Role::Aanmelder as i32],
                certificate_subject: String::new(),
                generate_secret: true,
            })
            .await
            .unwrap()
            .into_inner();
        let account = created.service_account.unwrap();
        assert!(account.has_secret && !account.disabled);
        let listed = coordinator
            .clone()
            .list_service_accounts(pb::ListServiceAccountsRequest {
                organisation_id: caw.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .service_accounts;
        assert_eq!(listed, vec![account.clone()], "{}", db.label());
        // Only coordinators list.
        assert_code(
            app.as_user("team.caw")
                .await
                .list_service_accounts(pb::ListServiceAccountsRequest::default())
                .await,
            Code::PermissionDenied,
        );

        let old_token = secret_login(&app, &account.client_id, &created.client_secret)
            .await
            .unwrap();
        let old_client = app.client(Some(old_token));
        old_client
            .clone()
            .who_am_i(pb::WhoAmIRequest {})
            .await
            .unwrap();
        let reset = coordinator
            .clone()
            .reset_service_account_secret(pb::ResetServiceAccountSecretRequest {
                service_account_id: account.id.clone(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_ne!(reset.client_secret, created.client_secret);
        let refused = secret_login(&app, &account.client_id, &created.client_secret).await;
        assert_code(refused, Code::Unauthenticated);
        // A token asked for at once with the new secret is good at once.
        let new_token = secret_login(&app, &account.client_id, &reset.client_secret)
            .await
            .unwrap();
        let new_client = app.client(Some(new_token));
        refused_within_bound(who(&old_client), "TOKEN_REVOKED").await;
        new_client
            .clone()
            .who_am_i(pb::WhoAmIRequest {})
            .await
            .unwrap();

        let disabled = coordinator
            .clone()
            .disable_service_account(pb::DisableServiceAccountRequest {
                service_account_id: account.id.clone(),
                reason: "system replaced".into(),
            })
            .await
            .unwrap()
            .into_inner()
            .service_account
            .unwrap();
        assert!(disabled.disabled);
        refused_within_bound(who(&new_client), "TOKEN_REVOKED").await;
        let refused = secret_login(&app, &account.client_id, &reset.client_secret).await;
        assert_code(refused, Code::Unauthenticated);
        let status = coordinator
            .clone()
            .reset_service_account_secret(pb::ResetServiceAccountSecretRequest {
                service_account_id: account.id.clone(),
            })
            .await
            .unwrap_err();
        assert_eq!(error_reason(&status), "DISABLED");
        let missing = coordinator
            .clone()
            .disable_service_account(pb::DisableServiceAccountRequest {
                service_account_id: uuid::Uuid::new_v4().to_string(),
                reason: String::new(),
            })
            .await;
        assert_code(missing, Code::NotFound);

        // Every change is in the log.
        let actions: Vec<i32> = app.audit_entries().await.iter().map(|e| e.action).collect();
        for action in [
            pb::AuditAction::ServiceAccountCreate,
            pb::AuditAction::CredentialReset,
            pb::AuditAction::ServiceAccountDisable,
        ] {
            assert!(actions.contains(&(action as i32)), "{action:?}");
        }
    }
}

fn oversight_request(
    username: &str,
    organisation: &str,
    roles: &[pb::Role],
) -> pb::CreateUserRequest {
    pb::CreateUserRequest {
        username: username.into(),
        display_name: "Nieuwe gebruiker".into(),
        organisation_id: organisation.into(),
        roles: roles.iter().map(|r| *r as i32).collect(),
        password: "een lang wachtwoord".into(),
    }
}

#[tokio::test]
async fn oversight_accounts_need_a_second_coordinator() {
    for db in databases().await {
        let app = spawn_app(db.url()).await;
        let first = app.as_user("coordinator").await;
        let second = app.as_user("coordinator2").await;
        let vh = app.organisation_id("veilig_huis").await;

        // Never oversight and content roles in one account.
        for roles in [
            [pb::Role::PrivacyOfficer, pb::Role::TeamMember],
            [pb::Role::Coordinator, pb::Role::Aanmelder],
            [pb::Role::Coordinator, pb::Role::Casusregisseur],
        ] {
            let status = first
                .clone()
                .create_user(oversight_request("gemengd", &vh, &roles))
                .await
                .unwrap_err();
            assert_eq!(status.code(), Code::InvalidArgument);
            assert_eq!(bad_field(&status), "roles");
        }

        // A privacy officer and a coordinator created by the first coordinator
        // wait; they cannot log in yet.
        for (username, role) in [
            ("dpo.nieuw", pb::Role::PrivacyOfficer),
            ("coordinator.nieuw", pb::Role::Coordinator),
        ] {
            let user = first
                .clone()
                .create_user(oversight_request(username, &vh, &[role]))
                .await
                .unwrap()
                .into_inner()
                .user
                .unwrap();
            assert!(user.pending_approval, "{username}");
            assert_code(
                app.try_login(username, "een lang wachtwoord").await,
                Code::Unauthenticated,
            );
            // Not by the one who created them.
            let status = first
                .clone()
                .approve_user(pb::ApproveUserRequest {
                    user_id: user.id.clone(),
                })
                .await
                .unwrap_err();
            assert_eq!(status.code(), Code::PermissionDenied);
            assert_eq!(error_reason(&status), "FOUR_EYES");
            // Nor by anyone but a coordinator.
            assert_code(
                app.as_user("privacy.officer")
                    .await
                    .approve_user(pb::ApproveUserRequest {
                        user_id: user.id.clone(),
                    })
                    .await,
                Code::PermissionDenied,
            );
            let approved = second
                .clone()
                .approve_user(pb::ApproveUserRequest {
                    user_id: user.id.clone(),
                })
                .await
                .unwrap()
                .into_inner()
                .user
                .unwrap();
            assert!(!approved.pending_approval);
            assert!(!approved.approved_by.is_empty());
            app.try_login(username, "een lang wachtwoord")
                .await
                .unwrap();
            // Once is enough.
            let status = second
                .clone()
                .approve_user(pb::ApproveUserRequest { user_id: user.id })
                .await
                .unwrap_err();
            assert_eq!(error_reason(&status), "NOT_PENDING");
        }

        // The coordinator just approved cannot approve an account they
        // created themselves either: nobody approves their own creation.
        let third = app.client(Some(
            app.try_login("coordinator.nieuw", "een lang wachtwoord")
                .await
                .unwrap()
                .access_token,
        ));
        let own = third
            .clone()
            .create_user(oversight_request(
                "dpo.derde",
                &vh,
                &[pb::Role::PrivacyOfficer],
            ))
            .await
            .unwrap()
            .into_inner()
            .user
            .unwrap();
        let status = third
            .clone()
            .approve_user(pb::ApproveUserRequest { user_id: own.id })
            .await
            .unwrap_err();
        assert_eq!(error_reason(&status), "FOUR_EYES");

        // Content roles need no approval.
        let member = first
            .clone()
            .create_user(oversight_request("lid.nieuw", &vh, &[pb::Role::TeamMember]))
            .await
            .unwrap()
            .into_inner()
            .user
            .unwrap();
        assert!(!member.pending_approval);
        app.try_login("lid.nieuw", "een lang wachtwoord")
            .await
            .unwrap();
        let approvals = app
            .audit_entries()
            .await
            .iter()
            .filter(|e| e.action == pb::AuditAction::UserApprove as i32)
            .count();
        assert_eq!(approvals, 2, "{}", db.label());
    }
}
