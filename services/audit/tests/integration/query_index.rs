//! The query index (posting lists of sealed segments, a scan of the open one)
//! answers exactly what filtering every entry would: Query (all pages) and
//! SubjectReport are compared with a brute-force filter over the whole log,
//! for many filter combinations, with segments of 4 entries so that most
//! entries are in sealed segments and some in the open one.

use crate::common::*;
use schakel_kit::{testing::databases, time::Clock};
use schakel_proto::v1 as pb;

const ORGS: [&str; 4] = [CAW, "org-ggz", "org-politie", "org-ocj"];
const START: i64 = 1_800_000_000;

/// A pseudo-random but reproducible entry `n`.
fn varied(n: u64) -> pb::AuditEntry {
    let r = n.wrapping_mul(0x9E37_79B9_7F4A_7C15).rotate_left(17);
    let org = ORGS[(r % 4) as usize];
    let persons: Vec<String> = (0..(r >> 8) % 4)
        .map(|k| format!("p-{}", (r >> (12 + 4 * k)) % 7))
        .collect();
    let persons: Vec<&str> = persons.iter().map(String::as_str).collect();
    let mut e = read_entry(
        org,
        "caw",
        &format!("dossier-{}", (r >> 4) % 6),
        &persons,
        &["registration.summary"],
    );
    if let Some(actor) = e.actor.as_mut() {
        actor.subject = format!("user-{}", (r >> 24) % 5);
    }
    if (r >> 30).is_multiple_of(3)
        && let Some(target) = e.target.as_mut()
    {
        target.organisation_id = ORGS[((r >> 32) % 4) as usize].into();
    }
    if (r >> 34).is_multiple_of(4) {
        e.action = pb::AuditAction::Contribute as i32;
        e.decision = pb::Decision::Granted as i32;
        e.fields_released.clear();
        e.fields_contributed = vec!["caw.support_plan".into()];
    }
    if (r >> 36).is_multiple_of(5) {
        e.decision = pb::Decision::Denied as i32;
    }
    e
}

/// Whether `e` matches `q` as seen by an organisation-scoped officer of `scope`.
fn wanted(e: &pb::AuditEntry, q: &pb::QueryRequest, scope: Option<&str>) -> bool {
    let actor = e.actor.clone().unwrap_or_default();
    let target = e.target.clone().unwrap_or_default();
    let time = e.time.as_ref().map_or(0, |t| t.seconds);
    let range = q.time_range.unwrap_or_default();
    scope.is_none_or(|o| actor.organisation_id == o || target.organisation_id == o)
        && (q.organisation_id.is_empty() || actor.organisation_id == q.organisation_id)
        && (q.subject.is_empty() || actor.subject == q.subject)
        && (q.dossier_id.is_empty() || target.dossier_id == q.dossier_id)
        && (q.person_id.is_empty() || target.person_ids.contains(&q.person_id))
        && (q.actions.is_empty() || q.actions.contains(&e.action))
        && (q.decisions.is_empty() || q.decisions.contains(&e.decision))
        && range.from.as_ref().is_none_or(|f| time >= f.seconds)
        && range.until.as_ref().is_none_or(|u| time <= u.seconds)
}

/// Every page of `q`, newest first.
async fn all_pages(client: &mut Client, q: &pb::QueryRequest, page_size: u32) -> Vec<u64> {
    let mut found = Vec::new();
    let mut token = String::new();
    loop {
        let mut request = q.clone();
        request.page = Some(pb::PageRequest {
            page_size,
            page_token: token.clone(),
        });
        let page = client.query(request).await.unwrap().into_inner();
        assert!(page.entries.len() <= page_size as usize);
        found.extend(page.entries.iter().map(|e| e.index));
        if page.next_page_token.is_empty() {
            return found;
        }
        token = page.next_page_token;
    }
}

