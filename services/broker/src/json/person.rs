//! One person of a registration file and how they were informed, as the
//! proto's person input.

use schakel_proto::v1 as pb;
use serde::Deserialize;

use super::{AddressFile, JsonError, date_from_str, enum_value, timestamp_from_str};

/// A person of the client system.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PersonFile {
    /// The file's own reference for the person (relations, fields).
    #[serde(rename = "ref")]
    pub reference: String,
    /// `slachtoffer`, `pleger`, `kind`, `familie`.
    pub roles: Vec<String>,
    /// Given name.
    pub given_name: String,
    /// Family name.
    pub family_name: String,
    /// `YYYY-MM-DD`, `YYYY-MM` or `YYYY`.
    #[serde(default)]
    pub birth_date: Option<String>,
    /// Rijksregisternummer, with or without separators.
    #[serde(default)]
    pub national_number: String,
    /// Postal address.
    #[serde(default)]
    pub address: Option<AddressFile>,
    /// Whether and how the person was informed.
    #[serde(default)]
    pub informing: Option<InformingFile>,
}

/// Informing of one person: `{"state": "informed", "method": "in_person"}` or
/// `{"state": "deferred", "reason": "safety_of_victim", "review_at": "2027-01-15"}`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InformingFile {
    /// `informed`, `deferred` or `not_informed`.
    pub state: String,
    /// For informed: when (RFC 3339 or date; default now).
    #[serde(default)]
    pub informed_at: Option<String>,
    /// For informed: `in_person`, `phone`, `video_call`, `letter`, ...
    #[serde(default)]
    pub method: Option<String>,
    /// For deferred: `safety_of_victim`, `safety_of_children`, ...
    #[serde(default)]
    pub reason: Option<String>,
    /// For deferred: a short explanation (kept by the legal-basis service only).
    #[serde(default)]
    pub explanation: String,
    /// For deferred: when the team reviews it (default in 30 days).
    #[serde(default)]
    pub review_at: Option<String>,
}

/// How long a deferral stands before the team must review it, when the file
/// names no date: the review is what keeps a deferral from becoming silent.
const DEFAULT_REVIEW_SECONDS: i64 = 30 * 24 * 3600;

impl PersonFile {
    /// The person as the form's input; `at` is the person's place in the file.
    pub(super) fn to_input(&self, now: i64, at: &str) -> Result<pb::ClientPersonInput, JsonError> {
        Ok(pb::ClientPersonInput {
            client_ref: self.reference.clone(),
            roles: self.roles(at)?,
            given_name: self.given_name.clone(),
            family_name: self.family_name.clone(),
            birth_date: self
                .birth_date
                .as_deref()
                .map(|d| date_from_str(d, &format!("{at}.birth_date")))
                .transpose()?,
            national_number: self.national_number.clone(),
            address: self.address.clone().map(Into::into),
            informing: self
                .informing
                .as_ref()
                .map(|inf| inf.to_proto(now, &format!("{at}.informing")))
                .transpose()?,
        })
    }

    /// Each role by its index, so that a typo in the third role says so.
    fn roles(&self, at: &str) -> Result<Vec<i32>, JsonError> {
        self.roles
            .iter()
            .enumerate()
            .map(|(j, r)| {
                enum_value(
                    "PERSON_ROLE",
                    r,
                    pb::PersonRole::from_str_name,
                    &format!("{at}.roles[{j}]"),
                )
                .map(|r| r as i32)
            })
            .collect()
    }
}

impl InformingFile {
    /// The proto details; `now` fills the defaults.
    pub fn to_proto(&self, now: i64, at: &str) -> Result<pb::InformingDetails, JsonError> {
        let state = enum_value(
            "INFORMING_STATE",
            &self.state,
            pb::InformingState::from_str_name,
            &format!("{at}.state"),
        )?;
        let details = pb::InformingDetails {
            state: state as i32,
            ..Default::default()
        };
        match state {
            pb::InformingState::Informed => self.informed(details, now, at),
            pb::InformingState::Deferred => self.deferred(details, now, at),
            _ => Ok(details),
        }
    }

    /// Only an informed person has a time and method of informing; a file
    /// that names none means in person, now.
    fn informed(
        &self,
        mut details: pb::InformingDetails,
        now: i64,
        at: &str,
    ) -> Result<pb::InformingDetails, JsonError> {
        details.informed_at = Some(time_or(
            self.informed_at.as_deref(),
            now,
            &format!("{at}.informed_at"),
        )?);
        details.method = enum_value(
            "INFORMING_METHOD",
            self.method.as_deref().unwrap_or("in_person"),
            pb::InformingMethod::from_str_name,
            &format!("{at}.method"),
        )? as i32;
        Ok(details)
    }

    /// A deferral must give its reason (no default: an empty one is refused)
    /// and gets a review date.
    fn deferred(
        &self,
        mut details: pb::InformingDetails,
        now: i64,
        at: &str,
    ) -> Result<pb::InformingDetails, JsonError> {
        details.deferral_reason = enum_value(
            "DEFERRAL_REASON",
            self.reason.as_deref().unwrap_or_default(),
            pb::DeferralReason::from_str_name,
            &format!("{at}.reason"),
        )? as i32;
        details.deferral_explanation = self.explanation.clone();
        details.review_at = Some(time_or(
            self.review_at.as_deref(),
            now + DEFAULT_REVIEW_SECONDS,
            &format!("{at}.review_at"),
        )?);
        Ok(details)
    }
}

/// The time a file gives, or `default` (unix seconds) when it gives none.
fn time_or(
    value: Option<&str>,
    default: i64,
    at: &str,
) -> Result<prost_types::Timestamp, JsonError> {
    match value {
        Some(s) => timestamp_from_str(s, at),
        None => Ok(prost_types::Timestamp {
            seconds: default,
            nanos: 0,
        }),
    }
}
