//! The chain process around the phases (issue 16): the six-month follow-up
//! with reason codes, track reviews, deferred informing coming up for
//! review, the weekly table, WatchEvents and the year in figures, on the
//! manual clock (no sleeps).

use crate::common::*;
use schakel_kit::{auth::Role, testing::databases, time::to_timestamp};
use schakel_proto::v1::{self as pb, AuditAction as A};

fn attribute(entry: &pb::AuditEntry, key: &str) -> String {
    let found = entry.attributes.iter().find(|a| a.key == key);
    found.map(|a| a.value.clone()).unwrap_or_default()
}

fn with_code(mut step: pb::AdvancePhaseRequest, code: pb::PhaseReason) -> pb::AdvancePhaseRequest {
    step.reason_code = code as i32;
    step
}

#[track_caller]
fn invalid<T: std::fmt::Debug>(result: Result<T, tonic::Status>, field: &str) {
    let status = assert_code(result, tonic::Code::InvalidArgument);
    assert_eq!(bad_field(&status), field, "{status:?}");
}

fn seconds(t: Option<prost_types::Timestamp>) -> Option<i64> {
    t.map(|t| t.seconds)
}

/// A dossier's metadata as the police's team lists it.
async fn dossier_of(app: &TestApp, id: &str) -> pb::Dossier {
    let listed = listed(&app.team("politie")).await;
    listed.into_iter().find(|d| d.dossier_id == id).unwrap()
}

#[tokio::test]
async fn follow_up_sets_its_check_date_and_closing_early_or_new_violence_needs_a_reason_code() {
    use pb::{Phase::*, PhaseReason as R};
    for db in databases().await {
        let app = spawn(db.url()).await;
        let team = app.team("politie");
        let id = app.dossier_in("follow", &[], CaseDirection).await;
        let entered = team
            .clone()
            .advance_phase(step(&id, CaseDirection, FollowUp, "Doelen bereikt"))
            .await
            .unwrap()
            .into_inner();
        let now = app.clock.now();
        let check = now + FOLLOW_UP;
        let dossier = entered.dossier.unwrap();
        assert_eq!(seconds(dossier.follow_up_check_at), Some(check));
        assert!(!dossier.follow_up_check_due);

        // Closing before the check date without an early-close code.
        let mut close = step(&id, FollowUp, Closed, "Afronden");
        close.reason_code = 0;
        let mut t = team.clone();
        let call = t.advance_phase(close.clone());
        app.refused(
            call,
            tonic::Code::FailedPrecondition,
            "REASON_CODE_REQUIRED",
            A::PhaseAdvance,
            Denied::Precondition,
        )
        .await;
        let no_violence = with_code(close.clone(), R::NoNewViolence);
        app.refused(
            team.clone().advance_phase(no_violence),
            tonic::Code::FailedPrecondition,
            "REASON_CODE_REQUIRED",
            A::PhaseAdvance,
            Denied::Precondition,
        )
        .await;

        // New violence takes it back, with its code only.
        let back = step(&id, FollowUp, CaseDirection, "Nieuw PV: slagen");
        app.refused(
            team.clone().advance_phase(back.clone()),
            tonic::Code::FailedPrecondition,
            "REASON_CODE_REQUIRED",
            A::PhaseAdvance,
            Denied::Precondition,
        )
        .await;
        let back = with_code(back, R::NewViolence);
        let moved = team.clone().advance_phase(back).await.unwrap().into_inner();
        let entry = app.entry_at(moved.audit_index).await;
        assert_eq!(
            attribute(&entry, "reason_code"),
            "PHASE_REASON_NEW_VIOLENCE"
        );
        let dossier = moved.dossier.unwrap();
        assert_eq!(dossier.phase, CaseDirection as i32);
        assert_eq!(dossier.follow_up_check_at, None);
        assert_eq!(seconds(dossier.review_due_at), Some(now + SPOOR_3_REVIEW));

        // Follow-up again; from the check date on, closing records no new violence.
        let again = step(&id, CaseDirection, FollowUp, "Opnieuw stabiel");
        team.clone().advance_phase(again).await.unwrap();
        app.clock.advance(FOLLOW_UP + DAY);
        assert!(dossier_of(&app, &id).await.follow_up_check_due);
        let closed = team
            .clone()
            .advance_phase(close)
            .await
            .unwrap()
            .into_inner();
        let entry = app.entry_at(closed.audit_index).await;
        assert_eq!(
            attribute(&entry, "reason_code"),
            "PHASE_REASON_NO_NEW_VIOLENCE"
        );
        assert_eq!(
            seconds(closed.dossier.unwrap().closed_at),
            Some(app.clock.now())
        );

        // The history keeps every reason code.
        let history = read_by(&team, &id, "follow_up").await.history;
        let codes: Vec<i32> = history.iter().map(|e| e.reason_code).collect();
        assert!(codes.contains(&(R::NewViolence as i32)), "{history:?}");
        assert!(codes.contains(&(R::NoNewViolence as i32)), "{history:?}");

        // A code where none belongs is invalid input.
        let other = app.dossier_in("other", &[], Registration).await;
        let coded = with_code(
            step(&other, Registration, CaseBuilding, "Start"),
            R::NewViolence,
        );
        invalid(team.clone().advance_phase(coded).await, "reason_code");
    }
}

