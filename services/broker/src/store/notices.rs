//! Notices for WatchEvents (metadata only), and the dates the sweep looks
//! for: requests due soon or overdue, track reviews, follow-up checks and
//! informing deferrals whose review date came.

use schakel_kit::db::Backend;
use sqlx::{AnyConnection, AnyPool, Row, any::AnyRow};

/// One notice.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Notice {
    /// Position in the feed (0 before it is stored).
    pub seq: i64,
    /// The dossier.
    pub dossier_id: String,
    /// BrokerEventKind.
    pub kind: i32,
    /// "" for the whole circle, else one organisation id.
    pub audience: String,
    /// For request notices.
    pub request_id: String,
    /// For a phase change: the new phase.
    pub phase: i32,
    /// The date that came, or the request's due date.
    pub due_at: Option<i64>,
    /// When it was raised.
    pub at: i64,
    /// For notices the clock brings: raised once per key.
    pub once_key: Option<String>,
}

/// The advisory lock every PostgreSQL transaction writing notices takes, so
/// that `seq` follows commit order and a follower never skips one.
const NOTICE_LOCK: i64 = 0x5343_4841_4b45_4c02;

/// Writes notices in the caller's transaction (a keyed notice raised before
/// is left as it was). How many were new.
pub async fn insert_notices(
    conn: &mut AnyConnection,
    backend: Backend,
    notices: &[Notice],
) -> anyhow::Result<u64> {
    if notices.is_empty() {
        return Ok(0);
    }
    if backend == Backend::Postgres {
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(NOTICE_LOCK)
            .execute(&mut *conn)
            .await?;
    }
    let mut new = 0;
    for n in notices {
        let done = sqlx::query(
            "INSERT INTO notices (dossier_id, kind, audience, request_id, phase, due_at, at, \
             once_key) VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (once_key) DO NOTHING",
        )
        .bind(&n.dossier_id)
        .bind(i64::from(n.kind))
        .bind(&n.audience)
        .bind(&n.request_id)
        .bind(i64::from(n.phase))
        .bind(n.due_at)
        .bind(n.at)
        .bind(n.once_key.as_deref())
        .execute(&mut *conn)
        .await?;
        new += done.rows_affected();
    }
    Ok(new)
}

fn notice_from_row(r: &AnyRow) -> anyhow::Result<Notice> {
    Ok(Notice {
        seq: r.try_get("seq")?,
        dossier_id: r.try_get("dossier_id")?,
        kind: i32::try_from(r.try_get::<i64, _>("kind")?)?,
        audience: r.try_get("audience")?,
        request_id: r.try_get("request_id")?,
        phase: i32::try_from(r.try_get::<i64, _>("phase")?)?,
        due_at: r.try_get("due_at")?,
        at: r.try_get("at")?,
        once_key: r.try_get("once_key")?,
    })
}

/// The notices after `after` for organisation `org` (addressed to it or to
/// the whole circle of a dossier it is in now), oldest first.
pub async fn notices_after(
    pool: &AnyPool,
    org: &str,
    after: i64,
    dossier_id: Option<&str>,
    limit: i64,
) -> anyhow::Result<Vec<Notice>> {
    let rows = sqlx::query(
        "SELECT n.seq, n.dossier_id, n.kind, n.audience, n.request_id, n.phase, n.due_at, n.at, \
         n.once_key FROM notices n JOIN participants p \
         ON p.dossier_id = n.dossier_id AND p.organisation_id = $1 \
         WHERE n.seq > $2 AND (n.audience = '' OR n.audience = $1) \
         AND ($3 = '' OR n.dossier_id = $3) ORDER BY n.seq LIMIT $4",
    )
    .bind(org)
    .bind(after)
    .bind(dossier_id.unwrap_or_default())
    .bind(limit)
    .fetch_all(pool)
    .await?;
    rows.iter().map(notice_from_row).collect()
}

