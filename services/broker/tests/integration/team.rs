//! The team around a dossier over gRPC on SQLite and PostgreSQL: the
//! casusregisseur role counts only for the appointed one, organisations
//! leave the circle, and informing goes through the broker (a victim is
//! never deferred).

use crate::common::*;
use schakel_kit::{auth::Role, testing::databases, time::to_timestamp};
use schakel_proto::v1 as pb;
use tonic::Code;

#[tokio::test]
async fn the_casusregisseur_role_counts_only_for_the_appointed_one() {
    for db in databases().await {
        let app = spawn(db.url()).await;
        let id = app
            .dossier_in("k1", &["caw"], pb::Phase::CaseBuilding)
            .await;
        let politie = app.team("politie");
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
        let intervention = input("police.interventions", intervention);
        let contribution = contribution(&id, "case_building", vec![intervention], "");
        politie.clone().contribute(contribution).await.unwrap();
        // Appointed only at assessment.
        let unknown = uuid::Uuid::new_v4().to_string();
        let appoint = appoint(&id, &unknown, &app.orgs["caw"]);
        let early = politie.clone().assign_case_director(appoint.clone()).await;
        assert_refusal(early, Code::FailedPrecondition, "WRONG_PHASE");
        advance(
            &politie,
            &id,
            pb::Phase::CaseBuilding,
            pb::Phase::Assessment,
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
        let registered = app.family_with("k1", &["caw"]).await;
        let id = registered.dossier.clone().unwrap().dossier_id;
        let (marie, tom) = (person(&registered, "marie"), person(&registered, "tom"));
        let politie = app.team("politie");
        // Informing: a victim is never deferred.
        let deferred = pb::InformingDetails {
            state: pb::InformingState::Deferred as i32,
            deferral_reason: pb::DeferralReason::SafetyOfVictim as i32,
            review_at: Some(to_timestamp(T0 + 14 * DAY)),
            ..Default::default()
        };
        let victim = informing(&id, &marie, deferred.clone());
        let refused = app.team("caw").update_informing(victim).await;
        assert_refusal(refused, Code::FailedPrecondition, "VICTIM_NOT_DEFERRABLE");
        let record = app
            .team("caw")
            .update_informing(informing(&id, &tom, deferred))
            .await
            .unwrap()
            .into_inner()
            .record
            .unwrap();
        assert_eq!(record.recorded_by.unwrap().subject, "team-caw");
        let records = records_by(&politie, informing_status(&id, "triage", true)).await;
        // Three at registration, Tom's deferral now.
        assert_eq!(records.len(), 4, "{}", db.label());

        // CAW leaves the circle: from then on it learns nothing.
        // The registrant stays.
        let registrant = politie
            .clone()
            .remove_participant(app.leaves(&id, "politie", "x"))
            .await;
        assert_refusal(registrant, Code::FailedPrecondition, "NOT_REMOVABLE");
        let leaves = app.leaves(&id, "caw", "Niet meer betrokken");
        politie.clone().remove_participant(leaves).await.unwrap();
        let read = try_read(&app.team("caw"), &id, "triage").await;
        assert_refusal(read, Code::PermissionDenied, "NOT_IN_CIRCLE");
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
        let id = registered.dossier.clone().unwrap().dossier_id;
        let marie = person(&registered, "marie");
        let koen = pb::AddPersonRequest {
            relations: vec![pb::PersonRelation {
                from_person: String::new(),
                to_person: marie.clone(),
                kind: "nieuwe_partner".into(),
            }],
            ..relative(&id, "Koen", "Maes", "")
        };
        let added = app.team("politie").add_person(koen).await;
        let added = added.unwrap().into_inner();
        let dossier = added.dossier.unwrap();
        assert_eq!(dossier.person_ids.len(), 4, "{}", db.label());
        assert!(dossier.person_ids.contains(&added.person_id));
        let read = read_by(&app.aanmelder(), &id, "triage").await;
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
        let stranger = pb::AddPersonRequest {
            relations: vec![pb::PersonRelation {
                from_person: String::new(),
                to_person: uuid::Uuid::new_v4().to_string(),
                kind: "broer_zus".into(),
            }],
            ..relative(&id, "X", "", "")
        };
        let status = assert_code(
            app.team("politie").add_person(stranger).await,
            Code::InvalidArgument,
        );
        assert_eq!(bad_field(&status), "form.relations[0]");
    }
}