#[tokio::test]
async fn a_track_has_a_planned_review_that_falls_due_and_is_recorded() {
    use pb::Phase::*;
    for db in databases().await {
        let app = spawn(db.url()).await;
        let team = app.team("politie");
        let id = app.dossier_in("review", &[], CaseDirection).await;
        let started = app.clock.now();
        let dossier = dossier_of(&app, &id).await;
        assert_eq!(seconds(dossier.track_since), Some(started));
        assert_eq!(
            seconds(dossier.review_due_at),
            Some(started + SPOOR_3_REVIEW)
        );
        assert!(!dossier.review_overdue);
        let overdue = pb::ListDossiersRequest {
            review_overdue: true,
            ..Default::default()
        };
        let list = |request: pb::ListDossiersRequest| {
            let team = team.clone();
            async move {
                let page = team
                    .clone()
                    .list_dossiers(request)
                    .await
                    .unwrap()
                    .into_inner();
                page.dossiers
                    .into_iter()
                    .map(|d| d.dossier_id)
                    .collect::<Vec<_>>()
            }
        };
        assert!(list(overdue.clone()).await.is_empty());

        app.clock.advance(SPOOR_3_REVIEW + DAY);
        assert!(dossier_of(&app, &id).await.review_overdue);
        assert_eq!(list(overdue.clone()).await, vec![id.clone()]);

        // Only the case team records it, only in case direction.
        let review = pb::RecordReviewRequest {
            dossier_id: id.clone(),
            reason: "Plan van aanpak loopt; politie blijft betrokken.".into(),
        };
        let mut aanmelder = app.aanmelder();
        let aanmelder = aanmelder.record_review(review.clone());
        app.refused_role(aanmelder, A::TrackReview).await;
        let reviewed = team
            .clone()
            .record_review(review)
            .await
            .unwrap()
            .into_inner();
        let dossier = reviewed.dossier.unwrap();
        assert_eq!(
            seconds(dossier.review_due_at),
            Some(app.clock.now() + SPOOR_3_REVIEW)
        );
        assert!(!dossier.review_overdue);
        assert!(list(overdue).await.is_empty());
        let history = read_by(&team, &id, "case_direction").await.history;
        assert!(history.iter().any(|e| e.action == A::TrackReview as i32));

        let early = app.dossier_in("early", &[], Registration).await;
        let review = pb::RecordReviewRequest {
            dossier_id: early,
            reason: "Te vroeg".into(),
        };
        let mut t = team.clone();
        let call = t.record_review(review);
        app.refused(
            call,
            tonic::Code::FailedPrecondition,
            "NO_REVIEW_PLANNED",
            A::TrackReview,
            Denied::Precondition,
        )
        .await;
    }
}

