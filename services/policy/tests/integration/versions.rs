//! Policy versions over gRPC: version 1 from the repository, proposals with
//! their diff, four-eyes approval, rejection, stale proposals, errors naming
//! the line, the watch stream, and every change audited, failing closed.
//! Each test runs on SQLite and, when configured, on PostgreSQL.

use std::time::Duration;

use crate::common::*;
use schakel_kit::{auth::Role, testing::databases};
use schakel_proto::v1 as pb;
use tonic::Code;

const CAW_READS_POLICE: &str =
    "p, caw, roles:case_team, police.interventions, read, phases:active, allow";

#[tokio::test]
async fn the_repository_files_are_version_1_on_first_start_only() {
    for db in databases().await {
        let app = spawn(db.url()).await;
        let active = app.active().await;
        assert_eq!(active.version, 1, "{}", db.label());
        assert_eq!(active.status, pb::PolicyVersionStatus::Active as i32);
        let files = schakel_policy::document::repository_files();
        assert_eq!(active.document.as_ref().unwrap(), &files);
        assert_eq!(
            active.content_sha256,
            schakel_policy::document::content_sha256(&files)
        );
        assert!(active.fields.len() >= 30);
        let entries = app.audit_entries().await;
        assert_eq!(entries.len(), 1);
        assert_eq!(entries[0].action, pb::AuditAction::PolicyApprove as i32);
        assert_eq!(entries[0].policy_version, 1);
        // A second instance on the same database adds nothing.
        let again = schakel_policy::Policies::connect(
            &app.database_url,
            schakel_kit::time::Clock::System,
            app.sink.clone(),
        )
        .await
        .unwrap();
        assert_eq!(again.active().version.version, 1);
        assert_eq!(app.audit_entries().await.len(), 1);
    }
}

#[tokio::test]
async fn a_proposal_shows_its_diff_and_needs_a_second_coordinator() {
    for db in databases().await {
        let app = spawn(db.url()).await;
        // Watch from version 1 on: the next item is the next activation.
        let mut watch = app
            .team_member()
            .watch_active_policy(pb::WatchActivePolicyRequest { known_version: 1 })
            .await
            .unwrap()
            .into_inner();
        let proposed = app
            .propose(&mut app.coordinator(), with_rule(CAW_READS_POLICE))
            .await
            .unwrap();
        let version = proposed.policy.unwrap();
        assert_eq!(version.version, 2);
        assert_eq!(version.status, pb::PolicyVersionStatus::Proposed as i32);
        assert_eq!(version.proposed_by, "coordinator-a");
        // Exactly the CAW team member's reading of police interventions in the
        // four active phases changes (the casusregisseur already reads them).
        let diff = proposed.diff.unwrap();
        assert_eq!(diff.changes.len(), 4, "{:#?}", diff.changes);
        for change in &diff.changes {
            assert_eq!(
                (
                    change.partner_type.as_str(),
                    change.role,
                    change.field.as_str()
                ),
                ("caw", pb::Role::TeamMember as i32, "police.interventions")
            );
            assert_eq!(change.before, pb::PolicyEffect::Deny as i32);
            assert_eq!(change.after, pb::PolicyEffect::Allow as i32);
        }
        // The reviewer sees the same diff.
        let review = app
            .coordinator2()
            .get_policy_version(pb::GetPolicyVersionRequest { version: 2 })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(review.diff_from_base.unwrap().changes.len(), 4);

        // Four eyes: not the proposer.
        let status = assert_code(
            app.coordinator()
                .approve_policy(pb::ApprovePolicyRequest { version: 2 })
                .await,
            Code::PermissionDenied,
        );
        assert_eq!(error_reason(&status), "FOUR_EYES");
        assert_eq!(app.active().await.version, 1);
        // Nor a team member.
        assert_code(
            app.team_member()
                .approve_policy(pb::ApprovePolicyRequest { version: 2 })
                .await,
            Code::PermissionDenied,
        );

        let approved = app
            .coordinator2()
            .approve_policy(pb::ApprovePolicyRequest { version: 2 })
            .await
            .unwrap()
            .into_inner()
            .policy
            .unwrap();
        assert_eq!(approved.status, pb::PolicyVersionStatus::Active as i32);
        assert_eq!(approved.decided_by, "coordinator-b");
        assert_eq!(app.active().await.version, 2, "{}", db.label());
        // The watcher got version 2 with its table.
        let next = tokio::time::timeout(Duration::from_secs(10), watch.message())
            .await
            .expect("the stream delivers the activation")
            .unwrap()
            .unwrap();
        assert_eq!(next.policy.unwrap().version, 2);
        let table =
            schakel_policy::DecisionTable::from_proto(&next.decision_table.unwrap()).unwrap();
        let field = table.field("police.interventions").unwrap();
        assert!(
            table
                .allowed(
                    "caw",
                    &[pb::Role::TeamMember as i32],
                    pb::Phase::CaseBuilding as i32,
                    pb::FieldAction::Read as i32
                )
                .contains(field)
        );
        let listed = app
            .team_member()
            .list_policy_versions(pb::ListPolicyVersionsRequest::default())
            .await
            .unwrap()
            .into_inner()
            .versions;
        assert_eq!(
            listed
                .iter()
                .map(|v| (v.version, v.status))
                .collect::<Vec<_>>(),
            vec![
                (2, pb::PolicyVersionStatus::Active as i32),
                (1, pb::PolicyVersionStatus::Superseded as i32)
            ]
        );
        let actions: Vec<i32> = app.audit_entries().await.iter().map(|e| e.action).collect();
        assert_eq!(
            actions,
            [
                pb::AuditAction::PolicyApprove,
                pb::AuditAction::PolicyPropose,
                pb::AuditAction::PolicyApprove
            ]
            .map(|a| a as i32)
        );
    }
}

