//! Time: a clock services can be given (tests control it, never sleep), and
//! conversions at the proto boundary.

use std::sync::{
    Arc,
    atomic::{AtomicI64, Ordering},
};

/// Seconds since the Unix epoch.
pub type UnixSeconds = i64;

/// A source of the current time.
#[derive(Clone, Default)]
pub enum Clock {
    /// The system clock.
    #[default]
    System,
    /// A clock that only moves when told to (tests).
    Manual(Arc<AtomicI64>),
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Clock::System => f.write_str("Clock::System"),
            Clock::Manual(t) => write!(f, "Clock::Manual({})", t.load(Ordering::SeqCst)),
        }
    }
}

impl Clock {
    /// A manual clock starting at `now`.
    pub fn manual(now: UnixSeconds) -> Self {
        Clock::Manual(Arc::new(AtomicI64::new(now)))
    }

    /// The current time in seconds since the epoch.
    pub fn now(&self) -> UnixSeconds {
        match self {
            Clock::System => std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs() as i64),
            Clock::Manual(t) => t.load(Ordering::SeqCst),
        }
    }

    /// Moves a manual clock forward by `seconds` (no effect on the system clock).
    pub fn advance(&self, seconds: i64) {
        if let Clock::Manual(t) = self {
            t.fetch_add(seconds, Ordering::SeqCst);
        }
    }
}

/// To a protobuf timestamp.
pub fn to_timestamp(seconds: UnixSeconds) -> prost_types::Timestamp {
    prost_types::Timestamp { seconds, nanos: 0 }
}
