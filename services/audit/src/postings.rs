//! The query index: posting lists per sealed segment.
//!
//! A b-tree index per query column puts every new entry on a random page of
//! each index, so a group commit writes several pages per entry; with entries
//! spread over thousands of dossiers and persons that page traffic, not the
//! log itself, limited durable appends. Instead the log is cut into segments
//! of `segment_size` consecutive entries. When a segment is complete the
//! writer *seals* it: for every acting organisation, target organisation,
//! acting subject, dossier and person in it, one row holds the sorted offsets
//! of its entries. Rows are keyed by segment first, so a seal appends at the
//! end of the table. A query probes each sealed segment for its keys (newest
//! segment first, stopping when the page is full) and scans the open segment,
//! whose entries carry the same columns.

use std::collections::{BTreeMap, HashMap};

use schakel_kit::db::Backend;
use sqlx::{AnyConnection, AnyPool, Connection, Row};

use crate::store::Writes;

/// What a posting list is keyed on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Kind {
    /// The organisation that acted.
    ActorOrganisation,
    /// The organisation acted on.
    TargetOrganisation,
    /// The acting subject (user or service account).
    Subject,
    /// The dossier.
    Dossier,
    /// A pseudonymous person.
    Person,
}

impl Kind {
    /// Every kind, in declaration order (`kind as usize` indexes it).
    pub const ALL: [Kind; 5] = [
        Kind::ActorOrganisation,
        Kind::TargetOrganisation,
        Kind::Subject,
        Kind::Dossier,
        Kind::Person,
    ];

    /// The stored code.
    pub fn code(self) -> &'static str {
        match self {
            Kind::ActorOrganisation => "o",
            Kind::TargetOrganisation => "t",
            Kind::Subject => "u",
            Kind::Dossier => "d",
            Kind::Person => "p",
        }
    }

    /// The `entries` column a condition on this kind tests (persons: see
    /// [`crate::store::persons_column`]).
    pub fn column(self) -> &'static str {
        match self {
            Kind::ActorOrganisation => "actor_org",
            Kind::TargetOrganisation => "target_org",
            Kind::Subject => "actor_subject",
            Kind::Dossier => "dossier_id",
            Kind::Person => "persons",
        }
    }
}

/// One stored posting list.
#[derive(Debug)]
pub struct Posting {
    /// What it is keyed on.
    pub kind: Kind,
    /// The key.
    pub key: String,
    /// The offsets in the segment, encoded by [`encode`].
    pub idxs: Vec<u8>,
}

/// Ascending offsets as LEB128 varints of their differences.
pub fn encode(offsets: &[u64]) -> Vec<u8> {
    let mut out = Vec::with_capacity(offsets.len() * 2);
    let mut previous = 0;
    for &offset in offsets {
        let mut delta = offset - previous;
        previous = offset;
        loop {
            let byte = (delta & 0x7f) as u8;
            delta >>= 7;
            if delta == 0 {
                out.push(byte);
                break;
            }
            out.push(byte | 0x80);
        }
    }
    out
}

/// The offsets [`encode`] wrote; an error for malformed bytes.
pub fn decode(bytes: &[u8]) -> anyhow::Result<Vec<u64>> {
    let mut out = Vec::new();
    let (mut value, mut shift, mut previous) = (0u64, 0u32, 0u64);
    for &byte in bytes {
        anyhow::ensure!(shift < 64, "posting list: varint too long");
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            previous = previous
                .checked_add(value)
                .ok_or_else(|| anyhow::anyhow!("posting list: offset overflows"))?;
            out.push(previous);
            value = 0;
            shift = 0;
        } else {
            shift += 7;
        }
    }
    anyhow::ensure!(shift == 0, "posting list: truncated varint");
    Ok(out)
}

/// The segments sealed so far and their size, if any was sealed (segments
/// are sealed in order, so the newest seal tells both).
pub async fn sealed(pool: &AnyPool) -> sqlx::Result<Option<(u64, u64)>> {
    let newest = sqlx::query(
        "SELECT segment, segment_size FROM sealed_segments ORDER BY segment DESC LIMIT 1",
    )
    .fetch_optional(pool)
    .await?;
    newest
        .map(|row| {
            let segment: i64 = row.try_get("segment")?;
            let size: i64 = row.try_get("segment_size")?;
            Ok(((segment + 1) as u64, size as u64))
        })
        .transpose()
}

/// The first index not covered by sealed postings.
pub async fn sealed_end(pool: &AnyPool) -> sqlx::Result<(u64, u64)> {
    Ok(match sealed(pool).await? {
        Some((count, size)) => (count * size, size),
        None => (0, 1),
    })
}

