//! ListDossiers filters before it pages: with page size 1 each page holds
//! one matching dossier and a next page token while more match, whether the
//! filter is the phase, the caller being the casusregisseur, or the time of
//! registration.

use crate::common::*;
use schakel_kit::{auth::Role, testing::databases, time::to_timestamp};
use schakel_proto::v1 as pb;

/// Pages through `request` one dossier at a time: the ids of each page
/// with whether a next page token came with it (at most 10 pages).
async fn pages(client: &Client, mut request: pb::ListDossiersRequest) -> Vec<(Vec<String>, bool)> {
    let mut pages = Vec::new();
    let mut token = String::new();
    for _ in 0..10 {
        request.page = Some(pb::PageRequest {
            page_size: 1,
            page_token: token,
        });
        let page = client.clone().list_dossiers(request.clone()).await;
        let page = page.unwrap().into_inner();
        let ids = page.dossiers.into_iter().map(|d| d.dossier_id).collect();
        token = page.next_page_token;
        pages.push((ids, !token.is_empty()));
        if token.is_empty() {
            break;
        }
    }
    pages
}

/// Exactly two pages, one of `a` or `b` each, the first with a token.
#[track_caller]
fn two_pages(pages: &[(Vec<String>, bool)], a: &str, b: &str, label: &str) {
    assert_eq!(pages.len(), 2, "{label}: {pages:?}");
    assert!(pages[0].1, "{label}: a token after the first page");
    assert!(!pages[1].1, "{label}: no token after the last page");
    let mut seen: Vec<&str> = pages
        .iter()
        .inspect(|(ids, _)| assert_eq!(ids.len(), 1, "{label}: {pages:?}"))
        .map(|(ids, _)| ids[0].as_str())
        .collect();
    seen.sort_unstable();
    let mut want = vec![a, b];
    want.sort_unstable();
    assert_eq!(seen, want, "{label}");
}

/// The seeded family registered under `key`, in registration.
async fn registered(app: &TestApp, key: &str) -> String {
    app.dossier_in(key, &[], pb::Phase::Registration).await
}

#[tokio::test]
async fn the_phase_filter_comes_before_the_page() {
    for db in databases().await {
        let app = spawn(db.url()).await;
        let mut ids = Vec::new();
        for key in ["k1", "k2", "k3", "k4", "k5"] {
            ids.push(registered(&app, key).await);
        }
        let politie = app.team("politie");
        for i in [0, 2] {
            advance_to(&politie, &ids[i], pb::Phase::CaseBuilding).await;
        }
        let request = pb::ListDossiersRequest {
            phases: vec![pb::Phase::CaseBuilding as i32],
            ..Default::default()
        };
        two_pages(
            &pages(&politie, request).await,
            &ids[0],
            &ids[2],
            db.label(),
        );
    }
}

#[tokio::test]
async fn case_director_is_me_comes_before_the_page() {
    for db in databases().await {
        let app = spawn(db.url()).await;
        let me = app.add_user("caw", &[Role::Casusregisseur]);
        let other = app.add_user("caw", &[Role::Casusregisseur]);
        let politie = app.team("politie");
        let mut ids = Vec::new();
        for (key, director) in [("k1", &me), ("k2", &other), ("k3", &me), ("k4", &other)] {
            let id = app.dossier_in(key, &["caw"], pb::Phase::Assessment).await;
            let appoint = appoint(&id, director, &app.orgs["caw"]);
            politie.clone().assign_case_director(appoint).await.unwrap();
            ids.push(id);
        }
        let mine = app.as_user(&me, "caw", &[Role::Casusregisseur]);
        let request = pb::ListDossiersRequest {
            case_director_is_me: true,
            ..Default::default()
        };
        two_pages(&pages(&mine, request).await, &ids[0], &ids[2], db.label());
    }
}

#[tokio::test]
async fn the_registration_time_filter_comes_before_the_page() {
    for db in databases().await {
        let app = spawn(db.url()).await;
        let early = registered(&app, "k1").await;
        app.clock.advance(DAY);
        let a = registered(&app, "k2").await;
        let b = registered(&app, "k3").await;
        app.clock.advance(DAY);
        let late = registered(&app, "k4").await;
        let request = pb::ListDossiersRequest {
            registered: Some(pb::TimeRange {
                from: Some(to_timestamp(T0 + DAY)),
                until: Some(to_timestamp(T0 + DAY + 3600)),
            }),
            ..Default::default()
        };
        let got = pages(&app.team("politie"), request).await;
        two_pages(&got, &a, &b, db.label());
        assert!(
            got.iter()
                .all(|(ids, _)| !ids.contains(&early) && !ids.contains(&late))
        );
    }
}
