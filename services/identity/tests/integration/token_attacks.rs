//! Forged and stale tokens: every one is refused with UNAUTHENTICATED.

use crate::common::*;
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use ed25519_dalek::{SigningKey, pkcs8::EncodePrivateKey};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use schakel_identity::Identity;
use schakel_kit::{auth::Claims, config::AuthConfig, testing::databases, time::Clock};
use schakel_proto::v1 as pb;
use tonic::Code;

async fn who(app: &TestApp, token: String) -> Result<pb::WhoAmIResponse, tonic::Status> {
    app.client(Some(token))
        .who_am_i(pb::WhoAmIRequest {})
        .await
        .map(tonic::Response::into_inner)
}

fn claims_of(token: &str) -> Claims {
    let payload = token.split('.').nth(1).unwrap();
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

fn b64(value: &serde_json::Value) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap())
}

/// A token issued by a second identity instance on the same database (so
/// signed by the real key) whose settings or clock differ.
async fn issued_by(app: &TestApp, auth: AuthConfig, clock: Clock) -> String {
    let other = Identity::new(
        app.identity.database().clone(),
        app.config.clone(),
        auth,
        app.master.clone(),
        clock,
        std::sync::Arc::new(app.audit.log().clone()),
    )
    .await
    .unwrap();
    let pki_server = {
        let config = app.pki.server_config();
        let verifier = std::sync::Arc::new(schakel_kit::auth::TokenVerifier::new(
            app.auth.clone(),
            other.jwks_fetcher(),
        ));
        let routes = tonic::service::Routes::new(other.into_server(&config.limits));
        let built = schakel_kit::server::App::build(config, routes, vec![], verifier)
            .await
            .unwrap();
        schakel_kit::testing::RunningServer::start(built)
    };
    let mut client = pb::identity_service_client::IdentityServiceClient::new(
        pki_server.channel(app.pki.client_tls()),
    );
    let grant = pb::issue_token_request::Grant::Password(pb::PasswordGrant {
        username: "team.caw".into(),
        password: app.password("team.caw"),
    });
    client
        .issue_token(pb::IssueTokenRequest {
            grant: Some(grant),
            ttl_seconds: 0,
        })
        .await
        .unwrap()
        .into_inner()
        .access_token
}

fn sign_ed25519(kid: &str, claims: &Claims, key: &SigningKey) -> String {
    let mut header = Header::new(Algorithm::EdDSA);
    header.kid = Some(kid.into());
    let der = key.to_pkcs8_der().unwrap();
    jsonwebtoken::encode(&header, claims, &EncodingKey::from_ed_der(der.as_bytes())).unwrap()
}

