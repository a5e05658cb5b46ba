//! Points in time as unix seconds. Core never reads a clock: the caller passes `now`, which
//! keeps every rule here deterministic and testable.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Seconds since the unix epoch (UTC). Stored as an `INTEGER` by the SQL backends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Timestamp(i64);

impl Timestamp {
    /// The timestamp `secs` seconds after the epoch (negative: before it).
    pub const fn from_unix(secs: i64) -> Self {
        Self(secs)
    }

    /// Seconds since the epoch.
    pub const fn unix(self) -> i64 {
        self.0
    }

    /// `self + secs`, saturating instead of overflowing: a huge configured timeout must not
    /// wrap around into the past and expire everything (or nothing).
    #[must_use]
    pub const fn saturating_add_secs(self, secs: i64) -> Self {
        Self(self.0.saturating_add(secs))
    }

    /// `self - secs`, saturating.
    #[must_use]
    pub const fn saturating_sub_secs(self, secs: i64) -> Self {
        Self(self.0.saturating_sub(secs))
    }
}

impl fmt::Display for Timestamp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arithmetic_saturates() {
        assert_eq!(
            Timestamp::from_unix(i64::MAX)
                .saturating_add_secs(10)
                .unix(),
            i64::MAX
        );
        assert_eq!(
            Timestamp::from_unix(i64::MIN)
                .saturating_sub_secs(10)
                .unix(),
            i64::MIN
        );
        assert_eq!(Timestamp::from_unix(100).saturating_add_secs(5).unix(), 105);
    }
}