#[tokio::test]
async fn a_deferral_past_its_review_date_flags_the_dossier_until_it_is_renewed() {
    for db in databases().await {
        let app = spawn(db.url()).await;
        let registered = app
            .family_in("deferral", &["caw"], pb::Phase::CaseBuilding)
            .await;
        let id = registered.dossier.as_ref().unwrap().dossier_id.clone();
        let caw = app.team("caw");
        // The seeded family defers informing Tom until T0 + 30 days.
        let dossier = read_by(&caw, &id, "case_building").await.dossier.unwrap();
        assert_eq!(seconds(dossier.informing_review_at), Some(T0 + 30 * DAY));
        assert!(!dossier.informing_review_overdue);
        let flagged = pb::ListDossiersRequest {
            informing_review_overdue: true,
            ..Default::default()
        };
        let listed = caw.clone().list_dossiers(flagged.clone()).await.unwrap();
        assert!(listed.into_inner().dossiers.is_empty());

        app.clock.advance(31 * DAY);
        // Reads are flagged, not refused.
        let read = read_by(&caw, &id, "case_building").await;
        assert!(read.dossier.unwrap().informing_review_overdue);
        assert!(!read.released.is_empty());
        let listed = caw.clone().list_dossiers(flagged.clone()).await.unwrap();
        assert_eq!(listed.into_inner().dossiers.len(), 1);

        // Renewed for 60 more days: the flag goes.
        let tom = person(&registered, "tom");
        let renewed = pb::InformingDetails {
            state: pb::InformingState::Deferred as i32,
            deferral_reason: pb::DeferralReason::SafetyOfVictim as i32,
            review_at: Some(to_timestamp(app.clock.now() + 60 * DAY)),
            ..Default::default()
        };
        caw.clone()
            .update_informing(informing(&id, &tom, renewed))
            .await
            .unwrap();
        let dossier = read_by(&caw, &id, "case_building").await.dossier.unwrap();
        assert_eq!(
            seconds(dossier.informing_review_at),
            Some(app.clock.now() + 60 * DAY)
        );
        assert!(!dossier.informing_review_overdue);
        let listed = caw.clone().list_dossiers(flagged).await.unwrap();
        assert!(listed.into_inner().dossiers.is_empty());
    }
}

#[tokio::test]
async fn the_weekly_table_lists_what_is_due_to_each_member_of_the_circle_only() {
    use pb::{AgendaItem as I, Phase::*};
    for db in databases().await {
        let app = spawn(db.url()).await;
        let new = app.dossier_in("new", &["vk"], Registration).await;
        let running = app.dossier_in("running", &["caw"], CaseDirection).await;
        let question = app.ask(&running, "caw", &["finances."], "case_direction");
        let asked = app
            .team("politie")
            .request_information(question)
            .await
            .unwrap();
        let request_id = asked
            .into_inner()
            .information_request
            .unwrap()
            .information_request_id;
        // Past the deferral's review (T0 + 30 days) and the track's.
        app.clock.advance(31 * DAY);
        let table = |partner: &str| {
            let client = app.team(partner);
            async move {
                let request = pb::GetWeeklyTableRequest {
                    district: "leuven".into(),
                    date: None,
                };
                client
                    .clone()
                    .get_weekly_table(request)
                    .await
                    .unwrap()
                    .into_inner()
            }
        };
        let items = |t: &pb::GetWeeklyTableResponse, id: &str| -> Vec<i32> {
            let found = t
                .dossiers
                .iter()
                .find(|d| d.dossier.as_ref().unwrap().dossier_id == id);
            found.map(|d| d.items.clone()).unwrap_or_default()
        };

        let police = table("politie").await;
        assert_eq!(
            items(&police, &new),
            vec![I::NewRegistration as i32, I::InformingReviewDue as i32]
        );
        assert_eq!(
            items(&police, &running),
            vec![I::ReviewDue as i32, I::InformingReviewDue as i32]
        );
        assert_eq!(police.overdue_requests.len(), 1);
        assert_eq!(police.overdue_requests[0].request_id, request_id);
        // One entry per dossier and per overdue request shown.
        let entries = app.entries_of(A::WeeklyTableRead).await;
        assert_eq!(entries.len(), 3, "{entries:?}");

        // The CAW is in the running dossier's circle only; the VK in the new one's.
        let caw = table("caw").await;
        assert_eq!(caw.dossiers.len(), 1);
        assert!(!items(&caw, &running).is_empty());
        assert_eq!(caw.overdue_requests.len(), 1);
        let vk = table("vk").await;
        assert_eq!(vk.dossiers.len(), 1);
        assert!(!items(&vk, &new).is_empty());
        assert!(vk.overdue_requests.is_empty());
        // An organisation in no circle sees an empty table.
        let ggz = table("ggz").await;
        assert!(ggz.dossiers.is_empty() && ggz.overdue_requests.is_empty());

        // Without a legal basis nothing is listed.
        app.revoke_agreement().await;
        let police = table("politie").await;
        assert!(police.dossiers.is_empty() && police.overdue_requests.is_empty());
        let unknown = pb::GetWeeklyTableRequest {
            district: "Leuven!".into(),
            date: None,
        };
        invalid(
            app.team("politie").get_weekly_table(unknown).await,
            "district",
        );
        let far = pb::GetWeeklyTableRequest {
            district: "leuven".into(),
            date: Some(to_timestamp(app.clock.now() + 400 * DAY)),
        };
        invalid(app.team("politie").get_weekly_table(far).await, "date");
    }
}

