//! The team around a dossier over gRPC on SQLite and PostgreSQL: the
//! casusregisseur role counts only for the appointed one, organisations
//! leave the circle, and informing goes through the broker (a victim is
//! never deferred).

use crate::common::*;
use schakel_kit::{auth::Role, testing::databases, time::to_timestamp};
use schakel_proto::v1 as pb;
use tonic::Code;

async fn advance(client: &Client, id: &str, from: pb::Phase, to: pb::Phase, track: pb::Track) {
    client
        .clone()
        .advance_phase(pb::AdvancePhaseRequest {
            dossier_id: id.into(),
            expected_phase: from as i32,
            target_phase: to as i32,
            track: track as i32,
            reason: "teamoverleg".into(),
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn the_casusregisseur_role_counts_only_for_the_appointed_one() {
    for db in databases().await {
        let app = spawn(db.url()).await;
        let registered = app.register_family("k1").await;
        let id = registered.dossier.unwrap().dossier_id;
        let politie = app.team("politie");
        politie
            .clone()
            .add_participant(pb::AddParticipantRequest {
                dossier_id: id.clone(),
                organisation_id: app.orgs["caw"].clone(),
            })
            .await
            .unwrap();
        advance(
            &politie,
            &id,
            pb::Phase::Registration,
            pb::Phase::CaseBuilding,
            pb::Track::Unspecified,
        )
        .await;
        // The police record an intervention (police details: GDPR art. 10).
        let intervention = pb::FieldValue {
            kind: Some(pb::field_value::Kind::List(pb::FieldValueList {
                items: vec![pb::FieldValue {
                    kind: Some(pb::field_value::Kind::Record(pb::FieldRecord {
                        fields: [(
                            "kind".to_owned(),
                            pb::FieldValue {
                                kind: Some(pb::field_value::Kind::Text(
                                    "tijdelijk huisverbod".into(),
                                )),
                            },
                        )]
                        .into(),
                    })),
                }],
            })),
        };
        politie
            .clone()
            .contribute(pb::ContributeRequest {
                dossier_id: id.clone(),
                purpose: "case_building".into(),
                contributions: vec![pb::ContributionInput {
                    path: "police.interventions".into(),
                    value: Some(intervention),
                    ..Default::default()
                }],
                idempotency_key: String::new(),
            })
            .await
            .unwrap();
        // Appointed only at assessment.
        let appoint = pb::AssignCaseDirectorRequest {
            dossier_id: id.clone(),
            user_id: uuid::Uuid::new_v4().to_string(),
            organisation_id: app.orgs["caw"].clone(),
        };
        let status = assert_code(
            politie.clone().assign_case_director(appoint.clone()).await,
            Code::FailedPrecondition,
        );
        assert_eq!(error_reason(&status), "WRONG_PHASE");
        advance(
            &politie,
            &id,
            pb::Phase::CaseBuilding,
            pb::Phase::Assessment,
            pb::Track::Unspecified,
        )
        .await;
        let director = app.add_user("caw", &[Role::TeamMember, Role::Casusregisseur]);
        let assigned = politie
            .clone()
            .assign_case_director(pb::AssignCaseDirectorRequest {
                user_id: director.clone(),
                ..appoint
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(
            assigned.dossier.unwrap().case_director.unwrap().user_id,
            director
        );
        advance(
            &politie,
            &id,
            pb::Phase::Assessment,
            pb::Phase::CaseDirection,
            pb::Track::ChainApproach,
        )
        .await;

        let read = |subject: String| {
            let mut client =
                app.as_user(&subject, "caw", &[Role::TeamMember, Role::Casusregisseur]);
            let request = read_request(&id, "case_direction");
            async move { client.get_dossier(request).await.unwrap().into_inner() }
        };
        // The appointed casusregisseur (a CAW employee) keeps the helicopter
        // view, police details included ...
        let theirs = read(director.clone()).await;
        assert!(
            theirs
                .released
                .iter()
                .any(|f| f.path == "police.interventions"),
            "{}",
            db.label()
        );
        // ... another CAW casusregisseur, not appointed here, reads as a CAW team member.
        let other = read(uuid::Uuid::new_v4().to_string()).await;
        assert_eq!(
            withheld(&other, "police.interventions"),
            Some(pb::AccessDenialReason::PolicyDenied)
        );
    }
}

#[tokio::test]
async fn organisations_leave_the_circle_and_informing_goes_through_the_broker() {
    for db in databases().await {
        let app = spawn(db.url()).await;
        let registered = app.register_family("k1").await;
        let id = registered.dossier.unwrap().dossier_id;
        let marie = registered
            .persons
            .iter()
            .find(|p| p.client_ref == "marie")
            .unwrap()
            .person_id
            .clone();
        let tom = registered
            .persons
            .iter()
            .find(|p| p.client_ref == "tom")
            .unwrap()
            .person_id
            .clone();
        let politie = app.team("politie");
        politie
            .clone()
            .add_participant(pb::AddParticipantRequest {
                dossier_id: id.clone(),
                organisation_id: app.orgs["caw"].clone(),
            })
            .await
            .unwrap();
        // Informing: a victim is never deferred.
        let deferred = pb::InformingDetails {
            state: pb::InformingState::Deferred as i32,
            deferral_reason: pb::DeferralReason::SafetyOfVictim as i32,
            review_at: Some(to_timestamp(T0 + 14 * DAY)),
            ..Default::default()
        };
        let status = assert_code(
            app.team("caw")
                .update_informing(pb::UpdateInformingRequest {
                    dossier_id: id.clone(),
                    person_id: marie.clone(),
                    details: Some(deferred.clone()),
                })
                .await,
            Code::FailedPrecondition,
        );
        assert_eq!(error_reason(&status), "VICTIM_NOT_DEFERRABLE");
        let record = app
            .team("caw")
            .update_informing(pb::UpdateInformingRequest {
                dossier_id: id.clone(),
                person_id: tom.clone(),
                details: Some(deferred),
            })
            .await
            .unwrap()
            .into_inner()
            .record
            .unwrap();
        assert_eq!(record.recorded_by.unwrap().subject, "team-caw");
        let status_now = politie
            .clone()
            .get_informing_status(pb::GetInformingStatusRequest {
                dossier_id: id.clone(),
                purpose: "triage".into(),
                include_history: true,
            })
            .await
            .unwrap()
            .into_inner();
        // Three at registration, Tom's deferral now.
        assert_eq!(status_now.records.len(), 4, "{}", db.label());

        // CAW leaves the circle: from then on it learns nothing.
        let status = assert_code(
            politie
                .clone()
                .remove_participant(pb::RemoveParticipantRequest {
                    dossier_id: id.clone(),
                    organisation_id: app.orgs["politie"].clone(),
                    reason: "x".into(),
                })
                .await,
            Code::FailedPrecondition,
        );
        assert_eq!(
            error_reason(&status),
            "NOT_REMOVABLE",
            "the registrant stays"
        );
        politie
            .clone()
            .remove_participant(pb::RemoveParticipantRequest {
                dossier_id: id.clone(),
                organisation_id: app.orgs["caw"].clone(),
                reason: "Niet meer betrokken".into(),
            })
            .await
            .unwrap();
        let status = assert_code(
            app.team("caw")
                .get_dossier(read_request(&id, "triage"))
                .await,
            Code::PermissionDenied,
        );
        assert_eq!(error_reason(&status), "NOT_IN_CIRCLE");
        let actions: Vec<i32> = app.audit_entries().await.iter().map(|e| e.action).collect();
        for action in [
            pb::AuditAction::InformingUpdate,
            pb::AuditAction::InformingRead,
            pb::AuditAction::ParticipantRemove,
        ] {
            assert!(actions.contains(&(action as i32)), "{action:?}");
        }
    }
}

#[tokio::test]
async fn a_person_joins_the_client_system_with_relations() {
    for db in databases().await {
        let app = spawn(db.url()).await;
        let registered = app.register_family("k1").await;
        let id = registered.dossier.unwrap().dossier_id;
        let marie = registered
            .persons
            .iter()
            .find(|p| p.client_ref == "marie")
            .unwrap()
            .person_id
            .clone();
        let added = app
            .team("politie")
            .add_person(pb::AddPersonRequest {
                dossier_id: id.clone(),
                purpose: "triage".into(),
                person: Some(pb::ClientPersonInput {
                    roles: vec![pb::PersonRole::Familie as i32],
                    given_name: "Koen".into(),
                    family_name: "Maes".into(),
                    ..Default::default()
                }),
                relations: vec![pb::PersonRelation {
                    from_person: String::new(),
                    to_person: marie.clone(),
                    kind: "nieuwe_partner".into(),
                }],
                idempotency_key: String::new(),
            })
            .await
            .unwrap()
            .into_inner();
        let dossier = added.dossier.unwrap();
        assert_eq!(dossier.person_ids.len(), 4, "{}", db.label());
        assert!(dossier.person_ids.contains(&added.person_id));
        let read = app
            .as_user("aanmelder-politie", "politie", &[Role::Aanmelder])
            .get_dossier(read_request(&id, "triage"))
            .await
            .unwrap()
            .into_inner();
        assert!(texts(&read, "persons.given_name").contains(&"Koen".to_owned()));
        let relation = read
            .released
            .iter()
            .find(|f| f.path == "persons.relations")
            .and_then(|f| {
                f.contributions
                    .iter()
                    .find(|c| c.person_id == added.person_id)
            })
            .expect("the relation is recorded for the new person");
        let Some(pb::field_value::Kind::List(list)) =
            relation.value.as_ref().and_then(|v| v.kind.clone())
        else {
            panic!("a list of relations");
        };
        let Some(pb::field_value::Kind::Record(record)) = list.items[0].kind.clone() else {
            panic!("a relation record");
        };
        assert_eq!(
            record.fields["person"].kind,
            Some(pb::field_value::Kind::PersonRef(marie.clone()))
        );
        // A relation to someone outside the dossier is refused, nothing added.
        let status = assert_code(
            app.team("politie")
                .add_person(pb::AddPersonRequest {
                    dossier_id: id.clone(),
                    purpose: "triage".into(),
                    person: Some(pb::ClientPersonInput {
                        roles: vec![pb::PersonRole::Familie as i32],
                        given_name: "X".into(),
                        ..Default::default()
                    }),
                    relations: vec![pb::PersonRelation {
                        from_person: String::new(),
                        to_person: uuid::Uuid::new_v4().to_string(),
                        kind: "broer_zus".into(),
                    }],
                    idempotency_key: String::new(),
                })
                .await,
            Code::InvalidArgument,
        );
        assert_eq!(bad_field(&status), "form.relations[0]");
    }
}
