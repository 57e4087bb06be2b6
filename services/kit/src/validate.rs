//! Validating request fields at the edge, the same way in every service.
//!
//! Each function takes the request field's name (reported in the
//! `INVALID_ARGUMENT` status's `BadRequest` details) and returns the value in
//! its canonical form, or an [`Invalid`] naming the field and the rule.

use tonic::Status;

/// A request field that breaks a rule.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct Invalid {
    /// The request field, e.g. `terms.districts`, or a place in an uploaded
    /// file, e.g. `policy_csv:12`.
    pub field: std::borrow::Cow<'static, str>,
    /// What is wrong with it.
    pub message: String,
}

impl Invalid {
    /// `field` breaks the rule `message`.
    pub fn new(field: &'static str, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }

    /// A place named at run time (e.g. a file and line) breaks the rule.
    pub fn at(field: String, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl From<Invalid> for Status {
    fn from(err: Invalid) -> Self {
        crate::error::invalid_argument(&err.field, err.message)
    }
}

/// Result of a validation.
pub type Valid<T> = Result<T, Invalid>;

fn check(field: &'static str, value: &str, ok: bool, rule: &str) -> Valid<String> {
    if ok {
        Ok(value.to_owned())
    } else {
        Err(Invalid::new(field, rule))
    }
}

fn is_code(value: &str, max: usize, extra: u8) -> bool {
    (2..=max).contains(&value.len())
        && value.as_bytes()[0].is_ascii_lowercase()
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == extra)
}

/// A code such as a partner type, purpose or form of violence:
/// `[a-z][a-z0-9_]{1,31}`.
pub fn code(field: &'static str, value: &str) -> Valid<String> {
    check(
        field,
        value,
        is_code(value, 32, b'_'),
        "must match [a-z][a-z0-9_]{1,31}",
    )
}

/// A judicial district code: `[a-z][a-z0-9-]{1,39}`, e.g. `leuven`.
pub fn region(field: &'static str, value: &str) -> Valid<String> {
    check(
        field,
        value,
        is_code(value, 40, b'-'),
        "must be a district code matching [a-z][a-z0-9-]{1,39}",
    )
}

/// A human-readable name: 1-200 characters, no control characters; trimmed.
pub fn label(field: &'static str, value: &str) -> Valid<String> {
    let trimmed = value.trim();
    let ok = !trimmed.is_empty()
        && trimmed.chars().count() <= 200
        && !trimmed.chars().any(char::is_control);
    check(
        field,
        trimmed,
        ok,
        "must be 1-200 characters without control characters",
    )
}

/// Free text of at most `max` characters (line breaks and tabs allowed, other
/// control characters not); trimmed; may be empty.
pub fn text(field: &'static str, value: &str, max: usize) -> Valid<String> {
    let trimmed = value.trim();
    let ok = trimmed.chars().count() <= max
        && !trimmed
            .chars()
            .any(|c| c.is_control() && !matches!(c, '\n' | '\r' | '\t'));
    if ok {
        Ok(trimmed.to_owned())
    } else {
        Err(Invalid::new(
            field,
            format!("must be at most {max} characters without control characters"),
        ))
    }
}

/// An opaque id as issued by Schakel (a UUID), in canonical form.
pub fn id(field: &'static str, value: &str) -> Valid<String> {
    match uuid::Uuid::parse_str(value) {
        Ok(u) => Ok(u.to_string()),
        Err(_) => Err(Invalid::new(field, "must be an id issued by Schakel")),
    }
}

/// A page request: size capped to 500 (default 50); the token is the last id seen.
pub fn page(page: Option<&schakel_proto::v1::PageRequest>) -> Valid<(i64, String)> {
    let (size, token) = page.map_or((0, ""), |p| (p.page_size, p.page_token.as_str()));
    let size = match size {
        0 => 50,
        1..=500 => i64::from(size),
        _ => return Err(Invalid::new("page.page_size", "must be at most 500")),
    };
    if token.len() > 64 {
        return Err(Invalid::new(
            "page.page_token",
            "not a page token from this service",
        ));
    }
    Ok((size, token.to_owned()))
}

/// A required timestamp, as seconds since the epoch.
pub fn timestamp(field: &'static str, value: Option<&prost_types::Timestamp>) -> Valid<i64> {
    match value {
        Some(t) if !(0..1_000_000_000).contains(&t.nanos) => {
            Err(Invalid::new(field, "nanos must lie in 0..999,999,999"))
        }
        Some(t) if (0..=253_402_300_799).contains(&t.seconds) => Ok(t.seconds),
        Some(_) => Err(Invalid::new(field, "must lie between 1970 and 9999")),
        None => Err(Invalid::new(field, "is required")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_with_impossible_nanos_are_refused() {
        let at = |seconds, nanos| prost_types::Timestamp { seconds, nanos };
        assert_eq!(timestamp("t", Some(&at(10, 999_999_999))).ok(), Some(10));
        assert!(timestamp("t", Some(&at(10, -1))).is_err());
        assert!(timestamp("t", Some(&at(10, 1_000_000_000))).is_err());
        assert!(timestamp("t", Some(&at(-1, 0))).is_err());
    }

    #[test]
    fn codes_and_names() {
        assert!(code("f", "kind_en_gezin").is_ok());
        assert!(code("f", "Kind").is_err());
        assert!(code("f", "1abc").is_err());
        assert!(code("f", "a").is_err());
        assert!(region("f", "leuven").is_ok());
        assert!(region("f", "oost-vlaanderen").is_ok());
        assert!(region("f", "").is_err());
        assert!(label("f", "  CAW Oost-Brabant ").is_ok_and(|l| l == "CAW Oost-Brabant"));
        assert!(label("f", "a\u{7}b").is_err());
        assert!(label("f", &"x".repeat(201)).is_err());
        assert!(text("f", "line one\nline two", 100).is_ok());
        assert!(text("f", "", 100).is_ok_and(|t| t.is_empty()));
        assert!(text("f", "bell\u{7}", 100).is_err());
        assert!(text("f", &"x".repeat(101), 100).is_err());
    }

    #[test]
    fn ids_pages_and_times() {
        let id_text = uuid::Uuid::new_v4().to_string();
        assert_eq!(id("f", &id_text.to_uppercase()).expect("id"), id_text);
        assert_eq!(id("f", "x").expect_err("not an id").field, "f");
        assert_eq!(page(None).expect("default").0, 50);
        let p = schakel_proto::v1::PageRequest {
            page_size: 501,
            page_token: String::new(),
        };
        assert_eq!(page(Some(&p)).expect_err("too big").field, "page.page_size");
        let t = prost_types::Timestamp {
            seconds: 10,
            nanos: 0,
        };
        assert_eq!(timestamp("f", Some(&t)), Ok(10));
        assert!(timestamp("f", None).is_err());
        let t = prost_types::Timestamp {
            seconds: -1,
            nanos: 0,
        };
        assert!(timestamp("f", Some(&t)).is_err());
    }
}
