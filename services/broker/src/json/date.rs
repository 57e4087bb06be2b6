//! Dates and times as people write them: a calendar date may leave its day or
//! month unknown (a birth year alone is common), a timestamp may be a plain
//! date.

use schakel_proto::v1 as pb;
use time::{OffsetDateTime, format_description::well_known::Rfc3339};

use super::{JsonError, bad};

/// `YYYY-MM-DD`, `YYYY-MM` or `YYYY` (unknown parts are 0 in the proto).
pub fn date_to_string(d: &pb::CalendarDate) -> String {
    match (d.month, d.day) {
        (0, _) => format!("{:04}", d.year),
        (m, 0) => format!("{:04}-{m:02}", d.year),
        (m, day) => format!("{:04}-{m:02}-{day:02}", d.year),
    }
}

/// Parses [`date_to_string`]'s forms, checking that the date exists.
pub fn date_from_str(s: &str, at: &str) -> Result<pb::CalendarDate, JsonError> {
    let parts: Vec<&str> = s.split('-').collect();
    let number = |p: &str| p.parse::<i32>().ok();
    let invalid = || {
        bad(
            at,
            format!("{s:?} is not a date (YYYY-MM-DD, YYYY-MM or YYYY)"),
        )
    };
    let (year, month, day) = match parts.as_slice() {
        [y] => (number(y), Some(0), Some(0)),
        [y, m] => (number(y), number(m), Some(0)),
        [y, m, d] => (number(y), number(m), number(d)),
        _ => return Err(invalid()),
    };
    let (Some(year), Some(month), Some(day)) = (year, month, day) else {
        return Err(invalid());
    };
    if !(1..=9999).contains(&year) || !(0..=12).contains(&month) || !(0..=31).contains(&day) {
        return Err(invalid());
    }
    if day > 0 {
        let m = time::Month::try_from(month as u8).map_err(|_| invalid())?;
        time::Date::from_calendar_date(year, m, day as u8).map_err(|_| invalid())?;
    }
    Ok(pb::CalendarDate { year, month, day })
}

/// RFC 3339 in UTC; the bare seconds when the time is beyond what RFC 3339
/// can write, so printing never fails.
pub(super) fn timestamp_to_string(t: &prost_types::Timestamp) -> String {
    OffsetDateTime::from_unix_timestamp(t.seconds)
        .ok()
        .and_then(|d| d.format(&Rfc3339).ok())
        .unwrap_or_else(|| t.seconds.to_string())
}

/// An RFC 3339 time, or a date `YYYY-MM-DD` meaning its midnight UTC.
pub fn timestamp_from_str(s: &str, at: &str) -> Result<prost_types::Timestamp, JsonError> {
    let parsed = OffsetDateTime::parse(s, &Rfc3339).ok().or_else(|| {
        let d = date_from_str(s, at).ok().filter(|d| d.day > 0)?;
        let month = time::Month::try_from(d.month as u8).ok()?;
        let date = time::Date::from_calendar_date(d.year, month, d.day as u8).ok()?;
        Some(date.midnight().assume_utc())
    });
    let parsed =
        parsed.ok_or_else(|| bad(at, format!("{s:?} is not an RFC 3339 time or a date")))?;
    Ok(prost_types::Timestamp {
        seconds: parsed.unix_timestamp(),
        nanos: 0,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partial_dates_keep_unknown_parts_zero() {
        let d = date_from_str("1992", "d").expect("a year alone is a date");
        assert_eq!((d.year, d.month, d.day), (1992, 0, 0));
        assert_eq!(date_to_string(&d), "1992");
        assert!(date_from_str("1992-13", "d").is_err());
        assert!(date_from_str("92-1-1x", "d").is_err());
    }
}