#[tokio::test]
async fn invalid_proposals_name_the_file_and_line_and_store_nothing() {
    for db in databases().await {
        let app = spawn(db.url()).await;
        let csv =
            with_rule("p, caw, roles:case_team, police.horoscope, read, phases:active, allow");
        let line = csv.lines().count();
        let status = assert_code(
            app.propose(&mut app.coordinator(), csv).await,
            Code::InvalidArgument,
        );
        assert_eq!(bad_field(&status), format!("policy_csv:{line}"));
        assert!(status.message().contains("police.horoscope"), "{status:?}");
        // A model whose decisions the table would not reproduce.
        let base = app.active().await.version;
        let files = schakel_policy::document::repository_files();
        let status = assert_code(
            app.coordinator()
                .propose_policy(pb::ProposePolicyRequest {
                    document: Some(pb::PolicyDocument {
                        model_conf: files.model_conf.replace("r.act == p.act && ", ""),
                        ..Default::default()
                    }),
                    base_version: base,
                    description: "ignore actions".into(),
                    validate_only: false,
                })
                .await,
            Code::InvalidArgument,
        );
        assert_eq!(bad_field(&status), "model_conf", "{status:?}");
        // No description.
        let status = assert_code(
            app.coordinator()
                .propose_policy(pb::ProposePolicyRequest {
                    document: None,
                    base_version: base,
                    description: String::new(),
                    validate_only: false,
                })
                .await,
            Code::InvalidArgument,
        );
        assert_eq!(bad_field(&status), "description");
        let listed = app
            .coordinator()
            .list_policy_versions(pb::ListPolicyVersionsRequest::default())
            .await
            .unwrap()
            .into_inner()
            .versions;
        assert_eq!(listed.len(), 1, "{}", db.label());
        assert_eq!(app.audit_entries().await.len(), 1);
    }
}

#[tokio::test]
async fn validate_only_diffs_without_storing_or_auditing() {
    for db in databases().await {
        let app = spawn(db.url()).await;
        let response = app
            .coordinator()
            .propose_policy(pb::ProposePolicyRequest {
                document: Some(pb::PolicyDocument {
                    policy_csv: with_rule(CAW_READS_POLICE),
                    ..Default::default()
                }),
                base_version: 1,
                description: String::new(),
                validate_only: true,
            })
            .await
            .unwrap()
            .into_inner();
        assert!(response.policy.is_none());
        let diff = response.diff.unwrap();
        assert_eq!((diff.from_version, diff.to_version), (1, 0));
        assert_eq!(diff.changes.len(), 4);
        assert_eq!(app.audit_entries().await.len(), 1, "{}", db.label());
    }
}