/// The next event of a stream (a hung stream fails the test after 20 s).
async fn next(stream: &mut tonic::Streaming<pb::BrokerEvent>) -> pb::BrokerEvent {
    let message = tokio::time::timeout(std::time::Duration::from_secs(20), stream.message());
    message
        .await
        .expect("an event")
        .unwrap()
        .expect("the stream goes on")
}

async fn watch(client: &Client, after: u64) -> tonic::Streaming<pb::BrokerEvent> {
    let request = pb::WatchEventsRequest {
        after,
        dossier_id: String::new(),
    };
    client
        .clone()
        .watch_events(request)
        .await
        .unwrap()
        .into_inner()
}

#[tokio::test]
async fn partners_follow_their_inbox_and_reminders_without_polling_and_resume_from_a_cursor() {
    use pb::BrokerEventKind as K;
    for db in databases().await {
        let app = spawn(db.url()).await;
        let id = app
            .dossier_in("watch", &["caw", "vk"], pb::Phase::Assessment)
            .await;
        let (politie, caw) = (app.team("politie"), app.team("caw"));
        let mut inbox = watch(&caw, 0).await;
        let question = app.ask(&id, "caw", &["finances."], "case_building");
        let asked = politie.clone().request_information(question).await.unwrap();
        let request_id = asked
            .into_inner()
            .information_request
            .unwrap()
            .information_request_id;
        // From cursor 0 the feed starts with what came before: the phase
        // changes of the setup, to the whole circle.
        for phase in [pb::Phase::CaseBuilding, pb::Phase::Assessment] {
            let setup = next(&mut inbox).await;
            assert_eq!(
                (setup.kind, setup.phase),
                (K::PhaseChanged as i32, phase as i32)
            );
        }
        let received = next(&mut inbox).await;
        assert_eq!(received.kind, K::RequestReceived as i32);
        assert_eq!(
            (received.dossier_id.as_str(), received.request_id.as_str()),
            (id.as_str(), request_id.as_str())
        );
        // The delivery is in the audit log, naming the dossier and the request.
        let entry = app.entry_at(received.audit_index).await;
        assert_eq!(entry.action, A::EventDeliver as i32);
        assert_eq!(
            attribute(&entry, "event"),
            "BROKER_EVENT_KIND_REQUEST_RECEIVED"
        );

        // Due in 7 days: a reminder 2 days before, raised once however often swept.
        app.clock.advance(5 * DAY + 1);
        assert_eq!(app.broker.sweep().await.unwrap(), 1);
        assert_eq!(app.broker.sweep().await.unwrap(), 0);
        let reminder = next(&mut inbox).await;
        assert_eq!(reminder.kind, K::RequestDueSoon as i32);
        assert_eq!(
            seconds(reminder.due_at),
            Some(app.clock.now() - 5 * DAY - 1 + 7 * DAY)
        );

        // A casusregisseur is appointed; overdue goes to both parties and
        // escalates to the case director's organisation.
        let director = app.add_user("vk", &[Role::Casusregisseur]);
        let assign = appoint(&id, &director, &app.orgs["vk"]);
        politie.clone().assign_case_director(assign).await.unwrap();
        let mut escalations = watch(&app.team("vk"), received.cursor).await;
        app.clock.advance(2 * DAY);
        assert_eq!(app.broker.sweep().await.unwrap(), 3);
        let overdue = next(&mut inbox).await;
        assert_eq!(overdue.kind, K::RequestOverdue as i32);
        let escalated = next(&mut escalations).await;
        assert_eq!(escalated.kind, K::RequestEscalated as i32);
        assert_eq!(escalated.request_id, request_id);

        // A reconnect resumes after the last cursor: only what came since.
        drop(inbox);
        let mut resumed = watch(&caw, overdue.cursor).await;
        politie
            .clone()
            .cancel_information_request(cancel(&request_id, "Niet meer nodig"))
            .await
            .unwrap();
        let cancelled = next(&mut resumed).await;
        assert_eq!(cancelled.kind, K::RequestCancelled as i32);
        assert!(cancelled.cursor > overdue.cursor);

        // Removed from the circle: the dossier's events stop reaching the CAW.
        let leave = app.leaves(&id, "caw", "Niet meer betrokken");
        politie.clone().remove_participant(leave).await.unwrap();
        advance(
            &politie,
            &id,
            pb::Phase::Assessment,
            pb::Phase::CaseDirection,
        )
        .await;
        let other = app
            .dossier_in("other", &["caw"], pb::Phase::Registration)
            .await;
        advance(
            &politie,
            &other,
            pb::Phase::Registration,
            pb::Phase::CaseBuilding,
        )
        .await;
        let event = next(&mut resumed).await;
        assert_eq!(
            (event.kind, event.dossier_id.as_str()),
            (K::PhaseChanged as i32, other.as_str())
        );

        // At most 32 streams per organisation (the GGZ's: it has none open).
        let ggz = app.team("ggz");
        let mut open = Vec::new();
        for _ in 0..32 {
            open.push(watch(&ggz, 0).await);
        }
        let refused = ggz
            .clone()
            .watch_events(pb::WatchEventsRequest::default())
            .await;
        assert_code(refused, tonic::Code::ResourceExhausted);
        drop(open);

        // Oversight roles do not follow dossiers.
        let officer = app.as_user("dpo", "caw", &[Role::PrivacyOfficer]);
        let request = pb::WatchEventsRequest::default();
        app.refused_role(officer.clone().watch_events(request), A::EventDeliver)
            .await;
    }
}

