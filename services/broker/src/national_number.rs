//! The Belgian national register number (rijksregisternummer): 11 digits,
//! `YYMMDD` (birth date; bis numbers add 20 or 40 to the month), a 3-digit
//! serial and a 2-digit check: 97 minus the first nine digits modulo 97,
//! with a 2 prefixed for people born from 2000 on.

/// Why a national register number is refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    /// Not 11 digits (separators `.`, `-` and spaces are allowed and dropped).
    Format,
    /// The check digits do not match, for either century.
    Check,
}

/// The number in its canonical form (11 digits), or why it is refused.
pub fn parse(text: &str) -> Result<String, Refused> {
    let digits: String = text
        .chars()
        .filter(|c| !matches!(c, '.' | '-' | ' '))
        .collect();
    if digits.len() != 11 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Refused::Format);
    }
    let base: u64 = digits[..9].parse().map_err(|_| Refused::Format)?;
    let check: u64 = digits[9..].parse().map_err(|_| Refused::Format)?;
    let before_2000 = 97 - base % 97;
    let from_2000 = 97 - (2_000_000_000 + base) % 97;
    if check == before_2000 || check == from_2000 {
        Ok(digits)
    } else {
        Err(Refused::Check)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[test]
    fn known_numbers() {
        // 85.07.30-033.28 is valid (born 1985): 97 - (850730033 mod 97) = 28.
        assert_eq!(parse("85.07.30-033.28"), Ok("85073003328".into()));
        // Born 2017: the check uses 2 prefixed.
        let base = 170_101_001_u64;
        let check = 97 - (2_000_000_000 + base) % 97;
        assert_eq!(parse(&format!("{base:09}{check:02}")).map(|_| ()), Ok(()));
        assert_eq!(parse("85073003329"), Err(Refused::Check));
        assert_eq!(parse("8507300336"), Err(Refused::Format));
        assert_eq!(parse("8507300336a"), Err(Refused::Format));
        assert_eq!(parse(""), Err(Refused::Format));
    }

    proptest! {
        #[test]
        fn every_base_has_exactly_its_checks(base in 0u64..1_000_000_000) {
            let number = |check: u64| format!("{base:09}{check:02}");
            let good = 97 - base % 97;
            let good_2000 = 97 - (2_000_000_000 + base) % 97;
            prop_assert!(parse(&number(good)).is_ok());
            prop_assert!(parse(&number(good_2000)).is_ok());
            for wrong in 0..100u64 {
                if wrong != good && wrong != good_2000 {
                    prop_assert_eq!(parse(&number(wrong)), Err(Refused::Check));
                }
            }
        }
    }
}