#[tokio::test]
async fn forged_and_stale_tokens_are_unauthenticated() {
    for db in databases().await {
        let app = spawn_app(db.url()).await;
        let good = app.token("team.caw").await;
        who(&app, good.clone())
            .await
            .expect("the genuine token works");
        let header: serde_json::Value = serde_json::from_slice(
            &URL_SAFE_NO_PAD
                .decode(good.split('.').next().unwrap())
                .unwrap(),
        )
        .unwrap();
        let kid = header["kid"].as_str().unwrap().to_owned();
        let claims = claims_of(&good);
        let now = Clock::System.now();

        let mut attacks: Vec<(&str, String)> = Vec::new();

        // Validly signed, but expired / not yet valid / for another audience / issuer.
        attacks.push((
            "expired",
            issued_by(&app, app.auth.clone(), Clock::manual(now - 3600)).await,
        ));
        attacks.push((
            "not yet valid",
            issued_by(&app, app.auth.clone(), Clock::manual(now + 3600)).await,
        ));
        let other_aud = AuthConfig {
            audience: "another-system".into(),
            ..app.auth.clone()
        };
        attacks.push(("wrong aud", issued_by(&app, other_aud, Clock::System).await));
        let other_iss = AuthConfig {
            issuer: "https://evil.example/identity".into(),
            ..app.auth.clone()
        };
        attacks.push(("wrong iss", issued_by(&app, other_iss, Clock::System).await));

        // alg none.
        let payload = good.split('.').nth(1).unwrap();
        let none_header = b64(&serde_json::json!({"alg": "none", "typ": "JWT", "kid": kid}));
        attacks.push(("alg none", format!("{none_header}.{payload}.")));

        // HS256 with the public key as the HMAC secret (algorithm confusion).
        let jwks = app
            .client(None)
            .get_jwks(pb::GetJwksRequest {})
            .await
            .unwrap()
            .into_inner()
            .jwks_json;
        let jwks: serde_json::Value = serde_json::from_str(&jwks).unwrap();
        let x = jwks["keys"][0]["x"].as_str().unwrap().to_owned();
        let mut hs = Header::new(Algorithm::HS256);
        hs.kid = Some(kid.clone());
        for secret in [
            URL_SAFE_NO_PAD.decode(&x).unwrap(),
            x.clone().into_bytes(),
            jwks.to_string().into_bytes(),
        ] {
            attacks.push((
                "HS256 with public key",
                jsonwebtoken::encode(&hs, &claims, &EncodingKey::from_secret(&secret)).unwrap(),
            ));
        }

        // Signed by a key that is not published: under an unknown kid, and
        // under the genuine kid.
        let rogue = SigningKey::from_bytes(&[7u8; 32]);
        attacks.push(("unknown kid", sign_ed25519("rogue-key", &claims, &rogue)));
        attacks.push(("key not in JWKS", sign_ed25519(&kid, &claims, &rogue)));
        let mut elevated = claims.clone();
        elevated.roles = vec!["coordinator".into()];
        attacks.push(("rogue coordinator", sign_ed25519(&kid, &elevated, &rogue)));

        // Tampered payload with the genuine signature.
        let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
        let mut tampered: serde_json::Value =
            serde_json::from_slice(&URL_SAFE_NO_PAD.decode(&parts[1]).unwrap()).unwrap();
        tampered["roles"] = serde_json::json!(["coordinator"]);
        parts[1] = b64(&tampered);
        attacks.push(("tampered payload", parts.join(".")));

        // Garbage.
        attacks.push(("garbage", "not.a.token".into()));
        attacks.push(("empty", String::new()));

        for (name, token) in attacks {
            let status = who(&app, token).await.expect_err(name);
            assert_eq!(
                status.code(),
                Code::Unauthenticated,
                "{name} on {}: {status:?}",
                db.label()
            );
        }
        // And the admin surface stays closed to a forged coordinator.
        let forged = sign_ed25519(&kid, &elevated, &rogue);
        assert_code(
            app.client(Some(forged))
                .rotate_signing_key(pb::RotateSigningKeyRequest {})
                .await,
            Code::Unauthenticated,
        );
    }
}

#[tokio::test]
async fn a_missing_or_non_bearer_authorization_is_unauthenticated() {
    let db = schakel_kit::testing::TestDatabase::sqlite().unwrap();
    let app = spawn_app(db.url()).await;
    assert_code(
        app.client(None).who_am_i(pb::WhoAmIRequest {}).await,
        Code::Unauthenticated,
    );
    let good = app.token("team.caw").await;
    let mut request = tonic::Request::new(pb::WhoAmIRequest {});
    request
        .metadata_mut()
        .insert("authorization", format!("Basic {good}").parse().unwrap());
    let mut client = pb::identity_service_client::IdentityServiceClient::new(app.channel());
    assert_code(client.who_am_i(request).await, Code::Unauthenticated);
}

#[tokio::test]
async fn every_rpc_but_the_public_ones_needs_a_token() {
    let db = schakel_kit::testing::TestDatabase::sqlite().unwrap();
    let app = spawn_app(db.url()).await;
    let mut c = app.client(None);
    let results: Vec<(&str, Result<(), tonic::Status>)> = vec![
        ("WhoAmI", c.who_am_i(pb::WhoAmIRequest {}).await.map(drop)),
        (
            "CreateOrganisation",
            c.create_organisation(pb::CreateOrganisationRequest::default())
                .await
                .map(drop),
        ),
        (
            "ListOrganisations",
            c.list_organisations(pb::ListOrganisationsRequest::default())
                .await
                .map(drop),
        ),
        (
            "CreatePartnerType",
            c.create_partner_type(pb::CreatePartnerTypeRequest::default())
                .await
                .map(drop),
        ),
        (
            "ListPartnerTypes",
            c.list_partner_types(pb::ListPartnerTypesRequest {})
                .await
                .map(drop),
        ),
        (
            "CreateUser",
            c.create_user(pb::CreateUserRequest::default())
                .await
                .map(drop),
        ),
        (
            "DisableUser",
            c.disable_user(pb::DisableUserRequest::default())
                .await
                .map(drop),
        ),
        (
            "ListUsers",
            c.list_users(pb::ListUsersRequest::default())
                .await
                .map(drop),
        ),
        (
            "CreateServiceAccount",
            c.create_service_account(pb::CreateServiceAccountRequest::default())
                .await
                .map(drop),
        ),
        (
            "RotateSigningKey",
            c.rotate_signing_key(pb::RotateSigningKeyRequest {})
                .await
                .map(drop),
        ),
    ];
    for (rpc, result) in results {
        let status = result.expect_err(rpc);
        assert_eq!(status.code(), Code::Unauthenticated, "{rpc}: {status:?}");
    }
    // The public ones: obtaining a token (which then fails on its own terms) and the keys.
    c.get_jwks(pb::GetJwksRequest {}).await.unwrap();
    assert_code(
        c.issue_token(pb::IssueTokenRequest::default()).await,
        Code::InvalidArgument,
    );
}