/// The posting lists of one segment as they grow: the writer adds each entry
/// once it is committed, and stores the lists when the segment is complete.
#[derive(Debug, Default)]
pub struct Lists {
    /// By kind (in [`Kind::ALL`] order), then key.
    lists: [HashMap<String, Vec<u64>>; 5],
}

impl Lists {
    /// Adds the entry at `offset` in the segment (offsets only grow) with its
    /// query columns; `persons` as in [`crate::store::persons_column`].
    pub fn add(&mut self, offset: u64, keys: [(Kind, &str); 4], persons: &str) {
        let people = persons.split(' ').map(|p| (Kind::Person, p));
        for (kind, key) in keys.into_iter().chain(people) {
            if key.is_empty() {
                continue;
            }
            let by_key = &mut self.lists[kind as usize];
            let list = match by_key.get_mut(key) {
                Some(list) => list,
                None => by_key.entry(key.to_owned()).or_default(),
            };
            if list.last() != Some(&offset) {
                list.push(offset);
            }
        }
    }

    /// The stored form, in key order.
    pub fn postings(self) -> Vec<Posting> {
        let mut postings: Vec<Posting> = Kind::ALL
            .into_iter()
            .zip(self.lists)
            .flat_map(|(kind, by_key)| {
                by_key.into_iter().map(move |(key, offsets)| Posting {
                    kind,
                    key,
                    idxs: encode(&offsets),
                })
            })
            .collect();
        postings.sort_unstable_by(|a, b| (a.kind, &a.key).cmp(&(b.kind, &b.key)));
        postings
    }
}

/// The lists of the stored entries `[start, end)` (to rebuild them when a
/// writer starts), by segment of `segment_size`.
pub async fn read(
    connection: &mut AnyConnection,
    start: u64,
    end: u64,
    segment_size: u64,
) -> anyhow::Result<BTreeMap<u64, Lists>> {
    let rows = sqlx::query(
        "SELECT idx, actor_org, target_org, actor_subject, dossier_id, persons FROM entries \
         WHERE idx >= $1 AND idx < $2 ORDER BY idx",
    )
    .bind(start as i64)
    .bind(end as i64)
    .fetch_all(&mut *connection)
    .await?;
    let mut segments: BTreeMap<u64, Lists> = BTreeMap::new();
    for row in &rows {
        let index = row.try_get::<i64, _>("idx")? as u64;
        let [o, t, u, d] = [
            Kind::ActorOrganisation,
            Kind::TargetOrganisation,
            Kind::Subject,
            Kind::Dossier,
        ]
        .map(|kind| row.try_get(kind.column()).map(|key| (kind, key)));
        segments.entry(index / segment_size).or_default().add(
            index % segment_size,
            [o?, t?, u?, d?],
            row.try_get(Kind::Person.column())?,
        );
    }
    Ok(segments)
}

/// Stores the posting lists of segment `segment` with its seal, in one
/// transaction on `connection`.
pub async fn store(
    connection: &mut AnyConnection,
    backend: Backend,
    segment: u64,
    segment_size: u64,
    postings: &[Posting],
) -> anyhow::Result<()> {
    let mut writes = Writes::new(backend);
    writes.seal(segment, segment_size, postings)?;
    let mut tx = connection.begin().await?;
    writes.execute(&mut tx).await?;
    tx.commit().await?;
    Ok(())
}

/// The kind stored as `code`.
pub fn kind_of(code: &str) -> Option<Kind> {
    Kind::ALL.into_iter().find(|k| k.code() == code)
}

/// Most posting rows read for one page of [`segment_page`].
const PAGE_ROWS: i64 = 512;
/// A page of [`segment_page`] stops once it holds this many indices.
const PAGE_INDICES: usize = 500_000;

/// One page of segment `segment`'s posting lists in (kind, key) order, after
/// `after` (exclusive), with absolute indices; and whether more follow.
pub async fn segment_page(
    pool: &AnyPool,
    segment: u64,
    segment_size: u64,
    after: Option<(Kind, &str)>,
) -> anyhow::Result<(Vec<(Kind, String, Vec<u64>)>, bool)> {
    let (kind, key) = after.map_or(("", ""), |(k, key)| (k.code(), key));
    let rows = sqlx::query(
        "SELECT kind, key, idxs FROM postings WHERE segment = $1 \
         AND (kind > $2 OR (kind = $2 AND key > $3)) ORDER BY kind, key LIMIT $4",
    )
    .bind(segment as i64)
    .bind(kind)
    .bind(key)
    .bind(PAGE_ROWS)
    .fetch_all(pool)
    .await?;
    let start = segment * segment_size;
    let mut page = Vec::new();
    let mut held = 0;
    for row in &rows {
        let code: String = row.try_get("kind")?;
        let kind = kind_of(&code).ok_or_else(|| anyhow::anyhow!("posting of unknown kind"))?;
        let idxs: Vec<u8> = row.try_get("idxs")?;
        let offsets = decode(&idxs)?;
        held += offsets.len();
        page.push((
            kind,
            row.try_get("key")?,
            offsets.into_iter().map(|o| start + o).collect(),
        ));
        if held >= PAGE_INDICES {
            break;
        }
    }
    let more = page.len() < rows.len() || rows.len() as i64 == PAGE_ROWS;
    Ok((page, more))
}

