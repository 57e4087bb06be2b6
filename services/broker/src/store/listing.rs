//! The pages of ListDossiers and ListInformationRequests: every filter in
//! SQL, before the limit, newest first, resumed from a keyset cursor
//! (`<seconds>:<id>` of the last row seen), so that no filtered page is lost.

use sqlx::AnyPool;

use super::{DOSSIER_COLUMNS, DossierRow, RequestRow, dossier_from_row, request_from_row};

/// Where a page starts: after (time, id) in newest-first order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cursor {
    /// Seconds of the last row seen (`i64::MAX` for the first page).
    pub at: i64,
    /// Id of the last row seen.
    pub id: String,
}

impl Cursor {
    /// The start of the first page.
    pub fn first() -> Self {
        Cursor {
            at: i64::MAX,
            id: String::new(),
        }
    }

    /// Parses a page token of this service; `None` if it is not one.
    pub fn parse(token: &str) -> Option<Self> {
        if token.is_empty() {
            return Some(Self::first());
        }
        let (at, id) = token.split_once(':')?;
        let id = uuid::Uuid::parse_str(id).ok()?.to_string();
        Some(Cursor {
            at: at.parse().ok()?,
            id,
        })
    }

    /// The size and start of a requested page (INVALID_ARGUMENT for a size
    /// past 500 or a token this service did not give).
    pub fn page(
        page: Option<&schakel_proto::v1::PageRequest>,
    ) -> Result<(i64, Cursor), schakel_kit::validate::Invalid> {
        let (limit, token) = schakel_kit::validate::page(page)?;
        let cursor = Cursor::parse(&token).ok_or_else(|| {
            schakel_kit::validate::Invalid::new(
                "page.page_token",
                "not a page token of this service",
            )
        })?;
        Ok((limit, cursor))
    }

    /// The page token that resumes after (at, id).
    pub fn token(at: i64, id: &str) -> String {
        format!("{at}:{id}")
    }
}

/// `AND <column> IN (...)` for validated enum values (integers, never text).
fn any_of(column: &str, values: &[i32]) -> String {
    if values.is_empty() {
        return String::new();
    }
    let list: Vec<String> = values.iter().map(i32::to_string).collect();
    format!(" AND {column} IN ({})", list.join(", "))
}

/// What ListDossiers filters on (all of them, AND).
#[derive(Clone, Debug, Default)]
pub struct DossierFilter {
    /// The caller's organisation: only dossiers in its circle.
    pub organisation_id: String,
    /// Phases (proto values, validated); empty = any.
    pub phases: Vec<i32>,
    /// Decided tracks (proto values, validated); empty = any.
    pub tracks: Vec<i32>,
    /// District code; empty = any.
    pub district: String,
    /// Only dossiers with this casusregisseur; empty = any.
    pub case_director: String,
    /// Registered in [from, until).
    pub registered_from: i64,
    /// See `registered_from`.
    pub registered_until: i64,
    /// Only dossiers in case_direction whose track review was due by then.
    pub review_overdue_at: Option<i64>,
    /// Only open dossiers with a deferred informing to review by then.
    pub informing_overdue_at: Option<i64>,
}

/// The SQL conditions of the overdue filters (numbers only, no input text).
fn overdue(filter: &DossierFilter) -> String {
    use schakel_proto::v1::Phase;
    let mut sql = String::new();
    if let Some(at) = filter.review_overdue_at {
        let phase = Phase::CaseDirection as i32;
        sql += &format!(" AND d.phase = {phase} AND d.review_due_at <= {at}");
    }
    if let Some(at) = filter.informing_overdue_at {
        let (closed, not_retained) = (Phase::Closed as i32, Phase::NotRetained as i32);
        sql += &format!(
            " AND d.informing_review_at <= {at} AND d.phase NOT IN ({closed}, {not_retained})"
        );
    }
    sql
}

/// At most `limit` dossiers (not erased) after `cursor` matching `filter`,
/// newest registration first.
pub async fn dossier_page(
    pool: &AnyPool,
    filter: &DossierFilter,
    cursor: &Cursor,
    limit: i64,
) -> anyhow::Result<Vec<DossierRow>> {
    let sql = format!(
        "SELECT {DOSSIER_COLUMNS} FROM dossiers d WHERE d.wrapped_key IS NOT NULL \
         AND EXISTS (SELECT 1 FROM participants p WHERE p.dossier_id = d.dossier_id \
         AND p.organisation_id = $1) \
         AND ($2 = '' OR d.district = $2) AND ($3 = '' OR d.case_director_user = $3) \
         AND d.registered_at >= $4 AND d.registered_at < $5 \
         AND (d.registered_at < $6 OR (d.registered_at = $6 AND d.dossier_id < $7)){}{}{} \
         ORDER BY d.registered_at DESC, d.dossier_id DESC LIMIT $8",
        any_of("d.phase", &filter.phases),
        any_of("d.track", &filter.tracks),
        overdue(filter),
    );
    let rows = sqlx::query(&sql)
        .bind(&filter.organisation_id)
        .bind(&filter.district)
        .bind(&filter.case_director)
        .bind(filter.registered_from)
        .bind(filter.registered_until)
        .bind(cursor.at)
        .bind(&cursor.id)
        .bind(limit)
        .fetch_all(pool)
        .await?;
    rows.iter().map(dossier_from_row).collect()
}

