//! KBO enterprise numbers (Kruispuntbank van Ondernemingen).
//!
//! Ten digits, the first 0 or 1; the last two are a mod-97 check:
//! `97 - (first eight digits mod 97)`. Formatting (`0123.456.749`, `BE`
//! prefix) is accepted on input and removed.

use std::fmt;

/// A validated KBO enterprise number, ten digits.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct KboNumber(String);

impl KboNumber {
    /// Parses and checks a KBO number.
    pub fn parse(input: &str) -> Result<Self, String> {
        let trimmed = input.trim();
        let trimmed = trimmed
            .strip_prefix("BE")
            .or_else(|| trimmed.strip_prefix("be"))
            .unwrap_or(trimmed);
        let digits: String = trimmed
            .chars()
            .filter(|c| !matches!(c, '.' | ' '))
            .collect();
        if digits.len() != 10 || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err("must be 10 digits".into());
        }
        if !matches!(digits.as_bytes()[0], b'0' | b'1') {
            return Err("must start with 0 or 1".into());
        }
        let base: u64 = digits[..8]
            .parse()
            .map_err(|_| "not a number".to_string())?;
        let check: u64 = digits[8..]
            .parse()
            .map_err(|_| "not a number".to_string())?;
        if 97 - base % 97 != check {
            return Err("check digits do not match (mod 97)".into());
        }
        Ok(Self(digits))
    }

    /// Builds the valid number for the first eight digits (tests, dev seed);
    /// `base` below 20,000,000, so that the number starts with 0 or 1.
    pub fn from_base(base: u32) -> Self {
        debug_assert!(base < 20_000_000, "a KBO number starts with 0 or 1");
        let base = u64::from(base % 100_000_000);
        Self(format!("{base:08}{:02}", 97 - base % 97))
    }

    /// The ten digits.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for KboNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn known_numbers() {
        // FOD Justitie / SPF Justice.
        assert_eq!(
            KboNumber::parse("0308.357.159").expect("valid").as_str(),
            "0308357159"
        );
        assert!(KboNumber::parse("BE 0308.357.159").is_ok());
        assert!(KboNumber::parse("0308357158").is_err());
        assert!(KboNumber::parse("030835715").is_err());
        assert!(KboNumber::parse("2308357159").is_err());
        assert!(KboNumber::parse("03083571a9").is_err());
        assert!(KboNumber::parse("").is_err());
    }

    proptest! {
        #[test]
        fn generated_numbers_validate(base in 0u32..20_000_000) {
            let kbo = KboNumber::from_base(base);
            prop_assert_eq!(KboNumber::parse(kbo.as_str()), Ok(kbo.clone()));
        }

        #[test]
        fn any_single_digit_change_is_caught(base in 0u32..20_000_000, pos in 0usize..10, delta in 1u8..10) {
            let kbo = KboNumber::from_base(base);
            let mut bytes = kbo.as_str().as_bytes().to_vec();
            bytes[pos] = b'0' + (bytes[pos] - b'0' + delta) % 10;
            let changed = String::from_utf8(bytes).expect("ascii");
            prop_assert!(KboNumber::parse(&changed).is_err());
        }

        #[test]
        fn parse_never_panics(s in "\\PC{0,20}") {
            let _ = KboNumber::parse(&s);
        }
    }
}
