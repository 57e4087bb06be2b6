//! What privacy officers ask of the log: `Query` and `SubjectReport` (GDPR
//! art. 15 with art. 23 restrictions). Both are themselves logged before their
//! answer is returned (fail closed).

use schakel_kit::{db::Backend, error};
use schakel_proto::v1 as pb;
use sqlx::Row;
use tonic::Status;

use crate::{
    AuditLog, entry,
    postings::{self, KeyGroups, Kind},
    reading::{BodyScope, Review},
    store,
};

const MAX_PAGE: u32 = 500;
const DEFAULT_PAGE: u32 = 50;

pub(crate) fn ts_secs(ts: Option<&prost_types::Timestamp>) -> Option<i64> {
    ts.map(|t| t.seconds)
}

pub(crate) fn check_code(field: &str, value: &str) -> Result<(), Status> {
    if entry::is_code(value) {
        Ok(())
    } else {
        Err(error::invalid_argument(field, "must be an id or code"))
    }
}

/// Builds the query SQL with all parameters as positional binds, in order.
enum Param {
    Text(String),
    Int(i64),
}

struct Sql {
    clauses: Vec<String>,
    params: Vec<Param>,
}

impl Sql {
    fn new() -> Self {
        Self {
            clauses: Vec::new(),
            params: Vec::new(),
        }
    }
    fn text(&mut self, clause: &str, value: &str) {
        self.params.push(Param::Text(value.to_owned()));
        self.clauses
            .push(clause.replace('?', &format!("${}", self.params.len())));
    }
    fn int(&mut self, clause: &str, value: i64) {
        self.params.push(Param::Int(value));
        self.clauses
            .push(clause.replace('?', &format!("${}", self.params.len())));
    }
    fn ints(&mut self, column: &str, values: &[i32]) {
        if values.is_empty() {
            return;
        }
        let mut marks = Vec::new();
        for v in values {
            self.params.push(Param::Int(i64::from(*v)));
            marks.push(format!("${}", self.params.len()));
        }
        self.clauses
            .push(format!("{column} IN ({})", marks.join(", ")));
    }
    /// The condition a key group stands for on `entries` columns.
    fn group(&mut self, backend: Backend, group: &[(Kind, String)]) {
        let alternatives: Vec<String> = group
            .iter()
            .map(|(kind, key)| {
                if *kind == Kind::Person {
                    self.params
                        .push(Param::Text(store::persons_column(std::slice::from_ref(
                            key,
                        ))));
                    let n = self.params.len();
                    match backend {
                        Backend::Sqlite => format!("instr(persons, ${n}) > 0"),
                        Backend::Postgres => format!("strpos(persons, ${n}) > 0"),
                    }
                } else {
                    self.params.push(Param::Text(key.clone()));
                    format!("{} = ${}", kind.column(), self.params.len())
                }
            })
            .collect();
        self.clauses
            .push(format!("({})", alternatives.join(" OR ")));
    }
    fn where_clause(&self) -> String {
        if self.clauses.is_empty() {
            "1 = 1".into()
        } else {
            self.clauses.join(" AND ")
        }
    }
    async fn bodies(&self, log: &AuditLog, sql: &str) -> Result<Vec<(u64, Vec<u8>)>, Status> {
        let mut query = sqlx::query(sql);
        for p in &self.params {
            query = match p {
                Param::Text(t) => query.bind(t.clone()),
                Param::Int(i) => query.bind(*i),
            };
        }
        let rows = query
            .fetch_all(log.database().pool())
            .await
            .map_err(|e| error::internal(&e.into()))?;
        rows.iter()
            .map(|r| {
                let idx: i64 = r.try_get("idx").map_err(|e| error::internal(&e.into()))?;
                let body: Vec<u8> = r.try_get("body").map_err(|e| error::internal(&e.into()))?;
                Ok((idx as u64, body))
            })
            .collect()
    }
}

