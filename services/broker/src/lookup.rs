//! Finding a data subject without storing who they are: keyed hashes
//! (HMAC-SHA256) of a person's national register number and of their
//! normalised name and birth date. The key is derived from the broker's
//! master key, so the hashes mean nothing without it.

use hmac::{Hmac, Mac};
use schakel_kit::crypto::SecretKey;
use schakel_proto::v1 as pb;
use sha2::Sha256;

/// The key of the lookup hashes.
#[derive(Clone)]
pub struct LookupKey([u8; 32]);

impl std::fmt::Debug for LookupKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("LookupKey(..)")
    }
}

fn mac(key: &[u8], parts: &[&str]) -> Vec<u8> {
    // Any key length is valid for HMAC.
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(key).unwrap_or_else(|_| unreachable!());
    for part in parts {
        mac.update(part.as_bytes());
        mac.update(&[0]);
    }
    mac.finalize().into_bytes().to_vec()
}

/// Lower case, accents removed, anything but letters and digits as one space.
pub fn normalise(text: &str) -> String {
    let mut out = String::new();
    for c in text.chars().flat_map(char::to_lowercase) {
        let c = match c {
            'à' | 'á' | 'â' | 'ä' | 'ã' | 'å' => 'a',
            'ç' => 'c',
            'è' | 'é' | 'ê' | 'ë' => 'e',
            'ì' | 'í' | 'î' | 'ï' => 'i',
            'ñ' => 'n',
            'ò' | 'ó' | 'ô' | 'ö' | 'õ' => 'o',
            'ù' | 'ú' | 'û' | 'ü' => 'u',
            'ý' | 'ÿ' => 'y',
            c => c,
        };
        if c.is_alphanumeric() {
            out.push(c);
        } else if !out.ends_with(' ') && !out.is_empty() {
            out.push(' ');
        }
    }
    out.trim_end().to_owned()
}

impl LookupKey {
    /// The lookup key belonging to a master key.
    pub fn derive(master: &SecretKey) -> Self {
        let bytes = mac(&master.to_bytes(), &["schakel data-subject lookup v1"]);
        let mut key = [0u8; 32];
        key.copy_from_slice(&bytes);
        Self(key)
    }

    /// The hash of a (canonical, 11-digit) national register number.
    pub fn national_number(&self, number: &str) -> Vec<u8> {
        mac(&self.0, &["nn", number])
    }

    /// The hash of a name and full birth date; `None` when a part is missing.
    pub fn name_and_birth_date(
        &self,
        given: &str,
        family: &str,
        date: Option<&pb::CalendarDate>,
    ) -> Option<Vec<u8>> {
        let date = date.filter(|d| d.year > 0 && d.month > 0 && d.day > 0)?;
        let (given, family) = (normalise(given), normalise(family));
        if given.is_empty() || family.is_empty() {
            return None;
        }
        let date = format!("{:04}-{:02}-{:02}", date.year, date.month, date.day);
        Some(mac(&self.0, &["nb", &given, &family, &date]))
    }

    /// Every hash of a registered person.
    pub fn tokens(&self, person: &pb::ClientPersonInput) -> Vec<Vec<u8>> {
        let mut tokens = Vec::new();
        if let Ok(number) = crate::national_number::parse(&person.national_number) {
            tokens.push(self.national_number(&number));
        }
        tokens.extend(self.name_and_birth_date(
            &person.given_name,
            &person.family_name,
            person.birth_date.as_ref(),
        ));
        tokens
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_match_after_normalisation_only_with_the_same_key() {
        let key = LookupKey::derive(&SecretKey::generate());
        let date = pb::CalendarDate {
            year: 1985,
            month: 7,
            day: 30,
        };
        let a = key.name_and_birth_date("Zoë", "Van den Broeck", Some(&date));
        let b = key.name_and_birth_date("  zoe ", "van-den  BROECK", Some(&date));
        assert!(a.is_some());
        assert_eq!(a, b);
        assert_ne!(
            a,
            key.name_and_birth_date("Zoë", "Van den Broek", Some(&date))
        );
        let other = LookupKey::derive(&SecretKey::generate());
        assert_ne!(
            a,
            other.name_and_birth_date("Zoë", "Van den Broeck", Some(&date))
        );
        let year_only = pb::CalendarDate {
            year: 1985,
            month: 0,
            day: 0,
        };
        assert_eq!(
            key.name_and_birth_date("Zoë", "Peeters", Some(&year_only)),
            None
        );
        assert_eq!(normalise("Élodie  D'Hondt "), "elodie d hondt");
        assert_ne!(
            key.national_number("85073003328"),
            key.national_number("85073003329")
        );
    }
}
