//! The chain process around the phases (seed 003, step 6; seed 004): how
//! long after entering follow-up the six-month check falls, when each track
//! is reviewed, how early a partner is reminded of a request's due date, and
//! how often the clock's notices are swept. Section `[broker.process]`.

use std::time::Duration;

use schakel_kit::config::secs;
use schakel_proto::v1 as pb;

/// Counts in the figures below this (and above 0) are not shown, so that
/// no family can be singled out.
pub const SUPPRESSION_THRESHOLD: u32 = 5;

/// Seconds in a day.
const DAY: u64 = 24 * 3600;

/// The chain process's periods (every one in seconds in the configuration).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct ProcessConfig {
    /// From entering follow_up to the check with services and family
    /// (default 182 days, six months).
    #[serde(with = "secs")]
    pub follow_up_check: Duration,
    /// Spoor 2 (case support, 4-6 months): from the track's start (or the
    /// last review) to the next review (default 120 days).
    #[serde(with = "secs")]
    pub case_support_review: Duration,
    /// Spoor 3 (chain approach, at least a year): from the track's start (or
    /// the last review) to the next review (default 91 days, quarterly).
    #[serde(with = "secs")]
    pub chain_approach_review: Duration,
    /// How long before a request's due date its addressee is reminded
    /// (default 2 days).
    #[serde(with = "secs")]
    pub reminder_before_due: Duration,
    /// How often the broker looks for dates that came (default 5 minutes).
    #[serde(with = "secs")]
    pub sweep_every: Duration,
}

impl Default for ProcessConfig {
    fn default() -> Self {
        Self {
            follow_up_check: Duration::from_secs(182 * DAY),
            case_support_review: Duration::from_secs(120 * DAY),
            chain_approach_review: Duration::from_secs(91 * DAY),
            reminder_before_due: Duration::from_secs(2 * DAY),
            sweep_every: Duration::from_secs(300),
        }
    }
}

impl ProcessConfig {
    /// Refuses periods that would make the process meaningless.
    pub fn validate(&self) -> anyhow::Result<()> {
        let periods = [
            ("follow_up_check", self.follow_up_check),
            ("case_support_review", self.case_support_review),
            ("chain_approach_review", self.chain_approach_review),
            ("sweep_every", self.sweep_every),
        ];
        for (name, period) in periods {
            if period.is_zero() || period > Duration::from_secs(10 * 366 * DAY) {
                anyhow::bail!("broker.process.{name} must be between 1 second and 10 years");
            }
        }
        if self.reminder_before_due > Duration::from_secs(366 * DAY) {
            anyhow::bail!("broker.process.reminder_before_due must be at most a year");
        }
        Ok(())
    }

    /// The review period of a decided track (None: a track without reviews).
    pub fn review_period(&self, track: i32) -> Option<i64> {
        let period = match pb::Track::try_from(track) {
            Ok(pb::Track::CaseSupport) => self.case_support_review,
            Ok(pb::Track::ChainApproach) => self.chain_approach_review,
            _ => return None,
        };
        Some(seconds(period))
    }

    /// The follow-up check period in seconds.
    pub fn follow_up_seconds(&self) -> i64 {
        seconds(self.follow_up_check)
    }

    /// The reminder lead in seconds.
    pub fn reminder_seconds(&self) -> i64 {
        seconds(self.reminder_before_due)
    }
}

fn seconds(period: Duration) -> i64 {
    i64::try_from(period.as_secs()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tracks_without_reviews_and_bounds() {
        let config = ProcessConfig::default();
        assert_eq!(
            config.review_period(pb::Track::CaseSupport as i32),
            Some(120 * 86_400)
        );
        assert_eq!(config.review_period(pb::Track::Consult as i32), None);
        assert_eq!(config.review_period(99), None);
        config.validate().expect("the defaults are valid");
        let zero = ProcessConfig {
            sweep_every: Duration::ZERO,
            ..config
        };
        assert!(zero.validate().is_err());
    }
}
