//! Issuing tokens: grants, failures, rate limits, lifetimes, JWKS, rotation.

use crate::common::*;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use schakel_identity::IdentityConfig;
use schakel_kit::{auth::Claims, testing::databases, time::Clock};
use schakel_proto::v1::{self as pb, issue_token_request::Grant};
use tonic::Code;

/// Verifies a token with nothing but the published JWKS and a JOSE library,
/// as a partner system would.
fn verify_with_jwks(jwks_json: &str, token: &str) -> Claims {
    let set: jsonwebtoken::jwk::JwkSet = serde_json::from_str(jwks_json).unwrap();
    let header = jsonwebtoken::decode_header(token).unwrap();
    assert_eq!(header.alg, Algorithm::EdDSA);
    let jwk = set
        .find(header.kid.as_deref().unwrap())
        .expect("kid published");
    let mut validation = Validation::new(Algorithm::EdDSA);
    validation.set_audience(&["schakel"]);
    validation.set_issuer(&["https://schakel.local/identity"]);
    jsonwebtoken::decode::<Claims>(token, &DecodingKey::from_jwk(jwk).unwrap(), &validation)
        .unwrap()
        .claims
}

async fn jwks(app: &TestApp) -> String {
    app.client(None)
        .get_jwks(pb::GetJwksRequest {})
        .await
        .unwrap()
        .into_inner()
        .jwks_json
}

#[tokio::test]
async fn password_grant_issues_a_verifiable_token() {
    for db in databases().await {
        let app = spawn_app(db.url()).await;
        let issued = app
            .try_login("team.caw", &app.password("team.caw"))
            .await
            .unwrap();
        assert_eq!(issued.token_type, "Bearer");
        assert_eq!(issued.expires_in, 600);
        let claims = verify_with_jwks(&jwks(&app).await, &issued.access_token);
        assert_eq!(claims.aud, "schakel");
        assert_eq!(claims.ptype, "caw");
        assert_eq!(claims.region, "leuven");
        assert_eq!(claims.roles, vec!["aanmelder", "team_member"]);
        assert_eq!(claims.exp - claims.iat, 600);
        assert_eq!(claims.knd, "user");
        assert!(!claims.jti.is_empty());

        let me = app
            .client(Some(issued.access_token))
            .who_am_i(pb::WhoAmIRequest {})
            .await
            .unwrap()
            .into_inner();
        let actor = me.actor.unwrap();
        assert_eq!(actor.subject, claims.sub);
        assert_eq!(actor.partner_type, "caw");
        assert_eq!(actor.kind, pb::PrincipalKind::User as i32);
        assert_eq!(me.token_id, claims.jti);
        assert!(me.display_name.contains("CAW"), "{}", db.label());
    }
}

#[tokio::test]
async fn bad_credentials_all_look_the_same() {
    for db in databases().await {
        let app = spawn_app(db.url()).await;
        let wrong = assert_code(
            app.try_login("team.caw", "not the password").await,
            Code::Unauthenticated,
        );
        let unknown = assert_code(
            app.try_login("nobody.here", "whatever").await,
            Code::Unauthenticated,
        );
        assert_eq!(wrong.message(), unknown.message());

        // A disabled user cannot log in, even with the right password.
        let coordinator = app.as_user("coordinator").await;
        let users = coordinator
            .clone()
            .list_users(pb::ListUsersRequest::default())
            .await
            .unwrap()
            .into_inner()
            .users;
        let vk = users.iter().find(|u| u.username == "team.vk").unwrap();
        coordinator
            .clone()
            .disable_user(pb::DisableUserRequest {
                user_id: vk.id.clone(),
                reason: "left".into(),
            })
            .await
            .unwrap();
        let disabled = assert_code(
            app.try_login("team.vk", &app.password("team.vk")).await,
            Code::Unauthenticated,
        );
        assert_eq!(disabled.message(), wrong.message());
    }
}

#[tokio::test]
async fn failed_attempts_are_rate_limited_per_account_and_per_peer() {
    for db in databases().await {
        let config = IdentityConfig {
            max_failures_per_account: 3,
            max_failures_per_peer: 6,
            ..test_config()
        };
        let app = spawn_with(db.url(), config, Clock::System).await;
        for _ in 0..3 {
            assert_code(
                app.try_login("team.ggz", "guess").await,
                Code::Unauthenticated,
            );
        }
        // Locked: even the right password is not checked now.
        let status = assert_code(
            app.try_login("team.ggz", &app.password("team.ggz")).await,
            Code::ResourceExhausted,
        );
        assert!(status.message().contains("retry"), "{}", status.message());
        // Other accounts still work from this peer...
        app.try_login("team.ocj", &app.password("team.ocj"))
            .await
            .unwrap();
        // ...until the peer itself has failed too often.
        for name in ["a.b.c", "d.e.f", "g.h.i"] {
            assert_code(app.try_login(name, "guess").await, Code::Unauthenticated);
        }
        assert_code(
            app.try_login("team.ocj", &app.password("team.ocj")).await,
            Code::ResourceExhausted,
        );
    }
}

