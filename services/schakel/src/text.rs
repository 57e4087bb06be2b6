//! How the CLI reads and prints times and enum values.

use schakel_proto::v1 as pb;
use time::{OffsetDateTime, format_description::well_known::Rfc3339};

/// A `YYYY-MM-DD` (midnight UTC) or RFC 3339 time given as `--flag`.
pub fn parse_time(flag: &str, value: &str) -> anyhow::Result<prost_types::Timestamp> {
    schakel_broker::json::timestamp_from_str(value, &format!("--{flag}"))
        .map_err(|e| anyhow::anyhow!("{e}"))
}

/// RFC 3339, or `-` when unset.
pub fn show_time(ts: Option<&prost_types::Timestamp>) -> String {
    ts.and_then(|t| OffsetDateTime::from_unix_timestamp(t.seconds).ok())
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_else(|| "-".into())
}

/// The short lower-case name of an enum value: `PHASE_CASE_BUILDING` -> `case_building`.
pub fn enum_short<E: TryFrom<i32>>(
    value: i32,
    name: impl Fn(&E) -> &'static str,
    prefix: &str,
) -> String {
    E::try_from(value)
        .map(|e| name(&e).trim_start_matches(prefix).to_lowercase())
        .unwrap_or_else(|_| value.to_string())
}

/// A phase by its short name.
pub fn phase(name: &str) -> anyhow::Result<pb::Phase> {
    schakel_broker::json::enum_value("PHASE", name, pb::Phase::from_str_name, "phase")
        .map_err(|e| anyhow::anyhow!("{e} (registration, case_building, assessment, case_direction, follow_up, closed, not_retained)"))
}

/// A phase's short name.
pub fn phase_name(value: i32) -> String {
    enum_short(value, pb::Phase::as_str_name, "PHASE_")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_parse_as_days_or_rfc3339() {
        assert_eq!(
            parse_time("x", "2026-09-01").expect("date").seconds,
            1_788_220_800
        );
        assert_eq!(
            parse_time("x", "2026-09-01T00:00:00+02:00")
                .expect("rfc3339")
                .seconds,
            1_788_220_800 - 7200
        );
        let err = parse_time("valid-from", "1/9/2026").expect_err("not a date");
        assert!(err.to_string().contains("--valid-from"));
        assert_eq!(
            show_time(Some(&schakel_kit::time::to_timestamp(1_788_220_800))),
            "2026-09-01T00:00:00Z"
        );
    }
}
