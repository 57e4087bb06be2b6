//! The legal-basis, informing and policy gates on every call about a
//! dossier: a revoked agreement stops them all, the purpose must fit the
//! phase, informing follows the phase (not the purpose), and informing
//! itself is gated by the policy.

use crate::common::*;
use schakel_kit::{auth::Role, testing::databases};
use schakel_proto::v1 as pb;
use tonic::Code;

use pb::AccessDenialReason as R;
use pb::AuditAction as A;
use pb::InformationRequestDeclineReason as DeclineReason;

const REVOKED: &str = "BASIS_DENIAL_REASON_REVOKED";

/// Expects `call` refused POLICY_DENIED for the field persons.informing, and
/// that refusal audited.
async fn informing_denied<T: std::fmt::Debug>(
    app: &TestApp,
    call: impl std::future::Future<Output = Result<T, tonic::Status>>,
    action: A,
) {
    let policy = Denied::As(R::PolicyDenied);
    let (status, _) = app
        .refused(
            call,
            Code::PermissionDenied,
            "POLICY_DENIED",
            action,
            policy,
        )
        .await;
    assert_eq!(error_metadata(&status, "field"), "persons.informing");
}

/// Expects `client`'s triage read of a dossier past registration refused
/// PURPOSE_NOT_FOR_PHASE, and that refusal audited.
async fn triage_refused(
    app: &TestApp,
    client: &Client,
    id: &str,
) -> (tonic::Status, pb::AuditEntry) {
    let read = try_read(client, id, "triage");
    let purpose = Denied::As(R::PurposeNotForPhase);
    let reason = "PURPOSE_NOT_FOR_PHASE";
    app.refused(
        read,
        Code::FailedPrecondition,
        reason,
        A::DossierRead,
        purpose,
    )
    .await
}

#[tokio::test]
async fn a_revoked_agreement_stops_every_call_about_the_dossier() {
    for db in databases().await {
        let app = spawn(db.url()).await;
        let registered = app
            .family_in("k1", &["ggz", "caw"], pb::Phase::Assessment)
            .await;
        let id = registered.dossier.clone().unwrap().dossier_id;
        let mut politie = app.team("politie");
        let ask = app.ask(&id, "ggz", &["ggz."], "case_building");
        let qid = asked(&politie, ask).await.information_request_id;
        let director = app.add_user("caw", &[Role::Casusregisseur]);
        app.revoke_agreement().await;

        let listed = listed(&politie).await;
        assert!(
            listed.iter().all(|d| d.dossier_id != id),
            "{}: still listed",
            db.label()
        );
        let (mut ggz, mut caw) = (app.team("ggz"), app.team("caw"));
        let advance = step(
            &id,
            pb::Phase::Assessment,
            pb::Phase::CaseDirection,
            "teamoverleg",
        );
        let call = politie.advance_phase(advance);
        app.refused_without_basis(call, A::PhaseAdvance, REVOKED)
            .await;
        let call = politie.add_participant(app.joins(&id, "vk"));
        app.refused_without_basis(call, A::ParticipantAdd, REVOKED)
            .await;
        let remove = app.leaves(&id, "caw", "Niet meer betrokken");
        let call = politie.remove_participant(remove);
        app.refused_without_basis(call, A::ParticipantRemove, REVOKED)
            .await;
        let assign = appoint(&id, &director, &app.orgs["caw"]);
        let call = politie.assign_case_director(assign);
        app.refused_without_basis(call, A::CaseDirectorAssign, REVOKED)
            .await;
        let tom = person(&registered, "tom");
        let inform = informing(&id, &tom, informed(pb::InformingMethod::InPerson));
        let call = caw.update_informing(inform);
        app.refused_without_basis(call, A::InformingUpdate, REVOKED)
            .await;
        let status = informing_status(&id, "case_building", false);
        let call = caw.get_informing_status(status);
        app.refused_without_basis(call, A::InformingRead, REVOKED)
            .await;
        let call = ggz.get_information_request(question(&qid));
        app.refused_without_basis(call, A::InformationRequestRead, REVOKED)
            .await;
        let decline = decline(&qid, DeclineReason::ProfessionalSecrecy, "");
        let call = ggz.decline_information_request(decline);
        app.refused_without_basis(call, A::InformationRequestDecline, REVOKED)
            .await;
        let cancel = cancel(&qid, "Niet meer nodig.");
        let call = politie.cancel_information_request(cancel);
        app.refused_without_basis(call, A::InformationRequestCancel, REVOKED)
            .await;
        for partner in ["politie", "ggz"] {
            let requests = questions(&app.team(partner), Default::default()).await;
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
        let id = app.dossier_in("k1", &[], pb::Phase::CaseDirection).await;
        let politie = app.team("politie");
        let (status, entry) = triage_refused(&app, &politie, &id).await;
        assert_eq!(
            error_metadata(&status, "allowed_purposes"),
            "case_direction"
        );
        assert_eq!(entry.purpose, "triage", "{}", db.label());
        assert!(entry.fields_released.is_empty());
        // The purpose of the phase reads.
        read_by(&politie, &id, "case_direction").await;
    }
}

#[tokio::test]
async fn informing_follows_the_phase_not_the_purpose() {
    for db in databases().await {
        let app = spawn(db.url()).await;
        // The victim is not informed.
        let registered = app.register(uninformed("k1")).await;
        let id = registered.dossier.unwrap().dossier_id;
        let mut politie = app.team("politie");
        // Managing the phase needs no informing.
        advance_to(&politie, &id, pb::Phase::CaseDirection).await;
        let read = politie.get_dossier(read_request(&id, "case_direction"));
        let not_informed = "BASIS_DENIAL_REASON_CLIENT_NOT_INFORMED";
        app.refused_without_basis(read, A::DossierRead, not_informed)
            .await;
        // Declaring triage does not get around it.
        triage_refused(&app, &politie, &id).await;
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
        let inform = informing(&id, &tom, informed(pb::InformingMethod::Phone));
        let mut ggz = app.team("ggz");
        let update = ggz.update_informing(inform.clone());
        informing_denied(&app, update, A::InformingUpdate).await;
        let status_request = informing_status(&id, "triage", true);
        let read = ggz.get_informing_status(status_request.clone());
        informing_denied(&app, read, A::InformingRead).await;
        // Unchanged: the three records of the registration, Tom deferred.
        let records = records_by(&app.team("caw"), status_request.clone()).await;
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
        let now = informing_status(&id, "triage", false);
        let records = records_by(&app.team("caw"), now).await;
        assert_eq!(
            state_of_tom(&records),
            Some(pb::InformingState::Informed as i32)
        );
    }
}
