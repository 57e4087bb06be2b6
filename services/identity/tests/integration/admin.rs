//! Coordinator RPCs: organisations, partner types, users; their denials; and
//! that bad requests change nothing.

use crate::common::*;
use schakel_identity::kbo::KboNumber;
use schakel_kit::testing::databases;
use schakel_proto::v1 as pb;
use tonic::Code;

fn org_request(name: &str, partner_type: &str, kbo: &str) -> pb::CreateOrganisationRequest {
    pb::CreateOrganisationRequest {
        name: name.into(),
        partner_type: partner_type.into(),
        region: "leuven".into(),
        kbo_number: kbo.into(),
    }
}

async fn organisation_count(client: &Client) -> usize {
    let req = pb::ListOrganisationsRequest {
        page: Some(pb::PageRequest {
            page_size: 500,
            page_token: String::new(),
        }),
        ..Default::default()
    };
    client
        .clone()
        .list_organisations(req)
        .await
        .unwrap()
        .into_inner()
        .organisations
        .len()
}

#[tokio::test]
async fn organisations_are_validated_and_coordinator_only() {
    for db in databases().await {
        let app = spawn_app(db.url()).await;
        let coordinator = app.as_user("coordinator").await;
        let before = organisation_count(&coordinator).await;
        assert_eq!(before, 8, "one per kernpartner");

        let kbo = KboNumber::from_base(4_567_890).to_string();
        let org = coordinator
            .clone()
            .create_organisation(org_request(
                "PZ Aarschot",
                "politie",
                &format!("{}.{}.{}", &kbo[..4], &kbo[4..7], &kbo[7..]),
            ))
            .await
            .unwrap()
            .into_inner()
            .organisation
            .unwrap();
        assert_eq!(org.kbo_number, kbo, "normalised to ten digits");
        assert_eq!(org.partner_type, "politie");

        for (request, field) in [
            (org_request("X", "politie", "0123456789"), "kbo_number"),
            (org_request("X", "politie", "12345"), "kbo_number"),
            (
                org_request("X", "brandweer", &KboNumber::from_base(1).to_string()),
                "partner_type",
            ),
            (
                org_request("", "politie", &KboNumber::from_base(2).to_string()),
                "name",
            ),
            (
                pb::CreateOrganisationRequest {
                    region: "Leuven!".into(),
                    ..org_request("X", "caw", &KboNumber::from_base(3).to_string())
                },
                "region",
            ),
        ] {
            let status = assert_code(
                coordinator.clone().create_organisation(request).await,
                Code::InvalidArgument,
            );
            assert_eq!(bad_field(&status), field);
        }
        assert_code(
            coordinator
                .clone()
                .create_organisation(org_request("Dubbel", "caw", &kbo))
                .await,
            Code::AlreadyExists,
        );
        // Not a coordinator: denied, and nothing is created.
        for user in ["team.caw", "privacy.officer", "casusregisseur"] {
            let status = assert_code(
                app.as_user(user)
                    .await
                    .create_organisation(org_request(
                        "Y",
                        "caw",
                        &KboNumber::from_base(5).to_string(),
                    ))
                    .await,
                Code::PermissionDenied,
            );
            assert!(status.message().contains("coordinator"));
        }
        // No token at all.
        assert_code(
            app.client(None)
                .create_organisation(org_request(
                    "Z",
                    "caw",
                    &KboNumber::from_base(6).to_string(),
                ))
                .await,
            Code::Unauthenticated,
        );
        assert_eq!(
            organisation_count(&coordinator).await,
            before + 1,
            "{}",
            db.label()
        );
    }
}

