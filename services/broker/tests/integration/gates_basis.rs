//! The legal-basis, informing and policy gates on every call about a
//! dossier: a revoked agreement stops them all, the purpose must fit the
//! phase, informing follows the phase (not the purpose), and informing
//! itself is gated by the policy.

use crate::common::*;
use schakel_kit::{auth::Role, testing::databases, time::to_timestamp};
use schakel_proto::v1 as pb;
use tonic::Code;

use pb::AccessDenialReason as R;
use pb::AuditAction as A;

/// Expects `call` refused NO_LEGAL_BASIS because the agreement was revoked,
/// and that refusal audited.
async fn revoked<T: std::fmt::Debug>(
    app: &TestApp,
    call: impl std::future::Future<Output = Result<T, tonic::Status>>,
    action: A,
) {
    let (status, entry) = app
        .refused(
            call,
            Code::PermissionDenied,
            "NO_LEGAL_BASIS",
            action,
            Denied::As(R::NoLegalBasis),
        )
        .await;
    let reason = "BASIS_DENIAL_REASON_REVOKED";
    assert_eq!(error_metadata(&status, "basis_denial_reason"), reason);
    assert_eq!(entry.basis_denial_reason, reason, "{action:?}");
}

#[tokio::test]
async fn a_revoked_agreement_stops_every_call_about_the_dossier() {
    for db in databases().await {
        let app = spawn(db.url()).await;
        let registered = app.family_with("k1", &["ggz", "caw"]).await;
        let id = registered.dossier.clone().unwrap().dossier_id;
        let politie = app.team("politie");
        advance_to(&politie, &id, pb::Phase::Assessment).await;
        let question = politie
            .clone()
            .request_information(app.ask(&id, "ggz", &["ggz."], "case_building"))
            .await
            .unwrap()
            .into_inner()
            .information_request
            .unwrap()
            .information_request_id;
        let director = app.add_user("caw", &[Role::Casusregisseur]);
        app.legal_basis
            .revoke(
                &coordinator("coordinator-1"),
                &app.agreement_id,
                1,
                pb::RevocationReason::ProsecutorWithdrew as i32,
                "Machtiging ingetrokken.",
            )
            .await
            .unwrap();

        let listed = politie
            .clone()
            .list_dossiers(pb::ListDossiersRequest::default())
            .await
            .unwrap()
            .into_inner()
            .dossiers;
        assert!(
            listed.iter().all(|d| d.dossier_id != id),
            "{}: still listed",
            db.label()
        );
        let advance = pb::AdvancePhaseRequest {
            dossier_id: id.clone(),
            expected_phase: pb::Phase::Assessment as i32,
            target_phase: pb::Phase::CaseDirection as i32,
            track: pb::Track::ChainApproach as i32,
            reason: "teamoverleg".into(),
        };
        revoked(
            &app,
            politie.clone().advance_phase(advance),
            A::PhaseAdvance,
        )
        .await;
        let add = pb::AddParticipantRequest {
            dossier_id: id.clone(),
            organisation_id: app.orgs["vk"].clone(),
        };
        revoked(
            &app,
            politie.clone().add_participant(add),
            A::ParticipantAdd,
        )
        .await;
        let remove = pb::RemoveParticipantRequest {
            dossier_id: id.clone(),
            organisation_id: app.orgs["caw"].clone(),
            reason: "Niet meer betrokken".into(),
        };
        revoked(
            &app,
            politie.clone().remove_participant(remove),
            A::ParticipantRemove,
        )
        .await;
        let assign = pb::AssignCaseDirectorRequest {
            dossier_id: id.clone(),
            user_id: director,
            organisation_id: app.orgs["caw"].clone(),
        };
        revoked(
            &app,
            politie.clone().assign_case_director(assign),
            A::CaseDirectorAssign,
        )
        .await;
        let inform = pb::UpdateInformingRequest {
            dossier_id: id.clone(),
            person_id: person(&registered, "tom"),
            details: Some(pb::InformingDetails {
                state: pb::InformingState::Informed as i32,
                informed_at: Some(to_timestamp(T0)),
                method: pb::InformingMethod::InPerson as i32,
                ..Default::default()
            }),
        };
        revoked(
            &app,
            app.team("caw").update_informing(inform),
            A::InformingUpdate,
        )
        .await;
        let status = pb::GetInformingStatusRequest {
            dossier_id: id.clone(),
            purpose: "case_building".into(),
            include_history: false,
        };
        revoked(
            &app,
            app.team("caw").get_informing_status(status),
            A::InformingRead,
        )
        .await;
        let get = pb::GetInformationRequestRequest {
            information_request_id: question.clone(),
        };
        revoked(
            &app,
            app.team("ggz").get_information_request(get),
            A::InformationRequestRead,
        )
        .await;
        let decline = pb::DeclineInformationRequestRequest {
            information_request_id: question.clone(),
            reason: pb::InformationRequestDeclineReason::ProfessionalSecrecy as i32,
            explanation: String::new(),
        };
        revoked(
            &app,
            app.team("ggz").decline_information_request(decline),
            A::InformationRequestDecline,
        )
        .await;
        let cancel = pb::CancelInformationRequestRequest {
            information_request_id: question.clone(),
            explanation: "Niet meer nodig.".into(),
        };
        revoked(
            &app,
            politie.clone().cancel_information_request(cancel),
            A::InformationRequestCancel,
        )
        .await;
        for partner in ["politie", "ggz"] {
            let requests = app
                .team(partner)
                .list_information_requests(pb::ListInformationRequestsRequest::default())
                .await
                .unwrap()
                .into_inner()
                .information_requests;
            assert!(
                requests.iter().all(|r| r.dossier_id != id),
                "{}: {partner} still lists the dossier's requests",
                db.label()
            );
        }
    }
}