#[tokio::test]
async fn an_overdue_request_escalates_once_a_casusregisseur_is_appointed() {
    for db in databases().await {
        let app = spawn(db.url()).await;
        let id = app
            .dossier_in("late", &["caw", "vk"], pb::Phase::Assessment)
            .await;
        let politie = app.team("politie");
        let question = app.ask(&id, "caw", &["finances."], "case_building");
        politie.clone().request_information(question).await.unwrap();
        app.clock.advance(8 * DAY);
        // Overdue to both parties; nobody to escalate to yet.
        assert_eq!(app.broker.sweep().await.unwrap(), 2);
        let director = app.add_user("vk", &[Role::Casusregisseur]);
        let assign = appoint(&id, &director, &app.orgs["vk"]);
        politie.clone().assign_case_director(assign).await.unwrap();
        assert_eq!(app.broker.sweep().await.unwrap(), 1, "the escalation");
        assert_eq!(app.broker.sweep().await.unwrap(), 0);
        // The case director's organisation: the setup's two phase changes,
        // then the escalation.
        let mut vk = watch(&app.team("vk"), 0).await;
        for _ in 0..2 {
            assert_eq!(
                next(&mut vk).await.kind,
                pb::BrokerEventKind::PhaseChanged as i32
            );
        }
        let escalated = next(&mut vk).await;
        assert_eq!(escalated.kind, pb::BrokerEventKind::RequestEscalated as i32);
    }
}