/// What a query asks for: key groups (answered from the postings of sealed
/// segments, or by the same conditions on the open segment) and conditions
/// on other columns.
pub(crate) struct Filter {
    pub(crate) groups: KeyGroups,
    columns: Sql,
    /// Only entries at or after this time (seconds), if set.
    from: Option<i64>,
}

impl Filter {
    pub(crate) fn new() -> Self {
        Self {
            groups: Vec::new(),
            columns: Sql::new(),
            from: None,
        }
    }

    pub(crate) fn time_range(&mut self, range: Option<&pb::TimeRange>) {
        if let Some(range) = range {
            if let Some(from) = ts_secs(range.from.as_ref()) {
                self.columns.int("time >= ?", from);
                self.from = Some(from);
            }
            if let Some(until) = ts_secs(range.until.as_ref()) {
                self.columns.int("time <= ?", until);
            }
        }
    }

    /// Matching entries below index `before`, newest first, at most `limit`.
    pub(crate) async fn newest(
        mut self,
        log: &AuditLog,
        before: u64,
        limit: Option<usize>,
    ) -> Result<Vec<(u64, Vec<u8>)>, Status> {
        let internal = |e: anyhow::Error| error::internal(&e);
        let pool = log.database().pool();
        let backend = log.database().backend();
        for group in &self.groups {
            self.columns.group(backend, group);
        }
        let conditions = self.columns.where_clause();
        let cap = limit.map_or(String::new(), |n| format!(" LIMIT {n}"));
        if self.groups.is_empty() {
            let sql = format!(
                "SELECT idx, body FROM entries WHERE {conditions} AND idx < {before} ORDER BY idx DESC{cap}"
            );
            return self.columns.bodies(log, &sql).await;
        }
        // The open segment (and any not sealed yet): scanned.
        let (sealed_end, segment_size) = postings::sealed_end(pool)
            .await
            .map_err(|e| internal(e.into()))?;
        let sql = format!(
            "SELECT idx, body FROM entries WHERE {conditions} AND idx >= {sealed_end} AND idx < {before} \
             ORDER BY idx DESC{cap}"
        );
        let mut rows = self.columns.bodies(log, &sql).await?;
        let full = |rows: &Vec<(u64, Vec<u8>)>| limit.is_some_and(|n| rows.len() >= n);
        // Sealed segments, newest first, from their posting lists.
        let top = before.min(sealed_end);
        let lowest = match self.from {
            Some(from) => sqlx::query_scalar::<_, Option<i64>>(
                "SELECT MIN(idx) FROM entries WHERE time >= $1",
            )
            .bind(from)
            .fetch_one(pool)
            .await
            .map_err(|e| internal(e.into()))?
            .map_or(top, |i| i as u64),
            None => 0,
        };
        let mut segment = top.div_ceil(segment_size);
        while !full(&rows) && segment > 0 && segment * segment_size > lowest {
            segment -= 1;
            let mut found = postings::candidates(pool, segment, segment_size, &self.groups)
                .await
                .map_err(internal)?;
            found.retain(|i| (lowest..top).contains(i));
            for chunk in found.rchunks(MAX_PAGE as usize) {
                let list: Vec<String> = chunk.iter().map(u64::to_string).collect();
                let sql = format!(
                    "SELECT idx, body FROM entries WHERE {conditions} AND idx IN ({}) ORDER BY idx DESC",
                    list.join(", ")
                );
                rows.extend(self.columns.bodies(log, &sql).await?);
                if full(&rows) {
                    break;
                }
            }
        }
        if let Some(n) = limit {
            rows.truncate(n);
        }
        Ok(rows)
    }
}

/// The distinct values of an enum filter, each a known value: at most as
/// many as the enum has, whatever the request repeats (one bind variable
/// each; 100,000 used to fail INTERNAL with too many SQL variables).
fn known(
    field: &'static str,
    values: &[i32],
    ok: impl Fn(i32) -> bool,
) -> Result<Vec<i32>, Status> {
    if let Some(bad) = values.iter().find(|v| !ok(**v)) {
        return Err(error::invalid_argument(
            field,
            format!("{bad} is not a known value"),
        ));
    }
    let mut distinct = values.to_vec();
    distinct.sort_unstable();
    distinct.dedup();
    Ok(distinct)
}