/// What ListInformationRequests filters on (all of them, AND).
#[derive(Clone, Debug, Default)]
pub struct RequestFilter {
    /// The caller's organisation: requests it sent or received, of dossiers
    /// (not erased) whose circle it is in.
    pub organisation_id: String,
    /// Requests addressed to it.
    pub inbox: bool,
    /// Requests it sent.
    pub outbox: bool,
    /// One dossier; empty = any.
    pub dossier_id: String,
    /// Statuses (proto values, validated); empty = any.
    pub statuses: Vec<i32>,
    /// Only open requests due at or before this moment; `None` = any.
    pub overdue_at: Option<i64>,
}

/// At most `limit` requests after `cursor` matching `filter`, newest first.
pub async fn request_page(
    pool: &AnyPool,
    filter: &RequestFilter,
    cursor: &Cursor,
    limit: i64,
) -> anyhow::Result<Vec<RequestRow>> {
    let sql = format!(
        "SELECT r.request_id, r.dossier_id, r.from_org, r.to_org, r.status, r.due_at, \
         r.created_at, r.sealed FROM information_requests r \
         JOIN dossiers d ON d.dossier_id = r.dossier_id AND d.wrapped_key IS NOT NULL \
         WHERE (($1 = 1 AND r.to_org = $2) OR ($3 = 1 AND r.from_org = $2)) \
         AND EXISTS (SELECT 1 FROM participants p WHERE p.dossier_id = r.dossier_id \
         AND p.organisation_id = $2) \
         AND ($4 = '' OR r.dossier_id = $4) \
         AND ($5 = 0 OR (r.status = 1 AND r.due_at <= $6)) \
         AND (r.created_at < $7 OR (r.created_at = $7 AND r.request_id < $8)){} \
         ORDER BY r.created_at DESC, r.request_id DESC LIMIT $9",
        any_of("r.status", &filter.statuses),
    );
    let rows = sqlx::query(&sql)
        .bind(i64::from(filter.inbox))
        .bind(&filter.organisation_id)
        .bind(i64::from(filter.outbox))
        .bind(&filter.dossier_id)
        .bind(i64::from(filter.overdue_at.is_some()))
        .bind(filter.overdue_at.unwrap_or(0))
        .bind(cursor.at)
        .bind(&cursor.id)
        .bind(limit)
        .fetch_all(pool)
        .await?;
    rows.iter().map(request_from_row).collect()
}

/// The paging of a list whose rows pass gates after the SQL filters: rows
/// are fetched after the cursor in batches of `limit + 1` until `limit` are
/// kept or the rows run out, so a row left out (no basis now) never shortens
/// a page or ends the paging early.
#[derive(Debug)]
pub struct Pager {
    limit: i64,
    cursor: Cursor,
    exhausted: bool,
    more: bool,
}

impl Pager {
    /// Pages of `limit` from `cursor`.
    pub fn new(limit: i64, cursor: Cursor) -> Self {
        Pager {
            limit,
            cursor,
            exhausted: false,
            more: false,
        }
    }

    /// Where the next batch starts, or `None` when the page is done.
    pub fn next(&self) -> Option<Cursor> {
        (!self.exhausted && !self.more).then(|| self.cursor.clone())
    }

    /// Takes in a fetched batch (of at most `limit + 1` rows).
    pub fn batch<R>(&mut self, rows: Vec<R>) -> Vec<R> {
        self.exhausted = rows.len() as i64 <= self.limit;
        rows
    }

    /// Whether a row at `at` still fits beside `kept` items; when it does not,
    /// the page is full and more rows follow.
    pub fn fits(&mut self, kept: usize, at: Cursor) -> bool {
        if kept as i64 >= self.limit {
            self.more = true;
            return false;
        }
        self.cursor = at;
        true
    }

    /// Whether rows follow the page.
    pub fn more(&self) -> bool {
        self.more
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(n: i64) -> Cursor {
        Cursor {
            at: n,
            id: uuid::Uuid::nil().to_string(),
        }
    }

    /// Rows 10, 9, ... of which only even ones are kept, two per page.
    fn page(from: Cursor, rows: &[i64]) -> (Vec<i64>, bool, Cursor) {
        let mut pager = Pager::new(2, from);
        let mut kept = Vec::new();
        let mut last = Cursor::first();
        while let Some(start) = pager.next() {
            let batch: Vec<i64> = rows
                .iter()
                .copied()
                .filter(|r| *r < start.at)
                .take(3)
                .collect();
            for row in pager.batch(batch) {
                if !pager.fits(kept.len(), at(row)) {
                    break;
                }
                if row % 2 == 0 {
                    kept.push(row);
                    last = at(row);
                }
            }
        }
        (kept, pager.more(), last)
    }

    #[test]
    fn rows_left_out_neither_shorten_a_page_nor_end_the_paging() {
        let rows: Vec<i64> = (1..=10).rev().collect();
        let (first, more, last) = page(Cursor::first(), &rows);
        assert_eq!((first, more), (vec![10, 8], true));
        let (second, more, last) = page(last, &rows);
        assert_eq!((second, more), (vec![6, 4], true));
        let (third, more, _) = page(last, &rows);
        assert_eq!((third, more), (vec![2], false), "the last page says so");
    }

    #[test]
    fn page_tokens_round_trip_and_foreign_ones_are_refused() {
        let id = uuid::Uuid::new_v4().to_string();
        let token = Cursor::token(1_767_571_200, &id);
        assert_eq!(
            Cursor::parse(&token),
            Some(Cursor {
                at: 1_767_571_200,
                id
            })
        );
        assert_eq!(Cursor::parse(""), Some(Cursor::first()));
        for bad in ["17", "x:y", "1:not-a-uuid", "1:' OR 1=1 --"] {
            assert_eq!(Cursor::parse(bad), None, "{bad}");
        }
    }
}