#[tokio::test]
async fn lifetimes_are_bounded_and_requests_validated() {
    for db in databases().await {
        let app = spawn_app(db.url()).await;
        let grant = |ttl| pb::IssueTokenRequest {
            grant: Some(Grant::Password(pb::PasswordGrant {
                username: "team.parket".into(),
                password: app.password("team.parket"),
            })),
            ttl_seconds: ttl,
        };
        let max = app
            .client(None)
            .issue_token(grant(900))
            .await
            .unwrap()
            .into_inner();
        assert_eq!(max.expires_in, 900);
        let status = assert_code(
            app.client(None).issue_token(grant(901)).await,
            Code::InvalidArgument,
        );
        assert_eq!(bad_field(&status), "ttl_seconds");
        let status = assert_code(
            app.client(None)
                .issue_token(pb::IssueTokenRequest {
                    grant: None,
                    ttl_seconds: 0,
                })
                .await,
            Code::InvalidArgument,
        );
        assert_eq!(bad_field(&status), "grant");
    }
}

#[tokio::test]
async fn rotation_withdraws_the_old_key_within_the_bound() {
    for db in databases().await {
        let app = spawn_app(db.url()).await;
        let old_token = app.token("team.politie").await;
        let old_kid = jsonwebtoken::decode_header(&old_token)
            .unwrap()
            .kid
            .unwrap();

        // Only coordinators rotate.
        assert_code(
            app.as_user("team.politie")
                .await
                .rotate_signing_key(pb::RotateSigningKeyRequest {})
                .await,
            Code::PermissionDenied,
        );
        let published_before = jwks(&app).await;
        let old_client = app.client(Some(old_token.clone()));
        old_client
            .clone()
            .who_am_i(pb::WhoAmIRequest {})
            .await
            .unwrap();
        let rotated = app
            .as_user("coordinator")
            .await
            .rotate_signing_key(pb::RotateSigningKeyRequest {})
            .await
            .unwrap()
            .into_inner();
        assert_ne!(rotated.kid, old_kid);
        assert!(
            published_before.contains(&rotated.kid),
            "the new signing key was published before it signed"
        );
        assert!(
            !rotated.published_kids.contains(&old_kid),
            "the retired key is withdrawn at once"
        );
        assert_eq!(
            rotated.published_kids.len(),
            2,
            "the active key and the next one"
        );

        let new_token = app.token("team.politie").await;
        assert_eq!(
            jsonwebtoken::decode_header(&new_token)
                .unwrap()
                .kid
                .unwrap(),
            rotated.kid
        );
        let set = jwks(&app).await;
        verify_with_jwks(&set, &new_token);
        // The server's verifier (which caches keys) stops accepting the old
        // key within auth.jwks_max_age, and accepts the new one.
        refused_within_bound(
            || {
                let mut c = old_client.clone();
                async move { c.who_am_i(pb::WhoAmIRequest {}).await }
            },
            "UNKNOWN_KEY",
        )
        .await;
        app.client(Some(new_token))
            .who_am_i(pb::WhoAmIRequest {})
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn jwks_is_an_rfc_7517_set_of_ed25519_keys() {
    for db in databases().await {
        let app = spawn_app(db.url()).await;
        let set: serde_json::Value = serde_json::from_str(&jwks(&app).await).unwrap();
        let keys = set["keys"].as_array().unwrap();
        assert_eq!(
            keys.len(),
            2,
            "the signing key and the next one, published ahead"
        );
        for key in keys {
            assert_eq!(key["kty"], "OKP");
            assert_eq!(key["crv"], "Ed25519");
            assert_eq!(key["alg"], "EdDSA");
            assert_eq!(key["use"], "sig");
            assert_eq!(
                URL_SAFE_NO_PAD
                    .decode(key["x"].as_str().unwrap())
                    .unwrap()
                    .len(),
                32
            );
            assert!(
                key.get("d").is_none(),
                "private part must never be published"
            );
        }
    }
}

#[tokio::test]
async fn service_accounts_authenticate_by_secret_or_certificate() {
    for db in databases().await {
        let app = spawn_app(db.url()).await;
        let politie = app.organisation_id("politie").await;
        let coordinator = app.as_user("coordinator").await;
        let created = coordinator
            .clone()
            .create_service_account(pb::CreateServiceAccountRequest {
                name: "PZ Leuven records system".into(),
                organisation_id: politie.clone(),
                roles: vec![pb::Role::Aanmelder as i32, pb::Role::TeamMember as i32],
                certificate_subject: "pz-leuven-rms".into(),
                generate_secret: true,
            })
            .await
            .unwrap()
            .into_inner();
        let account = created.service_account.unwrap();
        assert!(created.client_secret.len() >= 32);

        let secret_grant = |secret: &str| pb::IssueTokenRequest {
            grant: Some(Grant::ClientCredentials(pb::ClientCredentialsGrant {
                client_id: account.client_id.clone(),
                client_secret: secret.into(),
            })),
            ttl_seconds: 0,
        };
        let token = app
            .client(None)
            .issue_token(secret_grant(&created.client_secret))
            .await
            .unwrap()
            .into_inner();
        let claims = verify_with_jwks(&jwks(&app).await, &token.access_token);
        assert_eq!(claims.knd, "service_account");
        assert_eq!(claims.org, politie);
        assert_eq!(claims.ptype, "politie");
        assert_code(
            app.client(None).issue_token(secret_grant("wrong")).await,
            Code::Unauthenticated,
        );

        let cert_grant = pb::IssueTokenRequest {
            grant: Some(Grant::ClientCertificate(pb::ClientCertificateGrant {
                client_id: account.client_id.clone(),
            })),
            ttl_seconds: 0,
        };
        // The right certificate.
        let channel = app.server.channel(app.pki.client_tls_as("pz-leuven-rms"));
        let mut client = pb::identity_service_client::IdentityServiceClient::new(channel);
        let token = client
            .issue_token(cert_grant.clone())
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            verify_with_jwks(&jwks(&app).await, &token.access_token).sub,
            account.id
        );
        // A valid certificate of somebody else.
        let channel = app.server.channel(app.pki.client_tls_as("caw-client-file"));
        let mut other = pb::identity_service_client::IdentityServiceClient::new(channel);
        assert_code(
            other.issue_token(cert_grant.clone()).await,
            Code::Unauthenticated,
        );
        // No certificate at all.
        assert_code(
            app.client(None).issue_token(cert_grant).await,
            Code::Unauthenticated,
        );

        // A partner system cannot be a coordinator or privacy officer.
        let status = assert_code(
            coordinator
                .clone()
                .create_service_account(pb::CreateServiceAccountRequest {
                    name: "x".into(),
                    organisation_id: politie.clone(),
                    roles: vec![pb::Role::Coordinator as i32],
                    certificate_subject: String::new(),
                    generate_secret: true,
                })
                .await,
            Code::InvalidArgument,
        );
        assert_eq!(bad_field(&status), "roles");
        let status = assert_code(
            coordinator
                .clone()
                .create_service_account(pb::CreateServiceAccountRequest {
                    name: "no way to log in".into(),
                    organisation_id: politie,
                    roles: vec![pb::Role::Aanmelder as i32],
                    certificate_subject: String::new(),
                    generate_secret: false,
                })
                .await,
            Code::InvalidArgument,
        );
        assert_eq!(bad_field(&status), "certificate_subject");
        assert_code(
            app.as_user("team.caw")
                .await
                .create_service_account(pb::CreateServiceAccountRequest::default())
                .await,
            Code::PermissionDenied,
        );
    }
}

#[tokio::test]
async fn schakels_own_services_get_internal_tokens_for_their_certificates_only() {
    for db in databases().await {
        let app = spawn_app(db.url()).await;
        let grant = |client_id: &str| pb::IssueTokenRequest {
            grant: Some(Grant::ClientCertificate(pb::ClientCertificateGrant {
                client_id: client_id.into(),
            })),
            ttl_seconds: 0,
        };
        let as_cn = |cn: &str| {
            pb::identity_service_client::IdentityServiceClient::new(
                app.server.channel(app.pki.client_tls_as(cn)),
            )
        };
        let token = as_cn("legal-basis")
            .issue_token(grant("svc-legal-basis"))
            .await
            .unwrap()
            .into_inner();
        let claims = verify_with_jwks(&jwks(&app).await, &token.access_token);
        assert_eq!(claims.sub, "svc-legal-basis", "{}", db.label());
        assert_eq!(claims.knd, "internal_service");
        assert!(claims.org.is_empty() && claims.roles.is_empty());

        // Another service's name, a name that is not one of Schakel's
        // services, or no certificate: refused alike.
        for (cn, client_id) in [
            ("legal-basis", "svc-broker"),
            ("pz-leuven-rms", "svc-pz-leuven-rms"),
            ("broker", "svc-legal-basis"),
        ] {
            assert_code(
                as_cn(cn).issue_token(grant(client_id)).await,
                Code::Unauthenticated,
            );
        }
        assert_code(
            app.client(None).issue_token(grant("svc-broker")).await,
            Code::Unauthenticated,
        );
        // A partner system cannot take a service's certificate name.
        let status = assert_code(
            app.as_user("coordinator")
                .await
                .create_service_account(pb::CreateServiceAccountRequest {
                    name: "look-alike".into(),
                    organisation_id: app.organisation_id("caw").await,
                    roles: vec![pb::Role::TeamMember as i32],
                    certificate_subject: "broker".into(),
                    generate_secret: false,
                })
                .await,
            Code::InvalidArgument,
        );
        assert_eq!(bad_field(&status), "certificate_subject");
    }
}