#[tokio::test]
async fn organisations_list_with_filters_and_pages() {
    for db in databases().await {
        let app = spawn_app(db.url()).await;
        let anyone = app.as_user("team.ocj").await;
        let politie = anyone
            .clone()
            .list_organisations(pb::ListOrganisationsRequest {
                partner_type: "politie".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(politie.organisations.len(), 1);
        assert_eq!(politie.organisations[0].name, "PZ Leuven");

        let mut seen = Vec::new();
        let mut token = String::new();
        loop {
            let req = pb::ListOrganisationsRequest {
                page: Some(pb::PageRequest {
                    page_size: 3,
                    page_token: token,
                }),
                ..Default::default()
            };
            let page = anyone
                .clone()
                .list_organisations(req)
                .await
                .unwrap()
                .into_inner();
            assert!(page.organisations.len() <= 3);
            seen.extend(page.organisations.into_iter().map(|o| o.id));
            if page.next_page_token.is_empty() {
                break;
            }
            token = page.next_page_token;
        }
        let mut unique = seen.clone();
        unique.sort();
        unique.dedup();
        assert_eq!((seen.len(), unique.len()), (8, 8), "{}", db.label());

        let status = assert_code(
            anyone
                .clone()
                .list_organisations(pb::ListOrganisationsRequest {
                    page: Some(pb::PageRequest {
                        page_size: 10_000,
                        page_token: String::new(),
                    }),
                    ..Default::default()
                })
                .await,
            Code::InvalidArgument,
        );
        assert_eq!(bad_field(&status), "page.page_size");
    }
}

#[tokio::test]
async fn coordinators_register_network_partner_types() {
    for db in databases().await {
        let app = spawn_app(db.url()).await;
        let coordinator = app.as_user("coordinator").await;
        let created = coordinator
            .clone()
            .create_partner_type(pb::CreatePartnerTypeRequest {
                code: "kind_en_gezin".into(),
                description: "Kind & Gezin".into(),
            })
            .await
            .unwrap()
            .into_inner()
            .partner_type
            .unwrap();
        assert!(!created.builtin);
        assert_code(
            coordinator
                .clone()
                .create_partner_type(pb::CreatePartnerTypeRequest {
                    code: "kind_en_gezin".into(),
                    description: "again".into(),
                })
                .await,
            Code::AlreadyExists,
        );
        let status = assert_code(
            coordinator
                .clone()
                .create_partner_type(pb::CreatePartnerTypeRequest {
                    code: "Kind & Gezin".into(),
                    description: "x".into(),
                })
                .await,
            Code::InvalidArgument,
        );
        assert_eq!(bad_field(&status), "code");
        assert_code(
            app.as_user("team.politie")
                .await
                .create_partner_type(pb::CreatePartnerTypeRequest {
                    code: "clb".into(),
                    description: "CLB".into(),
                })
                .await,
            Code::PermissionDenied,
        );
        // Now usable for organisations.
        coordinator
            .clone()
            .create_organisation(org_request(
                "Kind & Gezin Leuven",
                "kind_en_gezin",
                &KboNumber::from_base(777).to_string(),
            ))
            .await
            .unwrap();
        let types = app
            .as_user("team.caw")
            .await
            .list_partner_types(pb::ListPartnerTypesRequest {})
            .await
            .unwrap()
            .into_inner()
            .partner_types;
        assert_eq!(types.iter().filter(|t| t.builtin).count(), 8);
        assert!(
            types
                .iter()
                .any(|t| t.code == "kind_en_gezin" && !t.builtin),
            "{}",
            db.label()
        );
    }
}

#[tokio::test]
async fn users_are_created_listed_and_disabled_by_coordinators() {
    for db in databases().await {
        let app = spawn_app(db.url()).await;
        let coordinator = app.as_user("coordinator").await;
        let caw = app.organisation_id("caw").await;
        let user_request = |username: &str, password: &str| pb::CreateUserRequest {
            username: username.into(),
            display_name: "Nieuwe medewerker".into(),
            organisation_id: caw.clone(),
            roles: vec![pb::Role::TeamMember as i32],
            password: password.into(),
        };

        let chosen = coordinator
            .clone()
            .create_user(user_request("nieuw.caw", "een lang wachtwoord"))
            .await
            .unwrap()
            .into_inner();
        assert!(chosen.generated_password.is_empty());
        app.try_login("nieuw.caw", "een lang wachtwoord")
            .await
            .unwrap();

        let generated = coordinator
            .clone()
            .create_user(user_request("tweede.caw", ""))
            .await
            .unwrap()
            .into_inner();
        assert!(generated.generated_password.len() >= 20);
        app.try_login("tweede.caw", &generated.generated_password)
            .await
            .unwrap();

        assert_code(
            coordinator
                .clone()
                .create_user(user_request("nieuw.caw", "een lang wachtwoord"))
                .await,
            Code::AlreadyExists,
        );
        for (request, field) in [
            (user_request("X", "een lang wachtwoord"), "username"),
            (user_request("derde.caw", "kort"), "password"),
            (
                pb::CreateUserRequest {
                    roles: vec![],
                    ..user_request("derde.caw", "")
                },
                "roles",
            ),
            (
                pb::CreateUserRequest {
                    roles: vec![42],
                    ..user_request("derde.caw", "")
                },
                "roles",
            ),
            (
                pb::CreateUserRequest {
                    organisation_id: "not-an-id".into(),
                    ..user_request("derde.caw", "")
                },
                "organisation_id",
            ),
        ] {
            let status = assert_code(
                coordinator.clone().create_user(request).await,
                Code::InvalidArgument,
            );
            assert_eq!(bad_field(&status), field);
        }
        assert_code(
            coordinator
                .clone()
                .create_user(pb::CreateUserRequest {
                    organisation_id: uuid::Uuid::new_v4().to_string(),
                    ..user_request("derde.caw", "")
                })
                .await,
            Code::NotFound,
        );
        assert_code(
            app.as_user("team.caw")
                .await
                .create_user(user_request("vierde.caw", ""))
                .await,
            Code::PermissionDenied,
        );
        assert_code(
            app.as_user("team.caw")
                .await
                .list_users(pb::ListUsersRequest::default())
                .await,
            Code::PermissionDenied,
        );

        let listed = coordinator
            .clone()
            .list_users(pb::ListUsersRequest {
                organisation_id: caw.clone(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner()
            .users;
        let names: Vec<&str> = listed.iter().map(|u| u.username.as_str()).collect();
        assert_eq!(listed.len(), 3, "team.caw plus the two new ones: {names:?}");

        let user_id = chosen.user.unwrap().id;
        let disabled = coordinator
            .clone()
            .disable_user(pb::DisableUserRequest {
                user_id: user_id.clone(),
                reason: "uit dienst".into(),
            })
            .await
            .unwrap()
            .into_inner()
            .user
            .unwrap();
        assert!(disabled.disabled);
        assert_code(
            app.try_login("nieuw.caw", "een lang wachtwoord").await,
            Code::Unauthenticated,
        );
        assert_code(
            coordinator
                .clone()
                .disable_user(pb::DisableUserRequest {
                    user_id: uuid::Uuid::new_v4().to_string(),
                    reason: String::new(),
                })
                .await,
            Code::NotFound,
        );
        let me = coordinator
            .clone()
            .who_am_i(pb::WhoAmIRequest {})
            .await
            .unwrap()
            .into_inner()
            .actor
            .unwrap();
        assert_code(
            coordinator
                .clone()
                .disable_user(pb::DisableUserRequest {
                    user_id: me.subject,
                    reason: String::new(),
                })
                .await,
            Code::FailedPrecondition,
        );
        assert_code(
            app.as_user("privacy.officer")
                .await
                .disable_user(pb::DisableUserRequest {
                    user_id,
                    reason: String::new(),
                })
                .await,
            Code::PermissionDenied,
        );
    }
}

#[tokio::test]
async fn oversized_and_malformed_requests_change_nothing() {
    for db in databases().await {
        let app = spawn_app(db.url()).await;
        let coordinator = app.as_user("coordinator").await;
        let before = organisation_count(&coordinator).await;

        let huge = org_request(
            &"x".repeat(2 * 1024 * 1024),
            "caw",
            &KboNumber::from_base(99).to_string(),
        );
        let status = assert_code(
            coordinator.clone().create_organisation(huge).await,
            Code::ResourceExhausted,
        );
        assert!(
            status.message().contains("too large"),
            "{}",
            status.message()
        );

        // Bytes that are not a protobuf message.
        let token = app.token("coordinator").await;
        let status = raw_call(
            &app,
            &token,
            "/schakel.v1.IdentityService/CreateOrganisation",
            vec![0xff, 0xff, 0xff, 0x0f, 0x0a],
        )
        .await;
        assert_eq!(status.code(), Code::InvalidArgument, "{status:?}");
        assert_eq!(
            organisation_count(&coordinator).await,
            before,
            "{}",
            db.label()
        );
    }
}

/// Sends `body` as the (not necessarily valid) request message of `path`.
async fn raw_call(app: &TestApp, token: &str, path: &'static str, body: Vec<u8>) -> tonic::Status {
    let mut grpc = tonic::client::Grpc::new(app.channel());
    grpc.ready().await.unwrap();
    let mut request = tonic::Request::new(body);
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {token}").parse().unwrap());
    let result: Result<tonic::Response<Vec<u8>>, _> = grpc
        .unary(
            request,
            http::uri::PathAndQuery::from_static(path),
            RawCodec,
        )
        .await;
    result.expect_err("the server must refuse these bytes")
}

/// A codec that sends and receives raw bytes.
#[derive(Default)]
struct RawCodec;

impl tonic::codec::Codec for RawCodec {
    type Encode = Vec<u8>;
    type Decode = Vec<u8>;
    type Encoder = RawCodec;
    type Decoder = RawCodec;
    fn encoder(&mut self) -> Self::Encoder {
        RawCodec
    }
    fn decoder(&mut self) -> Self::Decoder {
        RawCodec
    }
}

impl tonic::codec::Encoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn encode(
        &mut self,
        item: Vec<u8>,
        dst: &mut tonic::codec::EncodeBuf<'_>,
    ) -> Result<(), Self::Error> {
        use bytes::BufMut;
        dst.put_slice(&item);
        Ok(())
    }
}

impl tonic::codec::Decoder for RawCodec {
    type Item = Vec<u8>;
    type Error = tonic::Status;
    fn decode(
        &mut self,
        src: &mut tonic::codec::DecodeBuf<'_>,
    ) -> Result<Option<Vec<u8>>, Self::Error> {
        use bytes::Buf;
        Ok(Some(src.copy_to_bytes(src.remaining()).to_vec()))
    }
}

#[tokio::test]
async fn health_and_reflection_are_served() {
    let db = schakel_kit::testing::TestDatabase::sqlite().unwrap();
    let app = spawn_app(db.url()).await;
    let mut health = tonic_health::pb::health_client::HealthClient::new(app.channel());
    for service in ["", "schakel.v1.IdentityService"] {
        let response = health
            .check(tonic_health::pb::HealthCheckRequest {
                service: service.into(),
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            response.status,
            tonic_health::pb::health_check_response::ServingStatus::Serving as i32
        );
    }

    // Both reflection versions list the services (Python's grpcio-reflection
    // speaks only v1alpha).
    macro_rules! listed {
        ($version:ident) => {{
            use tonic_reflection::pb::$version::{
                ServerReflectionRequest, server_reflection_client::ServerReflectionClient,
                server_reflection_request::MessageRequest,
                server_reflection_response::MessageResponse,
            };
            let mut reflection = ServerReflectionClient::new(app.channel());
            let request = ServerReflectionRequest {
                host: String::new(),
                message_request: Some(MessageRequest::ListServices(String::new())),
            };
            let mut stream = reflection
                .server_reflection_info(tokio_stream::iter(vec![request]))
                .await
                .unwrap()
                .into_inner();
            let response = stream.message().await.unwrap().unwrap();
            let Some(MessageResponse::ListServicesResponse(list)) = response.message_response
            else {
                panic!("no list")
            };
            list.service
                .into_iter()
                .map(|s| s.name)
                .collect::<Vec<String>>()
        }};
    }
    for names in [listed!(v1), listed!(v1alpha)] {
        for expected in [
            "schakel.v1.IdentityService",
            "schakel.v1.BrokerService",
            "grpc.health.v1.Health",
        ] {
            assert!(
                names.iter().any(|n| n == expected),
                "{expected} missing from {names:?}"
            );
        }
    }
}

#[tokio::test]
async fn shutdown_drains_and_stops() {
    let db = schakel_kit::testing::TestDatabase::sqlite().unwrap();
    let app = spawn_app(db.url()).await;
    app.try_login("team.caw", &app.password("team.caw"))
        .await
        .unwrap();
    let url = app.server.url();
    let TestApp { server, pki, .. } = app;
    server.stop().await.unwrap();
    let channel = schakel_kit::client::channel(&url, pki.client_tls()).unwrap();
    let mut client = pb::identity_service_client::IdentityServiceClient::new(channel);
    assert_code(
        client.get_jwks(pb::GetJwksRequest {}).await,
        Code::Unavailable,
    );
}

/// GetUser: for coordinators and the broker (checking a casusregisseur's
/// appointment); other services and users are refused, unknown ids not found.
#[tokio::test]
async fn get_user_answers_coordinators_and_the_broker_only() {
    for db in databases().await {
        let app = spawn_app(db.url()).await;
        let coordinator = app.as_user("coordinator").await;
        let created = coordinator
            .clone()
            .create_user(pb::CreateUserRequest {
                username: "regisseur.vh".into(),
                display_name: "Casusregisseur".into(),
                organisation_id: app.organisation_id("veilig_huis").await,
                roles: vec![pb::Role::Casusregisseur as i32],
                password: "een lang wachtwoord".into(),
            })
            .await
            .unwrap()
            .into_inner()
            .user
            .unwrap();
        let ask = |id: &str| pb::GetUserRequest { user_id: id.into() };
        let got = coordinator
            .clone()
            .get_user(ask(&created.id))
            .await
            .unwrap();
        assert_eq!(got.into_inner().user.unwrap(), created, "{}", db.label());
        let service = |cn: &'static str| {
            let app = &app;
            async move {
                let grant = pb::IssueTokenRequest {
                    grant: Some(pb::issue_token_request::Grant::ClientCertificate(
                        pb::ClientCertificateGrant {
                            client_id: format!("svc-{cn}"),
                        },
                    )),
                    ttl_seconds: 0,
                };
                let channel = app.server.channel(app.pki.client_tls_as(cn));
                let token =
                    pb::identity_service_client::IdentityServiceClient::new(channel.clone())
                        .issue_token(grant)
                        .await
                        .unwrap()
                        .into_inner()
                        .access_token;
                // The token is bound to this connection's certificate.
                pb::identity_service_client::IdentityServiceClient::with_interceptor(
                    channel,
                    schakel_kit::client::CallContext::with_token(Some(token)),
                )
            }
        };
        let broker = service("broker").await;
        let seen = broker.clone().get_user(ask(&created.id)).await.unwrap();
        assert_eq!(seen.into_inner().user.unwrap().roles, created.roles);
        assert_code(
            broker
                .clone()
                .get_user(ask(&uuid::Uuid::new_v4().to_string()))
                .await,
            Code::NotFound,
        );
        let other = service("legal-basis").await;
        assert_code(
            other.clone().get_user(ask(&created.id)).await,
            Code::PermissionDenied,
        );
        let login = app
            .try_login("regisseur.vh", "een lang wachtwoord")
            .await
            .unwrap();
        let user = app.client(Some(login.access_token));
        assert_code(
            user.clone().get_user(ask(&created.id)).await,
            Code::PermissionDenied,
        );
    }
}
