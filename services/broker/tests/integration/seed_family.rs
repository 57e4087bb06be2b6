//! The family of DOMAIN.md's seed 000, registered by the OCJ and built up by
//! the partners through the broker over TLS (as `schakel dev` seeds it), read
//! back partner by partner on SQLite and PostgreSQL.

use std::collections::HashMap;

use crate::common::*;
use schakel_broker::seed::{Member, Seeded, family_000};
use schakel_kit::{auth::Role, testing::databases};
use schakel_proto::v1 as pb;
use tonic::Code;

/// Seeds family 000 as `schakel dev` does, twice (the second changes nothing).
async fn seed(app: &TestApp) -> Seeded {
    let members: HashMap<String, Member> = PARTNERS
        .iter()
        .map(|p| {
            // As in `schakel dev`: each partner's team member also registers.
            let member = Member {
                client: app.as_user(
                    &format!("team-{p}"),
                    p,
                    &[Role::Aanmelder, Role::TeamMember],
                ),
                organisation_id: app.orgs[p].clone(),
            };
            (p.to_string(), member)
        })
        .collect();
    let seeded = family_000().apply(&members, T0).await.unwrap();
    assert!(seeded.created);
    // Seeding again changes nothing: the registration is idempotent.
    let again = family_000().apply(&members, T0).await.unwrap();
    assert!(!again.created);
    assert_eq!(again.dossier_id, seeded.dossier_id);
    seeded
}

/// Reads as `partner`'s team member and checks that exactly one audit entry
/// records the read, naming exactly the fields released and withheld.
async fn read(app: &TestApp, partner: &str, id: &str) -> pb::GetDossierResponse {
    let before = app.audit_entries().await.len();
    let response = read_by(&app.team(partner), id, "case_building").await;
    let entries = app.audit_entries().await;
    assert_eq!(entries.len(), before + 1, "one audit entry per read");
    let entry = entries.last().unwrap();
    assert_eq!(entry.index, response.audit_index);
    assert_eq!(entry.action, pb::AuditAction::DossierRead as i32);
    assert_eq!(entry.target.as_ref().unwrap().dossier_id, id);
    let released: Vec<&str> = response.released.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(entry.fields_released, released);
    let withheld: Vec<(&str, i32)> = response
        .withheld
        .iter()
        .map(|w| (w.path.as_str(), w.reason))
        .collect();
    let logged: Vec<(&str, i32)> = entry
        .fields_withheld
        .iter()
        .map(|w| (w.path.as_str(), w.reason))
        .collect();
    assert_eq!(logged, withheld);
    assert_eq!(entry.policy_version, response.policy_version);
    response
}

const POLICY: Option<pb::AccessDenialReason> = Some(pb::AccessDenialReason::PolicyDenied);

#[tokio::test]
async fn the_seed_family_is_shared_by_need_to_know() {
    for db in databases().await {
        let app = spawn(db.url()).await;
        let seeded = seed(&app).await;
        let id = seeded.dossier_id.clone();
        let label = db.label();

        // The police see their interventions and the national register
        // numbers, but no mental-health or substance-use details.
        let police = read(&app, "politie", &id).await;
        assert_eq!(
            police.dossier.as_ref().unwrap().phase,
            pb::Phase::CaseBuilding as i32
        );
        let interventions = police
            .released
            .iter()
            .find(|f| f.path == "police.interventions")
            .unwrap();
        assert_eq!(
            interventions.contributions[0].source_partner_type,
            "politie"
        );
        let numbers = texts(&police, "persons.national_number");
        assert_eq!(numbers.len(), 2, "{label}");
        assert!(numbers.contains(&"92031412352".to_owned()), "{numbers:?}");
        for path in [
            "ggz.treatment",
            "substance_use.substances",
            "substance_use.treatment",
        ] {
            assert_eq!(withheld(&police, path), POLICY, "{path} {label}");
        }
        // GGZ sees its own fields and the registration, not the national
        // register number nor police details beyond the summary.
        let ggz = read(&app, "ggz", &id).await;
        assert_eq!(
            texts(&ggz, "ggz.treatment"),
            ["GGZ-traject voor meneer aangewezen; traumahulp voor mevrouw opgestart."]
        );
        assert_eq!(texts(&ggz, "persons.given_name").len(), 5);
        assert_eq!(withheld(&ggz, "persons.national_number"), POLICY, "{label}");
        assert_eq!(withheld(&ggz, "police.interventions"), POLICY);
        assert!(!texts(&ggz, "police.summary").is_empty());
        // Child welfare details go to VK, OCJ and the casusregisseur only.
        let vk = read(&app, "vk", &id).await;
        assert_eq!(texts(&vk, "child_welfare.care_trajectory").len(), 1);
        let caw = read(&app, "caw", &id).await;
        assert_eq!(withheld(&caw, "child_welfare.care_trajectory"), POLICY);
        assert_eq!(withheld(&caw, "ggz.treatment"), POLICY);

        // Outside the circle: nothing, not even that the dossier exists.
        let outsider = app.as_user("team-ocmw", "outsider", &[Role::TeamMember]);
        let read = try_read(&outsider, &id, "case_building").await;
        let status = assert_code(read, Code::PermissionDenied);
        assert!(!status.message().contains("Wouters"));
        assert!(listed(&outsider).await.is_empty(), "{label}");

        // Audit down: UNAVAILABLE and nothing released.
        app.sink.set_down(true);
        let read = try_read(&app.team("politie"), &id, "case_building").await;
        let status = assert_code(read, Code::Unavailable);
        assert!(status.details().is_empty() || !status.message().contains("PV"));
        app.sink.set_down(false);

        // The agreement expires: every read stops, for every partner.
        app.clock.advance(90 * DAY);
        for partner in ["politie", "ggz", "ocj"] {
            let read = try_read(&app.team(partner), &id, "case_building").await;
            let status = assert_code(read, Code::PermissionDenied);
            assert_eq!(error_reason(&status), "NO_LEGAL_BASIS", "{partner} {label}");
        }
    }
}