/// An open request with a due date before `before`: (request, dossier,
/// sender, addressee, due, the case director's organisation).
#[derive(Clone, Debug, PartialEq)]
pub struct DueRequest {
    /// Id.
    pub request_id: String,
    /// Dossier.
    pub dossier_id: String,
    /// Sender.
    pub from_org: String,
    /// Addressee.
    pub to_org: String,
    /// Due.
    pub due_at: i64,
    /// The casusregisseur's organisation, if one is appointed.
    pub director_org: Option<String>,
}

/// Where to look: one district, and the requests one organisation sent or
/// received, or the dossiers in its circle (None: everywhere); for the
/// sweep, only what it has not raised a notice for at `unnoticed_at` yet.
/// Dossiers in a final phase are never looked at.
#[derive(Clone, Copy, Debug, Default)]
pub struct Within<'a> {
    /// Judicial district.
    pub district: Option<&'a str>,
    /// Organisation.
    pub org: Option<&'a str>,
    /// The sweep's moment: leave out what already has its notice.
    pub unnoticed_at: Option<i64>,
}

/// Rows one look returns at most (the sweep takes the rest next time).
pub const LOOK_LIMIT: i64 = 1000;

/// The SQL condition of a dossier `d` not in a final phase.
fn open_phase() -> String {
    use schakel_proto::v1::Phase;
    let (closed, not_retained) = (Phase::Closed as i32, Phase::NotRetained as i32);
    format!("d.phase NOT IN ({closed}, {not_retained})")
}

/// Open requests of readable dossiers due before `before`, oldest due first.
pub async fn open_requests_due(
    conn: &mut AnyConnection,
    before: i64,
    within: Within<'_>,
) -> anyhow::Result<Vec<DueRequest>> {
    use schakel_proto::v1::BrokerEventKind as K;
    let (soon, overdue) = (K::RequestDueSoon as i32, K::RequestOverdue as i32);
    let escalated = K::RequestEscalated as i32;
    let raised = |kind: i32| {
        format!(
            "EXISTS (SELECT 1 FROM notices n WHERE n.request_id = r.request_id AND n.kind = {kind})"
        )
    };
    // For the sweep: due soon without its reminder, or overdue without its
    // notices or (a casusregisseur appointed since) its escalation.
    let unnoticed = format!(
        "(r.due_at > $6 AND NOT {}) OR (r.due_at <= $6 AND (NOT {} \
         OR (d.case_director_org IS NOT NULL AND NOT {})))",
        raised(soon),
        raised(overdue),
        raised(escalated)
    );
    let rows = sqlx::query(&format!(
        "SELECT r.request_id, r.dossier_id, r.from_org, r.to_org, r.due_at, \
         d.case_director_org FROM information_requests r \
         JOIN dossiers d ON d.dossier_id = r.dossier_id \
         WHERE r.status = $1 AND r.due_at < $2 AND d.wrapped_key IS NOT NULL AND {} \
         AND ($3 = '' OR d.district = $3) AND ($4 = '' OR r.from_org = $4 OR r.to_org = $4) \
         AND ($5 = 0 OR {unnoticed}) \
         ORDER BY r.due_at, r.request_id LIMIT $7",
        open_phase()
    ))
    .bind(i64::from(
        schakel_proto::v1::InformationRequestStatus::Open as i32,
    ))
    .bind(before)
    .bind(within.district.unwrap_or_default())
    .bind(within.org.unwrap_or_default())
    .bind(i64::from(within.unnoticed_at.is_some()))
    .bind(within.unnoticed_at.unwrap_or_default())
    .bind(LOOK_LIMIT)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(DueRequest {
                request_id: r.try_get("request_id")?,
                dossier_id: r.try_get("dossier_id")?,
                from_org: r.try_get("from_org")?,
                to_org: r.try_get("to_org")?,
                due_at: r.try_get("due_at")?,
                director_org: r.try_get("case_director_org")?,
            })
        })
        .collect()
}

/// Which date of a dossier came.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DueDate {
    /// The track review (phase case_direction).
    Review,
    /// The follow-up check (phase follow_up).
    FollowUpCheck,
    /// A deferred informing's review (any phase but the final ones).
    InformingReview,
}