#[tokio::test]
async fn a_stream_ends_when_its_token_expires() {
    for db in databases().await {
        let app = spawn(db.url()).await;
        app.dossier_in("expiry", &["caw"], pb::Phase::CaseBuilding)
            .await;
        let caw = app.team("caw");
        let mut stream = watch(&caw, 0).await;
        next(&mut stream).await; // the setup's phase change
        // Far past the token's expiry (tokens live minutes; the manual clock
        // starts in January 2026); the deferral's review then comes due and
        // its notice wakes the stream, which ends instead of delivering it.
        app.clock.advance(400 * DAY);
        assert!(app.broker.sweep().await.unwrap() > 0);
        let ended = tokio::time::timeout(std::time::Duration::from_secs(20), stream.message());
        let status = ended.await.expect("the stream ends").unwrap_err();
        assert_eq!(status.code(), tonic::Code::Unauthenticated, "{status:?}");
    }
}

#[tokio::test]
async fn coordinators_get_figures_from_metadata_with_small_counts_suppressed() {
    use pb::FigureDimension as D;
    for db in databases().await {
        let app = spawn(db.url()).await;
        let caw = app.as_user("aanmelder-caw", "caw", &[Role::Aanmelder]);
        for i in 0..6 {
            app.register(registration(&format!("police-{i}"))).await;
        }
        for i in 0..2 {
            let mut request = registration(&format!("caw-{i}"));
            request.requested_track = pb::Track::CaseSupport as i32;
            caw.clone().register_dossier(request).await.unwrap();
        }
        let vk = app.as_user("aanmelder-vk", "vk", &[Role::Aanmelder]);
        for i in 0..5 {
            let request = registration(&format!("vk-{i}"));
            vk.clone().register_dossier(request).await.unwrap();
        }
        let coordinator = app.as_user("coordinator-1", "justitiehuis", &[Role::Coordinator]);
        let figures = |by: Vec<D>| {
            let coordinator = coordinator.clone();
            async move {
                let request = pb::GetFiguresRequest {
                    registered: Some(pb::TimeRange {
                        from: Some(to_timestamp(T0 - DAY)),
                        until: Some(to_timestamp(T0 + 365 * DAY)),
                    }),
                    group_by: by.into_iter().map(|d| d as i32).collect(),
                    ..Default::default()
                };
                coordinator
                    .clone()
                    .get_figures(request)
                    .await
                    .unwrap()
                    .into_inner()
            }
        };
        let by_partner = figures(vec![D::RegisteringPartnerType]).await;
        assert_eq!((by_partner.total, by_partner.total_suppressed), (13, false));
        let cells: Vec<(String, u32, bool)> = by_partner
            .cells
            .iter()
            .map(|c| (c.registering_partner_type.clone(), c.count, c.suppressed))
            .collect();
        // The CAW's 2 are suppressed, and so the smallest other (the VK's 5):
        // 13 minus the police's 6 does not give the CAW's count away.
        assert_eq!(
            cells,
            vec![
                ("caw".into(), 0, true),
                ("politie".into(), 6, false),
                ("vk".into(), 0, true)
            ]
        );
        let by_track = figures(vec![D::Period, D::Track]).await;
        let cells: Vec<(String, i32, u32)> = by_track
            .cells
            .iter()
            .map(|c| (c.period.clone(), c.track, c.count))
            .collect();
        assert_eq!(
            cells,
            vec![
                ("2026".into(), pb::Track::CaseSupport as i32, 0),
                ("2026".into(), pb::Track::ChainApproach as i32, 0),
            ]
        );
        assert!(by_track.cells.iter().all(|c| c.suppressed));
        let entry = app.entry_at(by_track.audit_index).await;
        assert_eq!(entry.action, A::FiguresRead as i32);
        assert_eq!(attribute(&entry, "group_by"), "PERIOD+TRACK");
        assert_eq!(attribute(&entry, "period"), "YEAR");
        assert_eq!(attribute(&entry, "from"), (T0 - DAY).to_string());
        assert!(
            entry
                .target
                .as_ref()
                .is_none_or(|t| t.dossier_id.is_empty())
        );

        // Nobody else gets figures; content roles read dossiers instead.
        let team = app.team("politie");
        let request = pb::GetFiguresRequest::default();
        app.refused_role(team.clone().get_figures(request.clone()), A::FiguresRead)
            .await;
        invalid(
            coordinator.clone().get_figures(request).await,
            "registered.from",
        );
    }
}