/// `Query`: entries matching the filters, newest first, within what the
/// caller's organisation may see.
pub(crate) async fn query(
    review: Review<'_>,
    req: pb::QueryRequest,
) -> Result<pb::QueryResponse, Status> {
    let log = review.log();
    for (field, value) in [
        ("organisation_id", &req.organisation_id),
        ("subject", &req.subject),
        ("dossier_id", &req.dossier_id),
        ("person_id", &req.person_id),
        ("purpose", &req.purpose),
        ("trace_id", &req.trace_id),
    ] {
        check_code(field, value)?;
    }
    let mut filter = Filter::new();
    if let BodyScope::Organisation(org) = review.scope() {
        filter.groups.push(vec![
            (Kind::ActorOrganisation, org.clone()),
            (Kind::TargetOrganisation, org.clone()),
        ]);
    }
    for (kind, value) in [
        (Kind::ActorOrganisation, &req.organisation_id),
        (Kind::Subject, &req.subject),
        (Kind::Dossier, &req.dossier_id),
        (Kind::Person, &req.person_id),
    ] {
        if !value.is_empty() {
            filter.groups.push(vec![(kind, value.clone())]);
        }
    }
    if !req.purpose.is_empty() {
        filter.columns.text("purpose = ?", &req.purpose);
    }
    if !req.trace_id.is_empty() {
        filter.columns.text("trace_id = ?", &req.trace_id);
    }
    let actions = known("actions", &req.actions, |v| {
        pb::AuditAction::try_from(v).is_ok_and(|a| a != pb::AuditAction::Unspecified)
    })?;
    let decisions = known("decisions", &req.decisions, |v| {
        pb::Decision::try_from(v).is_ok_and(|d| d != pb::Decision::Unspecified)
    })?;
    filter.columns.ints("action", &actions);
    filter.columns.ints("decision", &decisions);
    filter.time_range(req.time_range.as_ref());
    let (size, token) = req
        .page
        .as_ref()
        .map_or((0, ""), |p| (p.page_size, p.page_token.as_str()));
    let size = match size {
        0 => DEFAULT_PAGE,
        s if s <= MAX_PAGE => s,
        _ => {
            return Err(error::invalid_argument(
                "page.page_size",
                format!("must be at most {MAX_PAGE}"),
            ));
        }
    };
    let before = if token.is_empty() {
        i64::MAX as u64
    } else {
        token.parse::<u64>().map_err(|_| {
            error::invalid_argument("page.page_token", "not a page token of this service")
        })?
    };
    let mut rows = filter.newest(log, before, Some(size as usize + 1)).await?;
    let next_page_token = if rows.len() > size as usize {
        rows.truncate(size as usize);
        rows.last().map(|(i, _)| i.to_string()).unwrap_or_default()
    } else {
        String::new()
    };
    let entries = rows
        .iter()
        .map(|(_, body)| entry::decode(body).map_err(|e| error::internal(&e)))
        .collect::<Result<Vec<_>, _>>()?;

    let mut record = review.entry(pb::AuditAction::AuditQuery);
    record.target = Some(pb::AuditTarget {
        dossier_id: req.dossier_id.clone(),
        person_ids: if req.person_id.is_empty() {
            vec![]
        } else {
            vec![req.person_id.clone()]
        },
        organisation_id: req.organisation_id.clone(),
        resource_id: String::new(),
    });
    record.purpose = req.purpose.clone();
    record.attributes.push(pb::AuditAttribute {
        key: "results".into(),
        value: entries.len().to_string(),
    });
    let audit_index = review.record(record).await?;
    Ok(pb::QueryResponse {
        entries,
        next_page_token,
        audit_index,
    })
}
