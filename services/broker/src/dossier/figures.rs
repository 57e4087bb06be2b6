//! GetFigures: the year in figures (seed 004, "Cijfers") for coordinators,
//! counted from dossier metadata (registration time, district, track, phase,
//! the registrant's partner type) without reading any content; counts of 1
//! to 4 are suppressed so that no family can be singled out.

use std::collections::BTreeMap;

use schakel_kit::validate::{self, Invalid};
use schakel_proto::v1 as pb;

use crate::{
    Broker,
    pipeline::{Call, Outcome},
    process::SUPPRESSION_THRESHOLD,
    store::{self, Counted},
};

/// The longest range asked at once (ten years).
const MAX_RANGE: i64 = 10 * 366 * 24 * 3600;

/// One part of a cell's key, in the order the dimensions were asked.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Part {
    Text(String),
    Number(i32),
}

/// What the request asks: range, dimensions, period length, district.
struct Asked {
    from: i64,
    until: i64,
    dimensions: Vec<pb::FigureDimension>,
    period: pb::FigurePeriod,
    district: String,
}

fn asked(req: &pb::GetFiguresRequest) -> Outcome<Asked> {
    let range = req.registered.as_ref();
    let from = validate::timestamp("registered.from", range.and_then(|r| r.from.as_ref()))?;
    let until = validate::timestamp("registered.until", range.and_then(|r| r.until.as_ref()))?;
    if until <= from || until - from > MAX_RANGE {
        let message = "from must lie before until, at most ten years apart";
        return Err(Invalid::new("registered", message).into());
    }
    let mut dimensions = Vec::new();
    for d in &req.group_by {
        match pb::FigureDimension::try_from(*d) {
            Ok(pb::FigureDimension::Unspecified) | Err(_) => {
                return Err(Invalid::new("group_by", "unknown dimension").into());
            }
            Ok(d) if dimensions.contains(&d) => {
                return Err(Invalid::new("group_by", "a dimension asked twice").into());
            }
            Ok(d) => dimensions.push(d),
        }
    }
    let period = match pb::FigurePeriod::try_from(req.period) {
        Ok(pb::FigurePeriod::Unspecified) => pb::FigurePeriod::Year,
        Ok(p) => p,
        Err(_) => return Err(Invalid::new("period", "unknown period").into()),
    };
    let district = match req.district.as_str() {
        "" => String::new(),
        d => validate::region("district", d)?,
    };
    Ok(Asked {
        from,
        until,
        dimensions,
        period,
        district,
    })
}

/// "2023", "2023-Q2" or "2023-05" (UTC).
fn period_of(at: i64, period: pb::FigurePeriod) -> String {
    let date = time::OffsetDateTime::from_unix_timestamp(at)
        .unwrap_or(time::OffsetDateTime::UNIX_EPOCH)
        .date();
    let (year, month) = (date.year(), u8::from(date.month()));
    match period {
        pb::FigurePeriod::Quarter => format!("{year}-Q{}", (month - 1) / 3 + 1),
        pb::FigurePeriod::Month => format!("{year}-{month:02}"),
        _ => format!("{year}"),
    }
}

fn key(row: &Counted, asked: &Asked) -> Vec<Part> {
    use pb::FigureDimension as D;
    let part = |d: &D| match d {
        D::Period => Part::Text(period_of(row.registered_at, asked.period)),
        D::District => Part::Text(row.district.clone()),
        D::Track => Part::Number(row.track),
        D::Outcome => Part::Number(row.phase),
        D::RegisteringPartnerType | D::Unspecified => {
            Part::Text(row.registering_partner_type.clone())
        }
    };
    asked.dimensions.iter().map(part).collect()
}

/// A count as shown: (count, suppressed).
pub(crate) fn shown(count: u32) -> (u32, bool) {
    if count > 0 && count < SUPPRESSION_THRESHOLD {
        (0, true)
    } else {
        (count, false)
    }
}

fn cell(parts: Vec<Part>, dimensions: &[pb::FigureDimension], count: u32) -> pb::FigureCell {
    use pb::FigureDimension as D;
    let (count, suppressed) = shown(count);
    let mut cell = pb::FigureCell {
        count,
        suppressed,
        ..Default::default()
    };
    for (d, part) in dimensions.iter().zip(parts) {
        match (d, part) {
            (D::Period, Part::Text(t)) => cell.period = t,
            (D::District, Part::Text(t)) => cell.district = t,
            (D::Track, Part::Number(n)) => cell.track = n,
            (D::Outcome, Part::Number(n)) => cell.outcome = n,
            (_, Part::Text(t)) => cell.registering_partner_type = t,
            (_, Part::Number(_)) => {}
        }
    }
    cell
}

/// Complementary suppression: with the total shown, one suppressed cell
/// would be the total minus the others; so when exactly one is suppressed,
/// the smallest shown count is suppressed with it.
fn complement(cells: &mut [pb::FigureCell]) {
    if cells.iter().filter(|c| c.suppressed).count() != 1 {
        return;
    }
    let smallest = cells
        .iter_mut()
        .filter(|c| !c.suppressed && c.count > 0)
        .min_by_key(|c| c.count);
    if let Some(cell) = smallest {
        (cell.count, cell.suppressed) = (0, true);
    }
}

/// An enum value's name without its type prefix, e.g. "PERIOD" (audit
/// attributes are codes of at most 128 characters).
pub(crate) fn short(name: &str) -> &str {
    ["FIGURE_DIMENSION_", "FIGURE_PERIOD_", "AGENDA_ITEM_"]
        .iter()
        .find_map(|p| name.strip_prefix(p))
        .unwrap_or(name)
}

/// GetFigures.
pub(crate) async fn figures(
    broker: &Broker,
    call: &Call,
    req: pb::GetFiguresRequest,
) -> Outcome<pb::GetFiguresResponse> {
    let asked = asked(&req)?;
    let rows = store::counted(
        broker.inner.db.pool(),
        asked.from,
        asked.until,
        &asked.district,
    )
    .await?;
    let mut counts: BTreeMap<Vec<Part>, u32> = BTreeMap::new();
    for row in &rows {
        *counts.entry(key(row, &asked)).or_default() += 1;
    }
    let mut cells: Vec<pb::FigureCell> = counts
        .into_iter()
        .map(|(parts, count)| cell(parts, &asked.dimensions, count))
        .collect();
    complement(&mut cells);
    let (total, total_suppressed) = shown(u32::try_from(rows.len()).unwrap_or(u32::MAX));
    let mut scope = call.scope("");
    let names: Vec<&str> = asked
        .dimensions
        .iter()
        .map(|d| short(d.as_str_name()))
        .collect();
    let grouped = if names.is_empty() {
        "TOTAL".to_owned()
    } else {
        names.join("+")
    };
    scope.attributes.extend([
        ("group_by", grouped),
        ("from", asked.from.to_string()),
        ("until", asked.until.to_string()),
        ("period", short(asked.period.as_str_name()).to_owned()),
        ("district", asked.district.clone()),
    ]);
    let audit_index = broker.record(call, scope).await?;
    Ok(pb::GetFiguresResponse {
        cells,
        total,
        total_suppressed,
        suppression_threshold: SUPPRESSION_THRESHOLD,
        audit_index,
    })
}