#[tokio::test]
async fn an_erased_seed_dossier_is_unreadable_but_its_decisions_stay_logged() {
    for db in databases().await {
        let app = spawn(db.url()).await;
        let seeded = seed(&app).await;
        let id = seeded.dossier_id.clone();
        read(&app, "politie", &id).await;
        let logged = app.audit_entries().await.len();
        app.as_user("dpo-vh", "veilig_huis", &[Role::PrivacyOfficer])
            .erase_dossier(erase(
                &id,
                pb::ErasureReason::RegisteredInError,
                "DPO-2026-9",
            ))
            .await
            .unwrap();
        for partner in ["politie", "ocj"] {
            let read = try_read(&app.team(partner), &id, "case_building").await;
            let status = assert_code(read, Code::NotFound);
            assert_eq!(error_reason(&status), "ERASED", "{}", db.label());
        }
        let entries = app.audit_entries().await;
        assert!(entries.len() > logged);
        assert!(
            entries[..logged]
                .iter()
                .any(|e| e.action == pb::AuditAction::DossierRead as i32
                    && e.target.as_ref().unwrap().dossier_id == id)
        );
    }
}

#[tokio::test]
async fn the_seed_family_follows_the_policy_and_the_legal_basis_as_they_change() {
    for db in databases().await {
        let app = spawn(db.url()).await;
        let id = seed(&app).await.dossier_id;
        let label = db.label();
        // Coordinators withdraw the weapons details from the police's team
        // (four eyes): the very next read of the running broker follows.
        let weapons = |r: &pb::GetDossierResponse| {
            r.released
                .iter()
                .any(|f| f.path == "police.weapons" && !f.contributions.is_empty())
        };
        assert!(weapons(&read(&app, "politie", &id).await), "{label}");
        let version = app
            .activate_policy_with(
                "p, politie, team_member, police.weapons, read, case_building, deny\n",
                "wapens niet meer aan het team van de politie",
            )
            .await;
        let after = read(&app, "politie", &id).await;
        assert_eq!(after.policy_version, version, "{label}");
        assert!(!weapons(&after), "{label}");
        // Withheld (reason PHASE: the police still see it in other phases).
        assert!(withheld(&after, "police.weapons").is_some(), "{label}");

        // The same family registered again with the mother (the victim) not
        // informed: triage goes on, beyond triage nothing is released.
        let mut uninformed = family_000();
        uninformed.registration.persons[1].informing = None;
        let request = uninformed
            .registration
            .to_request("seed-000-uninformed", T0)
            .unwrap();
        let ocj = app.as_user("team-ocj", "ocj", &[Role::Aanmelder, Role::TeamMember]);
        let other = ocj
            .clone()
            .register_dossier(request)
            .await
            .unwrap()
            .into_inner()
            .dossier
            .unwrap()
            .dossier_id;
        read_by(&ocj, &other, "triage").await;
        advance_to(&ocj, &other, pb::Phase::CaseBuilding).await;
        let read = try_read(&ocj, &other, "case_building").await;
        let status = assert_code(read, Code::PermissionDenied);
        assert_eq!(
            error_metadata(&status, "basis_denial_reason"),
            "BASIS_DENIAL_REASON_CLIENT_NOT_INFORMED",
            "{label}"
        );

        // The procureur withdraws the authorisation: every read stops.
        app.revoke_agreement().await;
        for partner in ["politie", "ggz", "ocj"] {
            let read = try_read(&app.team(partner), &id, "case_building").await;
            let status = assert_code(read, Code::PermissionDenied);
            assert_eq!(
                error_metadata(&status, "basis_denial_reason"),
                "BASIS_DENIAL_REASON_REVOKED",
                "{partner} {label}"
            );
        }
    }
}