#[tokio::test]
async fn rejected_and_stale_proposals_cannot_be_approved() {
    for db in databases().await {
        let app = spawn(db.url()).await;
        let mut a = app.coordinator();
        let first = app
            .propose(&mut a, with_rule(CAW_READS_POLICE))
            .await
            .unwrap();
        let second = app
            .propose(
                &mut a,
                with_rule(
                    "p, vk, roles:case_team, police.interventions, read, phases:active, allow",
                ),
            )
            .await
            .unwrap();
        let third = app
            .propose(
                &mut a,
                with_rule(
                    "p, ocj, roles:case_team, police.interventions, read, phases:active, allow",
                ),
            )
            .await
            .unwrap();
        let (v2, v3, v4) = (
            first.policy.unwrap().version,
            second.policy.unwrap().version,
            third.policy.unwrap().version,
        );
        assert_eq!((v2, v3, v4), (2, 3, 4));
        let status = assert_code(
            app.coordinator2()
                .reject_policy(pb::RejectPolicyRequest {
                    version: v3,
                    reason: String::new(),
                })
                .await,
            Code::InvalidArgument,
        );
        assert_eq!(bad_field(&status), "reason");
        let rejected = app
            .coordinator2()
            .reject_policy(pb::RejectPolicyRequest {
                version: v3,
                reason: "VK heeft geen politiegegevens nodig".into(),
            })
            .await
            .unwrap()
            .into_inner()
            .policy
            .unwrap();
        assert_eq!(rejected.status, pb::PolicyVersionStatus::Rejected as i32);
        let status = assert_code(
            app.coordinator2()
                .approve_policy(pb::ApprovePolicyRequest { version: v3 })
                .await,
            Code::FailedPrecondition,
        );
        assert_eq!(error_reason(&status), "NOT_PROPOSED");

        app.coordinator2()
            .approve_policy(pb::ApprovePolicyRequest { version: v2 })
            .await
            .unwrap();
        // v4 was proposed against v1, no longer active.
        let status = assert_code(
            app.coordinator2()
                .approve_policy(pb::ApprovePolicyRequest { version: v4 })
                .await,
            Code::FailedPrecondition,
        );
        assert_eq!(error_reason(&status), "NOT_PROPOSED", "{}", db.label());
        let v4_now = app
            .coordinator()
            .get_policy_version(pb::GetPolicyVersionRequest { version: v4 })
            .await
            .unwrap()
            .into_inner()
            .policy
            .unwrap();
        assert_eq!(v4_now.status, pb::PolicyVersionStatus::Stale as i32);
        // And a proposal against an old base is refused up front.
        let status = assert_code(
            app.coordinator()
                .propose_policy(pb::ProposePolicyRequest {
                    document: None,
                    base_version: 1,
                    description: "late".into(),
                    validate_only: false,
                })
                .await,
            Code::FailedPrecondition,
        );
        assert_eq!(error_reason(&status), "BASE_NOT_ACTIVE");
    }
}

/// With the log down an approval commits (the policy is active) with its
/// entry staged; nothing else changes until the log has taken that entry.
#[tokio::test]
async fn with_the_log_down_an_approval_is_staged_and_nothing_else_changes() {
    for db in databases().await {
        let app = spawn(db.url()).await;
        let proposed = app
            .propose(&mut app.coordinator(), with_rule(CAW_READS_POLICE))
            .await
            .unwrap();
        let version = proposed.policy.unwrap().version;
        app.sink.set_down(true);
        let status = assert_code(
            app.coordinator2()
                .approve_policy(pb::ApprovePolicyRequest { version })
                .await,
            Code::Unavailable,
        );
        assert_eq!(error_reason(&status), "AUDIT_PENDING");
        assert_eq!(app.active().await.version, version, "{}", db.label());
        let status = assert_code(
            app.propose(&mut app.coordinator(), with_rule(CAW_READS_POLICE))
                .await,
            Code::Unavailable,
        );
        assert_eq!(error_reason(&status), "AUDIT_UNAVAILABLE");
        let listed = app
            .coordinator()
            .list_policy_versions(pb::ListPolicyVersionsRequest::default())
            .await
            .unwrap()
            .into_inner()
            .versions;
        assert_eq!(listed.len(), 2, "{}", db.label());
        app.sink.set_down(false);
        let outbox = app.service.audit_outbox();
        assert_eq!(outbox.drain(std::time::Duration::ZERO).await.unwrap(), 1);
        let approvals = app
            .audit
            .log()
            .entries()
            .await
            .unwrap()
            .into_iter()
            .filter(|e| {
                e.action == pb::AuditAction::PolicyApprove as i32 && e.policy_version == version
            })
            .count();
        assert_eq!(approvals, 1, "{}", db.label());
    }
}

#[tokio::test]
async fn another_instance_switches_to_a_newly_activated_version() {
    for db in databases().await {
        let app = spawn(db.url()).await;
        // A second instance (another process in production) on the same database.
        let other = schakel_policy::Policies::connect(
            &app.database_url,
            schakel_kit::time::Clock::System,
            app.sink.clone(),
        )
        .await
        .unwrap();
        let mut follow = other.subscribe();
        let proposed = app
            .propose(&mut app.coordinator(), with_rule(CAW_READS_POLICE))
            .await
            .unwrap();
        let started = std::time::Instant::now();
        app.coordinator2()
            .approve_policy(pb::ApprovePolicyRequest {
                version: proposed.policy.unwrap().version,
            })
            .await
            .unwrap();
        tokio::time::timeout(Duration::from_secs(10), follow.changed())
            .await
            .expect("the other instance switches")
            .unwrap();
        assert_eq!(other.active().version.version, 2, "{}", db.label());
        eprintln!(
            "{}: the other instance switched after {:?}",
            db.label(),
            started.elapsed()
        );
    }
}