fn filters() -> Vec<pb::QueryRequest> {
    let range = |from: i64, until: i64| {
        Some(pb::TimeRange {
            from: Some(prost_types::Timestamp {
                seconds: START + from,
                nanos: 0,
            }),
            until: Some(prost_types::Timestamp {
                seconds: START + until,
                nanos: 0,
            }),
        })
    };
    let mut filters = vec![pb::QueryRequest::default()];
    for org in ORGS {
        filters.push(pb::QueryRequest {
            organisation_id: org.into(),
            ..Default::default()
        });
    }
    for p in 0..7 {
        filters.push(pb::QueryRequest {
            person_id: format!("p-{p}"),
            ..Default::default()
        });
    }
    for d in 0..6 {
        filters.push(pb::QueryRequest {
            dossier_id: format!("dossier-{d}"),
            person_id: format!("p-{}", d % 7),
            ..Default::default()
        });
    }
    filters.extend([
        pb::QueryRequest {
            subject: "user-3".into(),
            organisation_id: "org-ggz".into(),
            ..Default::default()
        },
        pb::QueryRequest {
            dossier_id: "dossier-2".into(),
            actions: vec![pb::AuditAction::Contribute as i32],
            ..Default::default()
        },
        pb::QueryRequest {
            person_id: "p-1".into(),
            decisions: vec![pb::Decision::Denied as i32],
            ..Default::default()
        },
        pb::QueryRequest {
            dossier_id: "dossier-4".into(),
            time_range: range(20, 70),
            ..Default::default()
        },
        pb::QueryRequest {
            time_range: range(90, 95),
            ..Default::default()
        },
        pb::QueryRequest {
            person_id: "p-nobody".into(),
            ..Default::default()
        },
    ]);
    filters
}

/// A log of the first `count` [`varied`] entries, a second apart.
async fn varied_log(db_url: &str, count: u64) -> (TestAudit, Clock) {
    let clock = Clock::manual(START);
    let app = spawn_with(db_url, clock.clone()).await;
    let mut internal = app.internal();
    for n in 0..count {
        append(&mut internal, varied(n)).await;
        clock.advance(1);
    }
    (app, clock)
}

#[tokio::test]
async fn queries_over_sealed_and_open_segments_equal_a_full_filter() {
    for db in databases().await {
        let (app, _) = varied_log(db.url(), 123).await;
        assert_answers_equal_a_full_filter(&app).await;
    }
}