impl DueDate {
    /// The prefix of its notices' once keys ("{label}:{dossier}:{date}").
    pub fn label(self) -> &'static str {
        match self {
            DueDate::Review => "review",
            DueDate::FollowUpCheck => "follow_up",
            DueDate::InformingReview => "informing",
        }
    }

    fn column(self) -> &'static str {
        match self {
            DueDate::Review => "review_due_at",
            DueDate::FollowUpCheck => "follow_up_check_at",
            DueDate::InformingReview => "informing_review_at",
        }
    }

    fn phases(self) -> &'static [schakel_proto::v1::Phase] {
        use schakel_proto::v1::Phase;
        match self {
            DueDate::Review => &[Phase::CaseDirection],
            DueDate::FollowUpCheck => &[Phase::FollowUp],
            DueDate::InformingReview => &[
                Phase::Registration,
                Phase::CaseBuilding,
                Phase::Assessment,
                Phase::CaseDirection,
                Phase::FollowUp,
            ],
        }
    }
}

/// Readable dossiers (`within`) whose `date` falls before `before`:
/// (dossier id, the date).
pub async fn dates_due(
    conn: &mut AnyConnection,
    date: DueDate,
    before: i64,
    within: Within<'_>,
) -> anyhow::Result<Vec<(String, i64)>> {
    let column = date.column();
    let phases = date
        .phases()
        .iter()
        .map(|p| (*p as i32).to_string())
        .collect::<Vec<_>>()
        .join(", ");
    let label = date.label();
    let rows = sqlx::query(&format!(
        "SELECT dossier_id, {column} AS due FROM dossiers WHERE {column} < $1 \
         AND phase IN ({phases}) AND wrapped_key IS NOT NULL AND ($2 = '' OR district = $2) \
         AND ({IN_CIRCLE}) AND ($4 = 0 OR NOT EXISTS (SELECT 1 FROM notices n \
         WHERE n.once_key = '{label}:' || dossier_id || ':' || CAST({column} AS TEXT))) \
         ORDER BY {column}, dossier_id LIMIT $5"
    ))
    .bind(before)
    .bind(within.district.unwrap_or_default())
    .bind(within.org.unwrap_or_default())
    .bind(i64::from(within.unnoticed_at.is_some()))
    .bind(LOOK_LIMIT)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| Ok((r.try_get("dossier_id")?, r.try_get("due")?)))
        .collect()
}

/// The dossiers in organisation $3's circle (all when $3 is '').
const IN_CIRCLE: &str = "$3 = '' OR dossier_id IN \
     (SELECT dossier_id FROM participants WHERE organisation_id = $3)";

/// Readable dossiers (`within`) still in registration (awaiting triage),
/// oldest first.
pub async fn awaiting_triage(
    conn: &mut AnyConnection,
    within: Within<'_>,
) -> anyhow::Result<Vec<String>> {
    let rows = sqlx::query(&format!(
        "SELECT dossier_id FROM dossiers WHERE ($1 = '' OR district = $1) AND phase = $2 \
         AND wrapped_key IS NOT NULL AND ({IN_CIRCLE}) ORDER BY registered_at, dossier_id"
    ))
    .bind(within.district.unwrap_or_default())
    .bind(i64::from(schakel_proto::v1::Phase::Registration as i32))
    .bind(within.org.unwrap_or_default())
    .fetch_all(&mut *conn)
    .await?;
    rows.iter().map(|r| Ok(r.try_get("dossier_id")?)).collect()
}

/// Sets the next track review (RecordReview).
pub async fn set_review_due(
    conn: &mut AnyConnection,
    dossier_id: &str,
    due: i64,
) -> anyhow::Result<()> {
    sqlx::query("UPDATE dossiers SET review_due_at = $1 WHERE dossier_id = $2")
        .bind(due)
        .bind(dossier_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Sets the earliest review date of a deferred informing (None: none).
pub async fn set_informing_review(
    pool: &AnyPool,
    dossier_id: &str,
    at: Option<i64>,
) -> anyhow::Result<()> {
    sqlx::query("UPDATE dossiers SET informing_review_at = $1 WHERE dossier_id = $2")
        .bind(at)
        .bind(dossier_id)
        .execute(pool)
        .await?;
    Ok(())
}
