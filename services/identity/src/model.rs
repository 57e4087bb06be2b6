//! Identity's domain types, parsed from requests at the edge.

use schakel_kit::auth::Role;

use crate::error::{Error, Result};

/// The eight kernpartners' partner type codes (seeded by migration).
pub const KERNPARTNERS: [&str; 8] = [
    "politie",
    "parket",
    "caw",
    "vk",
    "ggz",
    "justitiehuis",
    "ocj",
    "veilig_huis",
];

fn check(field: &'static str, value: &str, ok: bool, rule: &str) -> Result<String> {
    if ok {
        Ok(value.to_owned())
    } else {
        Err(Error::invalid(field, rule.to_owned()))
    }
}

/// A partner type code: `[a-z][a-z0-9_]{1,31}`.
pub fn partner_type_code(field: &'static str, value: &str) -> Result<String> {
    let ok = (2..=32).contains(&value.len())
        && value.as_bytes()[0].is_ascii_lowercase()
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    check(field, value, ok, "must match [a-z][a-z0-9_]{1,31}")
}

/// A judicial district code: `[a-z][a-z0-9-]{1,39}`, e.g. `leuven`.
pub fn region(field: &'static str, value: &str) -> Result<String> {
    let ok = (2..=40).contains(&value.len())
        && value.as_bytes()[0].is_ascii_lowercase()
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    check(
        field,
        value,
        ok,
        "must be a district code matching [a-z][a-z0-9-]{1,39}",
    )
}

/// A login name: `[a-z0-9._-]{3,64}`.
pub fn username(field: &'static str, value: &str) -> Result<String> {
    let ok = (3..=64).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    check(field, value, ok, "must match [a-z0-9._-]{3,64}")
}

/// A human-readable name: 1-200 characters, no control characters.
pub fn label(field: &'static str, value: &str) -> Result<String> {
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

/// Whether `value` is a certificate common name we accept for service
/// accounts: 1-64 characters of `[A-Za-z0-9._-]`.
pub fn is_common_name(value: &str) -> bool {
    (1..=64).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// An opaque id as issued by this service (a UUID).
pub fn id(field: &'static str, value: &str) -> Result<String> {
    match uuid::Uuid::parse_str(value) {
        Ok(u) => Ok(u.to_string()),
        Err(_) => Err(Error::invalid(field, "must be an id issued by Schakel")),
    }
}

/// Roles from the proto enum values: at least one, no duplicates, none unspecified.
pub fn roles(field: &'static str, values: &[i32]) -> Result<Vec<Role>> {
    if values.is_empty() {
        return Err(Error::invalid(field, "at least one role is required"));
    }
    let mut roles = Vec::with_capacity(values.len());
    for v in values {
        let role = Role::from_proto(*v)
            .ok_or_else(|| Error::invalid(field, format!("unknown role {v}")))?;
        if roles.contains(&role) {
            return Err(Error::invalid(field, format!("duplicate role {role}")));
        }
        roles.push(role);
    }
    roles.sort();
    Ok(roles)
}

/// Roles as stored: comma-separated codes.
pub fn roles_to_text(roles: &[Role]) -> String {
    roles
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(",")
}

/// Roles from their stored form.
pub fn roles_from_text(text: &str) -> anyhow::Result<Vec<Role>> {
    text.split(',')
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<Role>().map_err(anyhow::Error::msg))
        .collect()
}

/// A page request: size capped to 500 (default 50); the token is the last id seen.
pub fn page(page: Option<&schakel_proto::v1::PageRequest>) -> Result<(i64, String)> {
    let (size, token) = page.map_or((0, ""), |p| (p.page_size, p.page_token.as_str()));
    let size = match size {
        0 => 50,
        1..=500 => i64::from(size),
        _ => return Err(Error::invalid("page.page_size", "must be at most 500")),
    };
    if token.len() > 64 {
        return Err(Error::invalid(
            "page.page_token",
            "not a page token from this service",
        ));
    }
    Ok((size, token.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_names() {
        assert!(partner_type_code("f", "kind_en_gezin").is_ok());
        assert!(partner_type_code("f", "Kind").is_err());
        assert!(partner_type_code("f", "1abc").is_err());
        assert!(region("f", "leuven").is_ok());
        assert!(region("f", "oost-vlaanderen").is_ok());
        assert!(region("f", "").is_err());
        assert!(username("f", "team.caw").is_ok());
        assert!(username("f", "ab").is_err());
        assert!(username("f", "Robert'); DROP TABLE").is_err());
        assert!(label("f", "  CAW Oost-Brabant ").is_ok_and(|l| l == "CAW Oost-Brabant"));
        assert!(label("f", "a\u{7}b").is_err());
        assert!(label("f", &"x".repeat(201)).is_err());
    }

    #[test]
    fn roles_parse_strictly() {
        let r = roles("roles", &[2, 1]).expect("roles");
        assert_eq!(r, vec![Role::Aanmelder, Role::TeamMember]);
        assert!(roles("roles", &[]).is_err());
        assert!(roles("roles", &[0]).is_err());
        assert!(roles("roles", &[99]).is_err());
        assert!(roles("roles", &[1, 1]).is_err());
        assert_eq!(roles_from_text(&roles_to_text(&r)).expect("text"), r);
    }

    #[test]
    fn pages() {
        assert_eq!(page(None).expect("default").0, 50);
        let p = schakel_proto::v1::PageRequest {
            page_size: 501,
            page_token: String::new(),
        };
        assert!(page(Some(&p)).is_err());
    }
}