#[tokio::test]
async fn the_purpose_must_fit_the_phase() {
    for db in databases().await {
        let app = spawn(db.url()).await;
        let id = app.register_family("k1").await.dossier.unwrap().dossier_id;
        let politie = app.team("politie");
        advance_to(&politie, &id, pb::Phase::CaseDirection).await;
        let (status, entry) = app
            .refused(
                politie.clone().get_dossier(read_request(&id, "triage")),
                Code::FailedPrecondition,
                "PURPOSE_NOT_FOR_PHASE",
                A::DossierRead,
                Denied::As(R::PurposeNotForPhase),
            )
            .await;
        assert_eq!(
            error_metadata(&status, "allowed_purposes"),
            "case_direction"
        );
        assert_eq!(entry.purpose, "triage", "{}", db.label());
        assert!(entry.fields_released.is_empty());
        // The purpose of the phase reads.
        politie
            .clone()
            .get_dossier(read_request(&id, "case_direction"))
            .await
            .unwrap();
    }
}

#[tokio::test]
async fn informing_follows_the_phase_not_the_purpose() {
    for db in databases().await {
        let app = spawn(db.url()).await;
        // The victim is not informed.
        let mut request = registration("k1");
        request.form.as_mut().unwrap().persons[0].informing = None;
        let id = app
            .as_user("aanmelder-politie", "politie", &[Role::Aanmelder])
            .register_dossier(request)
            .await
            .unwrap()
            .into_inner()
            .dossier
            .unwrap()
            .dossier_id;
        let politie = app.team("politie");
        // Managing the phase needs no informing.
        advance_to(&politie, &id, pb::Phase::CaseDirection).await;
        let (status, entry) = app
            .refused(
                politie
                    .clone()
                    .get_dossier(read_request(&id, "case_direction")),
                Code::PermissionDenied,
                "NO_LEGAL_BASIS",
                A::DossierRead,
                Denied::As(R::NoLegalBasis),
            )
            .await;
        let reason = "BASIS_DENIAL_REASON_CLIENT_NOT_INFORMED";
        assert_eq!(error_metadata(&status, "basis_denial_reason"), reason);
        assert_eq!(entry.basis_denial_reason, reason, "{}", db.label());
        // Declaring triage does not get around it.
        app.refused(
            politie.clone().get_dossier(read_request(&id, "triage")),
            Code::FailedPrecondition,
            "PURPOSE_NOT_FOR_PHASE",
            A::DossierRead,
            Denied::As(R::PurposeNotForPhase),
        )
        .await;
    }
}

#[tokio::test]
async fn informing_is_gated_by_the_policy() {
    for db in databases().await {
        let app = spawn(db.url()).await;
        let registered = app.family_with("k1", &["ggz", "caw"]).await;
        let id = registered.dossier.clone().unwrap().dossier_id;
        let tom = person(&registered, "tom");
        app.activate_policy_with(
            "p, ggz, *, persons.informing, contribute, *, deny\n\
             p, ggz, *, persons.informing, read, *, deny\n",
            "deny ggz informing",
        )
        .await;
        let inform = pb::UpdateInformingRequest {
            dossier_id: id.clone(),
            person_id: tom.clone(),
            details: Some(pb::InformingDetails {
                state: pb::InformingState::Informed as i32,
                informed_at: Some(to_timestamp(T0)),
                method: pb::InformingMethod::Phone as i32,
                ..Default::default()
            }),
        };
        let (status, _) = app
            .refused(
                app.team("ggz").update_informing(inform.clone()),
                Code::PermissionDenied,
                "POLICY_DENIED",
                A::InformingUpdate,
                Denied::As(R::PolicyDenied),
            )
            .await;
        assert_eq!(error_metadata(&status, "field"), "persons.informing");
        let status_request = pb::GetInformingStatusRequest {
            dossier_id: id.clone(),
            purpose: "triage".into(),
            include_history: true,
        };
        let (status, _) = app
            .refused(
                app.team("ggz").get_informing_status(status_request.clone()),
                Code::PermissionDenied,
                "POLICY_DENIED",
                A::InformingRead,
                Denied::As(R::PolicyDenied),
            )
            .await;
        assert_eq!(error_metadata(&status, "field"), "persons.informing");
        // Unchanged: the three records of the registration, Tom deferred.
        let records = app
            .team("caw")
            .get_informing_status(status_request.clone())
            .await
            .unwrap()
            .into_inner()
            .records;
        assert_eq!(records.len(), 3, "{}", db.label());
        let state_of_tom = |records: &[pb::InformingRecord]| {
            records
                .iter()
                .rev()
                .find(|r| r.person_id == tom)
                .and_then(|r| r.details.as_ref())
                .map(|d| d.state)
        };
        assert_eq!(
            state_of_tom(&records),
            Some(pb::InformingState::Deferred as i32)
        );
        // CAW still may.
        app.team("caw").update_informing(inform).await.unwrap();
        let records = app
            .team("caw")
            .get_informing_status(pb::GetInformingStatusRequest {
                include_history: false,
                ..status_request
            })
            .await
            .unwrap()
            .into_inner()
            .records;
        assert_eq!(
            state_of_tom(&records),
            Some(pb::InformingState::Informed as i32)
        );
    }
}