/// Which entries a query asks for by key: every group must match, each by any
/// of its alternatives (e.g. "acted or was acted on by organisation X").
pub type KeyGroups = Vec<Vec<(Kind, String)>>;

/// The indexes in sealed segment `segment` that match every group, ascending.
pub async fn candidates(
    pool: &AnyPool,
    segment: u64,
    segment_size: u64,
    groups: &KeyGroups,
) -> anyhow::Result<Vec<u64>> {
    let mut conditions = Vec::new();
    let mut binds: Vec<String> = Vec::new();
    for (kind, key) in groups.iter().flatten() {
        // $1 is the segment.
        conditions.push(format!(
            "(kind = ${} AND key = ${})",
            binds.len() + 2,
            binds.len() + 3
        ));
        binds.push(kind.code().into());
        binds.push(key.clone());
    }
    let sql = format!(
        "SELECT kind, key, idxs FROM postings WHERE segment = $1 AND ({})",
        conditions.join(" OR ")
    );
    let mut query = sqlx::query(&sql).bind(segment as i64);
    for b in binds {
        query = query.bind(b);
    }
    let mut lists: BTreeMap<(String, String), Vec<u64>> = BTreeMap::new();
    for row in query.fetch_all(pool).await? {
        let idxs: Vec<u8> = row.try_get("idxs")?;
        lists.insert((row.try_get("kind")?, row.try_get("key")?), decode(&idxs)?);
    }
    let mut matching: Option<Vec<u64>> = None;
    for group in groups {
        let mut union: Vec<u64> = group
            .iter()
            .filter_map(|(kind, key)| lists.get(&(kind.code().to_owned(), key.clone())))
            .flatten()
            .copied()
            .collect();
        union.sort_unstable();
        union.dedup();
        matching = Some(match matching {
            None => union,
            Some(previous) => previous
                .into_iter()
                .filter(|i| union.binary_search(i).is_ok())
                .collect(),
        });
        if matching.as_ref().is_some_and(Vec::is_empty) {
            break;
        }
    }
    let start = segment * segment_size;
    Ok(matching
        .unwrap_or_default()
        .into_iter()
        .map(|offset| start + offset)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::{Kind, Lists, decode, encode};

    #[test]
    fn lists_group_offsets_by_kind_and_key() {
        for (i, kind) in Kind::ALL.into_iter().enumerate() {
            assert_eq!(kind as usize, i, "Kind::ALL is in declaration order");
        }
        let mut lists = Lists::default();
        let keys = |org| {
            [
                (Kind::ActorOrganisation, org),
                (Kind::TargetOrganisation, ""),
                (Kind::Subject, "u1"),
                (Kind::Dossier, "d1"),
            ]
        };
        lists.add(0, keys("o1"), " p1 p2 ");
        lists.add(3, keys("o2"), "");
        lists.add(7, keys("o1"), " p2 ");
        let found: Vec<(Kind, String, Vec<u64>)> = lists
            .postings()
            .into_iter()
            .map(|p| (p.kind, p.key, decode(&p.idxs).expect("decodes")))
            .collect();
        let row = |kind, key: &str, offsets: &[u64]| (kind, key.to_owned(), offsets.to_vec());
        assert_eq!(
            found,
            vec![
                row(Kind::ActorOrganisation, "o1", &[0, 7]),
                row(Kind::ActorOrganisation, "o2", &[3]),
                row(Kind::Subject, "u1", &[0, 3, 7]),
                row(Kind::Dossier, "d1", &[0, 3, 7]),
                row(Kind::Person, "p1", &[0]),
                row(Kind::Person, "p2", &[0, 7]),
            ]
        );
    }

    #[test]
    fn posting_lists_round_trip() {
        for offsets in [
            vec![],
            vec![0],
            vec![0, 1, 2, 127, 128, 16_383, 16_384, 65_535],
            vec![5, 300, 70_000, 1 << 40],
        ] {
            assert_eq!(decode(&encode(&offsets)).expect("round trip"), offsets);
        }
        assert!(decode(&[0x80]).is_err(), "truncated varint is refused");
        assert!(decode(&[0xff; 11]).is_err(), "overlong varint is refused");
    }
}