#[tokio::test]
async fn anyone_authenticated_may_explain_evaluate_and_print_the_matrix() {
    for db in databases().await {
        let app = spawn(db.url()).await;
        let mut client = app.client_as("team-politie", "politie", &[Role::TeamMember]);
        let explained = client
            .explain(pb::ExplainRequest {
                partner_type: "politie".into(),
                role: pb::Role::TeamMember as i32,
                field: "ggz.clinical_notes".into(),
                action: pb::FieldAction::Read as i32,
                phase: pb::Phase::CaseBuilding as i32,
                version: 0,
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(explained.effect, pb::PolicyEffect::Deny as i32);
        let deny = explained
            .matched_rules
            .iter()
            .find(|r| r.effect == pb::PolicyEffect::Deny as i32)
            .expect("the deny rule is named");
        let line = schakel_policy::document::repository_files()
            .policy_csv
            .lines()
            .nth(deny.line as usize - 1)
            .unwrap()
            .trim()
            .to_owned();
        assert_eq!(deny.text, line);
        assert!(
            explained
                .explanation
                .starts_with("denied: politie team_member"),
            "{}",
            explained.explanation
        );
        assert!(
            explained
                .explanation
                .contains(&format!("line {}", deny.line))
        );

        let evaluated = client
            .evaluate_fields(pb::EvaluateFieldsRequest {
                partner_type: "caw".into(),
                roles: vec![pb::Role::TeamMember as i32],
                phase: pb::Phase::FollowUp as i32,
                action: pb::FieldAction::Read as i32,
                fields: vec![
                    "registration.situation_description".into(),
                    "ggz.diagnosis".into(),
                ],
                version: 0,
            })
            .await
            .unwrap()
            .into_inner();
        let d = &evaluated.decisions;
        assert_eq!(d[0].effect, pb::PolicyEffect::Deny as i32);
        assert!(d[0].allowed_in_other_phase, "district is read while active");
        assert!(!d[1].allowed_in_other_phase);
        let status = assert_code(
            client
                .evaluate_fields(pb::EvaluateFieldsRequest {
                    partner_type: "caw".into(),
                    roles: vec![pb::Role::TeamMember as i32],
                    phase: pb::Phase::FollowUp as i32,
                    action: pb::FieldAction::Read as i32,
                    fields: vec!["ggz.horoscope".into()],
                    version: 0,
                })
                .await,
            Code::InvalidArgument,
        );
        assert_eq!(bad_field(&status), "fields");

        let matrix = client
            .access_matrix(pb::AccessMatrixRequest {
                version: 1,
                phase: pb::Phase::CaseBuilding as i32,
                action: pb::FieldAction::Read as i32,
            })
            .await
            .unwrap()
            .into_inner();
        assert_eq!(matrix.rows.len() % 5, 0);
        assert!(
            matrix
                .rows
                .iter()
                .all(|r| r.cells.len() == matrix.fields.len())
        );
        // Privacy officers and coordinators read nothing, anywhere.
        assert!(
            matrix
                .rows
                .iter()
                .filter(|r| r.role == pb::Role::PrivacyOfficer as i32
                    || r.role == pb::Role::Coordinator as i32)
                .all(|r| r.cells.iter().all(|c| *c == pb::PolicyEffect::Deny as i32)),
            "{}",
            db.label()
        );
        // Only coordinators propose.
        assert_code(
            app.propose(&mut client, with_rule(CAW_READS_POLICE)).await,
            Code::PermissionDenied,
        );
    }
}

#[tokio::test]
async fn a_hostile_matcher_is_refused_and_the_service_keeps_serving() {
    for db in databases().await {
        let app = spawn(db.url()).await;
        let files = schakel_policy::document::repository_files();
        let line = files
            .model_conf
            .lines()
            .position(|l| l.starts_with("m = "))
            .unwrap()
            + 1;
        // 2,000 nested brackets aborted the process (stack overflow).
        let nested = format!(
            "m = {}r.act == p.act{}",
            "(".repeat(2_000),
            ")".repeat(2_000)
        );
        let matcher = files.model_conf.lines().nth(line - 1).unwrap().to_owned();
        let status = assert_code(
            app.coordinator()
                .propose_policy(pb::ProposePolicyRequest {
                    document: Some(pb::PolicyDocument {
                        model_conf: files.model_conf.replace(&matcher, &nested),
                        ..Default::default()
                    }),
                    base_version: 1,
                    description: String::new(),
                    validate_only: true,
                })
                .await,
            Code::InvalidArgument,
        );
        assert_eq!(
            bad_field(&status),
            format!("model_conf:{line}"),
            "{status:?}"
        );
        // Still serving.
        assert_eq!(app.active().await.version, 1, "{}", db.label());
    }
}
