//! Identity's domain types, parsed from requests at the edge.

use schakel_kit::auth::Role;

use crate::error::{Error, Result};

pub use schakel_kit::validate::{code as partner_type_code, id, label, page, region};

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

/// A login name: `[a-z0-9._-]{3,64}`.
pub fn username(field: &'static str, value: &str) -> Result<String> {
    let ok = (3..=64).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b));
    check(field, value, ok, "must match [a-z0-9._-]{3,64}")
}

/// Whether `value` is a certificate common name we accept for service
/// accounts: 1-64 characters of `[A-Za-z0-9._-]`.
pub fn is_common_name(value: &str) -> bool {
    (1..=64).contains(&value.len())
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
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
    Role::check_separation(&roles).map_err(|m| Error::invalid(field, m))?;
    Ok(roles)
}

/// A free-text reason of at most 500 characters (kept out of the audit
/// trail's indexed fields).
pub fn reason(field: &'static str, value: &str) -> Result<()> {
    if value.chars().count() > 500 {
        return Err(Error::invalid(field, "must be at most 500 characters"));
    }
    Ok(())
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

#[cfg(test)]
mod tests {
    use schakel_proto::v1 as pb;

    use super::*;

    #[test]
    fn codes_and_names() {
        assert!(username("f", "team.caw").is_ok());
        assert!(username("f", "ab").is_err());
        assert!(username("f", "Robert'); DROP TABLE").is_err());
    }

    #[test]
    fn roles_parse_strictly() {
        let r = roles("roles", &[2, 1]).expect("roles");
        assert_eq!(r, vec![Role::Aanmelder, Role::TeamMember]);
        assert!(roles("roles", &[]).is_err());
        assert!(roles("roles", &[0]).is_err());
        assert!(roles("roles", &[99]).is_err());
        assert!(roles("roles", &[1, 1]).is_err());
        // Oversight and content roles never in one account.
        let mixed = [pb::Role::PrivacyOfficer as i32, pb::Role::TeamMember as i32];
        let err = roles("roles", &mixed).expect_err("mixed");
        assert!(err.to_string().contains("privacy_officer"), "{err}");
        assert!(
            roles(
                "roles",
                &[pb::Role::Coordinator as i32, pb::Role::Aanmelder as i32]
            )
            .is_err()
        );
        assert!(
            roles(
                "roles",
                &[
                    pb::Role::Coordinator as i32,
                    pb::Role::PrivacyOfficer as i32
                ]
            )
            .is_ok()
        );
        assert_eq!(roles_from_text(&roles_to_text(&r)).expect("text"), r);
    }
}