/// Every filter of [`filters`], for an all-seeing and an organisation-scoped
/// privacy officer, and subject reports, against a filter over every entry.
async fn assert_answers_equal_a_full_filter(app: &TestAudit) {
    let (mut all_seeing, mut caw) = (app.dpo_veilig_huis(), app.dpo_caw());
    for q in filters() {
        for (client, scope) in [(&mut all_seeing, None), (&mut caw, Some(CAW))] {
            // The queries are logged too: compare with the log as it is
            // just before each query.
            let log = app.audit.log().entries().await.unwrap();
            let expected: Vec<u64> = log
                .iter()
                .rev()
                .filter(|e| wanted(e, &q, scope))
                .map(|e| e.index)
                .collect();
            let found = all_pages(client, &q, 7).await;
            assert_eq!(found, expected, "{q:?} as {scope:?}");
        }
    }
    for persons in [vec!["p-3"], vec!["p-0", "p-5"], vec!["p-nobody"]] {
        let log = app.audit.log().entries().await.unwrap();
        let expected: Vec<u64> = log
            .iter()
            .filter(|e| {
                e.target
                    .as_ref()
                    .is_some_and(|t| t.person_ids.iter().any(|p| persons.contains(&p.as_str())))
                    && (!e.fields_released.is_empty() || !e.fields_contributed.is_empty())
            })
            .map(|e| e.index)
            .collect();
        let report = all_seeing
            .subject_report(pb::SubjectReportRequest {
                person_ids: persons.iter().map(|p| (*p).to_owned()).collect(),
                request_reference: "req-1".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let found: Vec<u64> = report.disclosures.iter().map(|d| d.audit_index).collect();
        assert_eq!(found, expected, "subject report of {persons:?}");
    }
}

/// Waits (bounded) until a restarted instance writes: on PostgreSQL it
/// waits for the old instance's writer lock to free.
async fn restarted(db_url: &str, clock: Clock) -> TestAudit {
    let app = spawn_with(db_url, clock).await;
    tokio::time::timeout(
        std::time::Duration::from_secs(60),
        app.audit.log().writing(),
    )
    .await
    .expect("the restarted instance writes");
    app
}

#[tokio::test]
async fn a_log_indexed_by_the_old_b_trees_is_migrated_and_sealed() {
    for db in databases().await {
        let (app, clock) = varied_log(db.url(), 37).await;
        // Put the database back as migration 0001 left it: the person index
        // table and the per-column indexes, no persons column, no postings.
        let pool = app.audit.log().database().pool().clone();
        sqlx::query(
            "CREATE TABLE entry_persons (person_id TEXT NOT NULL, idx BIGINT NOT NULL, \
             PRIMARY KEY (person_id, idx))",
        )
        .execute(&pool)
        .await
        .unwrap();
        let rows: Vec<(i64, String)> = sqlx::query_as("SELECT idx, persons FROM entries")
            .fetch_all(&pool)
            .await
            .unwrap();
        for (idx, persons) in rows {
            for person in persons.split(' ').filter(|p| !p.is_empty()) {
                sqlx::query("INSERT INTO entry_persons (person_id, idx) VALUES ($1, $2)")
                    .bind(person)
                    .bind(idx)
                    .execute(&pool)
                    .await
                    .unwrap();
            }
        }
        for sql in [
            "ALTER TABLE entries DROP COLUMN persons",
            "DROP TABLE postings",
            "DROP TABLE sealed_segments",
            "CREATE INDEX entries_by_actor_org ON entries (actor_org, idx)",
            "CREATE INDEX entries_by_target_org ON entries (target_org, idx)",
            "CREATE INDEX entries_by_subject ON entries (actor_subject, idx)",
            "CREATE INDEX entries_by_dossier ON entries (dossier_id, idx)",
            "DELETE FROM _sqlx_migrations WHERE version = 2",
        ] {
            sqlx::query(sql).execute(&pool).await.unwrap();
        }
        drop(pool);
        drop(app);

        // Started again: 0002 fills the persons column from entry_persons,
        // the writer seals the nine complete segments, the open one is scanned.
        let app = restarted(db.url(), clock).await;
        let sealed = schakel_audit::postings::sealed(app.audit.log().database().pool())
            .await
            .unwrap();
        assert_eq!(sealed, Some((9, 4)), "{}", db.label());
        assert_answers_equal_a_full_filter(&app).await;
    }
}

#[tokio::test]
async fn segments_are_sealed_as_they_complete_and_after_a_restart() {
    for db in databases().await {
        let app = spawn(db.url()).await;
        let mut internal = app.internal();
        for n in 0..10 {
            append(&mut internal, varied(n)).await;
        }
        let sealed = |app: &TestAudit| {
            let pool = app.audit.log().database().pool().clone();
            async move { schakel_audit::postings::sealed(&pool).await.unwrap() }
        };
        // 10 entries, segments of 4: two sealed, the third open.
        assert_eq!(sealed(&app).await, Some((2, 4)));
        // Forget the seals (as after a crash between commit and seal, or a
        // migration from the b-tree indexes): a restarted writer seals again.
        sqlx::query("DELETE FROM postings")
            .execute(app.audit.log().database().pool())
            .await
            .unwrap();
        sqlx::query("DELETE FROM sealed_segments")
            .execute(app.audit.log().database().pool())
            .await
            .unwrap();
        drop(app);
        let again = restarted(db.url(), Clock::System).await;
        assert_eq!(sealed(&again).await, Some((2, 4)));
        let by_dossier = again
            .dpo_veilig_huis()
            .query(pb::QueryRequest {
                dossier_id: "dossier-1".into(),
                ..Default::default()
            })
            .await
            .unwrap()
            .into_inner();
        let expected = (0..10)
            .rev()
            .filter(|n| varied(*n).target.unwrap().dossier_id == "dossier-1")
            .count();
        assert_eq!(by_dossier.entries.len(), expected);
    }
}

#[tokio::test]
async fn a_failing_seal_never_fails_an_append_and_is_retried() {
    for db in databases().await {
        let (app, clock) = varied_log(db.url(), 3).await;
        let pool = app.audit.log().database().pool().clone();
        sqlx::query("ALTER TABLE postings RENAME TO postings_away")
            .execute(&pool)
            .await
            .unwrap();
        // Segments 0 and 1 complete but cannot be sealed: appends go on.
        let mut internal = app.internal();
        for n in 3..10 {
            append(&mut internal, varied(n)).await;
            clock.advance(1);
        }
        let sealed = || schakel_audit::postings::sealed(&pool);
        assert_eq!(sealed().await.unwrap(), None, "{}", db.label());
        sqlx::query("ALTER TABLE postings_away RENAME TO postings")
            .execute(&pool)
            .await
            .unwrap();
        // The next commits (each query is appended) seal all complete ones.
        assert_answers_equal_a_full_filter(&app).await;
        let size = app.audit.log().checkpoint().await.unwrap().tree_size;
        let (count, segment) = sealed().await.unwrap().expect("sealed after the retry");
        // The writer seals after it has answered a commit: the newest
        // segment may still be under way.
        assert_eq!(segment, 4);
        assert!(
            count + 1 >= size / 4 && count <= size / 4,
            "{count} sealed of {size} entries on {}",
            db.label()
        );
    }
}