#[tokio::test]
async fn oversized_credentials_name_the_field_that_is_too_long() {
    let db = schakel_kit::testing::TestDatabase::sqlite().unwrap();
    let app = spawn_app(db.url()).await;
    let huge = "a".repeat(500 * 1024);
    let status = assert_code(app.try_login(&huge, "x").await, Code::InvalidArgument);
    assert_eq!(
        schakel_kit::testing::bad_field(&status),
        "password.username",
        "{status:?}"
    );
    let status = assert_code(
        app.try_login("team.caw", &huge).await,
        Code::InvalidArgument,
    );
    assert_eq!(
        schakel_kit::testing::bad_field(&status),
        "password.password"
    );
}

#[tokio::test]
async fn concurrent_guesses_are_counted_before_they_are_hashed() {
    for db in databases().await {
        let app = spawn_app(db.url()).await;
        // 64 wrong guesses at once: at most the account's limit (5) get to
        // the hash; the rest are refused unhashed.
        let guesses = (0..64).map(|i| {
            let app = &app;
            async move { app.try_login("team.caw", &format!("guess-{i}")).await }
        });
        let results = futures::future::join_all(guesses).await;
        let hashed = results
            .iter()
            .filter(|r| r.as_ref().is_err_and(|s| s.code() == Code::Unauthenticated))
            .count();
        let limited = results
            .iter()
            .filter(|r| {
                r.as_ref()
                    .is_err_and(|s| s.code() == Code::ResourceExhausted)
            })
            .count();
        assert_eq!((hashed, limited), (5, 59), "{}", db.label());
        // Then the right password: refused too, the account is locked.
        let right = app.try_login("team.caw", &app.password("team.caw")).await;
        assert_code(right, Code::ResourceExhausted);
    }
}

#[tokio::test]
async fn a_flood_of_refused_logins_adds_a_bounded_number_of_audit_entries() {
    let db = schakel_kit::testing::TestDatabase::sqlite().unwrap();
    let app = spawn_app(db.url()).await;
    let token = app.token("coordinator").await;
    let failed = |entries: &[pb::AuditEntry]| {
        entries
            .iter()
            .filter(|e| e.action == pb::AuditAction::AuthenticationFail as i32)
            .count()
    };
    let before = failed(&app.audit_entries().await);
    // The account locks after 5; then 5,000 more attempts, 100 at a time.
    for _ in 0..50 {
        let guesses = (0..100).map(|_| app.try_login("team.caw", "wrong"));
        futures::future::join_all(guesses).await;
    }
    // And a burst on the certificate grant (no client certificate).
    let cert = pb::IssueTokenRequest {
        grant: Some(pb::issue_token_request::Grant::ClientCertificate(
            pb::ClientCertificateGrant {
                client_id: "svc-anything".into(),
            },
        )),
        ttl_seconds: 0,
    };
    let burst = (0..500).map(|_| {
        let mut client = app.client(None);
        let cert = cert.clone();
        async move { client.issue_token(cert).await }
    });
    let refused = futures::future::join_all(burst).await;
    assert!(refused.iter().all(Result::is_err));
    // The certificate grant is limited per peer too.
    assert!(refused.iter().any(|r| {
        r.as_ref()
            .is_err_and(|s| s.code() == Code::ResourceExhausted)
    }));
    let entries = app.audit_entries().await;
    let added = failed(&entries) - before;
    // One per grant, reason and peer in the window: password INVALID and
    // TOO_MANY, certificate INVALID and TOO_MANY.
    assert!(
        (1..=4).contains(&added),
        "{added} entries for 5,500 refusals"
    );
    let counted: u64 = entries
        .iter()
        .filter(|e| e.action == pb::AuditAction::AuthenticationFail as i32)
        .flat_map(|e| e.attributes.iter().filter(|a| a.key == "count"))
        .map(|a| a.value.parse::<u64>().unwrap())
        .sum();
    assert!(counted >= 1, "entries carry their count");
    // A token obtained before still reads.
    app.client(Some(token))
        .who_am_i(pb::WhoAmIRequest {})
        .await
        .unwrap();
}
