//! Time for the state machines.
//!
//! The state machines never read the system clock: every transition takes `now` as an
//! argument, and the [`crate::hub::Hub`] reads it from a [`Clock`]. Tests use
//! [`ManualClock`] and are exact.

use chrono::{DateTime, Utc};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A UTC instant with microsecond or better precision.
pub type Timestamp = DateTime<Utc>;

/// A source of the current time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// The current UTC time.
    fn now(&self) -> Timestamp;
}

/// The system's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    /// The current time, truncated to microseconds (what the SQL stores keep), so a
    /// value returned by an operation equals the same value read back later.
    fn now(&self) -> Timestamp {
        use chrono::DurationRound;
        let now = Utc::now();
        now.duration_trunc(chrono::TimeDelta::microseconds(1))
            .unwrap_or(now)
    }
}

/// A clock that only moves when told to, for tests.
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<Mutex<Timestamp>>);

impl ManualClock {
    /// A clock standing at `start`.
    pub fn new(start: Timestamp) -> Self {
        ManualClock(Arc::new(Mutex::new(start)))
    }

    /// A clock standing at 2024-01-01T00:00:00Z (seed 000's example time).
    pub fn at_epoch() -> Self {
        Self::new(DateTime::from_timestamp(1_704_067_200, 0).unwrap_or_default())
    }

    /// Move the clock forward by `by`.
    pub fn advance(&self, by: Duration) {
        let mut t = self.0.lock().unwrap_or_else(|p| p.into_inner());
        *t += chrono::Duration::from_std(by).unwrap_or(chrono::Duration::MAX);
    }

    /// Set the clock to `to`.
    pub fn set(&self, to: Timestamp) {
        *self.0.lock().unwrap_or_else(|p| p.into_inner()) = to;
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        *self.0.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// `t + d`, saturating at the far future.
pub(crate) fn add(t: Timestamp, d: Duration) -> Timestamp {
    chrono::Duration::from_std(d)
        .ok()
        .and_then(|d| t.checked_add_signed(d))
        .unwrap_or(DateTime::<Utc>::MAX_UTC)
}

/// A [`Timestamp`] that serializes as RFC 3339 in UTC exactly as chrono's own `Serialize`
/// does (`2024-01-01T00:00:00.123456Z`: a `Z`, and 0, 3, 6 or 9 fractional digits, as
/// few as the value needs — chrono's `SecondsFormat::AutoSi`), but written into a stack
/// buffer at once instead of through `fmt::Write` a character at a time: a message event
/// carries three timestamps, and formatting them was ~6 % of a W2 server's instructions
/// (callgrind). Years outside 0–9999 and leap seconds go
/// through chrono.
///
/// ```
/// use realtime_core::clock::Rfc3339;
/// let t = chrono::DateTime::from_timestamp(1_704_067_200, 123_456_000).unwrap();
/// assert_eq!(serde_json::to_string(&Rfc3339(t)).unwrap(), r#""2024-01-01T00:00:00.123456Z""#);
/// assert_eq!(serde_json::to_string(&Rfc3339(t)).unwrap(), serde_json::to_string(&t).unwrap());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Rfc3339(pub Timestamp);

impl Rfc3339 {
    /// The text, or `None` when chrono must format it (see the type's docs).
    fn write(&self, buf: &mut [u8; 30]) -> Option<usize> {
        use chrono::{Datelike, Timelike};
        let t = &self.0;
        let (year, nanos) = (t.year(), t.nanosecond());
        if !(0..=9999).contains(&year) || nanos >= 1_000_000_000 {
            return None;
        }
        fn digits(out: &mut [u8], mut v: u32) {
            for b in out.iter_mut().rev() {
                *b = b'0' + (v % 10) as u8;
                v /= 10;
            }
        }
        digits(&mut buf[0..4], year as u32);
        buf[4] = b'-';
        digits(&mut buf[5..7], t.month());
        buf[7] = b'-';
        digits(&mut buf[8..10], t.day());
        buf[10] = b'T';
        digits(&mut buf[11..13], t.hour());
        buf[13] = b':';
        digits(&mut buf[14..16], t.minute());
        buf[16] = b':';
        digits(&mut buf[17..19], t.second());
        let mut n = 19;
        let (frac, width) = if nanos == 0 {
            (0, 0)
        } else if nanos % 1_000_000 == 0 {
            (nanos / 1_000_000, 3)
        } else if nanos % 1_000 == 0 {
            (nanos / 1_000, 6)
        } else {
            (nanos, 9)
        };
        if width > 0 {
            buf[n] = b'.';
            digits(&mut buf[n + 1..n + 1 + width], frac);
            n += 1 + width;
        }
        buf[n] = b'Z';
        Some(n + 1)
    }
}

impl serde::Serialize for Rfc3339 {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut buf = [0u8; 30];
        match self.write(&mut buf) {
            // Only ASCII digits and separators were written.
            Some(n) => s.serialize_str(std::str::from_utf8(&buf[..n]).unwrap_or_default()),
            None => self.0.serialize(s),
        }
    }
}

/// `#[serde(serialize_with = …)]` for a [`Timestamp`] field: see [`Rfc3339`].
///
/// # Errors
/// The serializer's own.
pub fn serialize_rfc3339<S: serde::Serializer>(t: &Timestamp, s: S) -> Result<S::Ok, S::Error> {
    serde::Serialize::serialize(&Rfc3339(*t), s)
}

/// `#[serde(serialize_with = …)]` for an `Option<Timestamp>` field (`null` for `None`).
///
/// # Errors
/// The serializer's own.
pub fn serialize_rfc3339_opt<S: serde::Serializer>(
    t: &Option<Timestamp>,
    s: S,
) -> Result<S::Ok, S::Error> {
    serde::Serialize::serialize(&t.map(Rfc3339), s)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn both(t: Timestamp) -> (String, String) {
        (
            serde_json::to_string(&Rfc3339(t)).expect("ours"),
            serde_json::to_string(&t).expect("chrono"),
        )
    }

    #[test]
    fn edges_match_chrono() {
        let at = |secs: i64, nanos: u32| DateTime::from_timestamp(secs, nanos).expect("in range");
        for t in [
            at(0, 0),
            at(1_704_067_200, 0),
            at(1_704_067_200, 1),
            at(1_704_067_200, 1_000),
            at(1_704_067_200, 1_000_000),
            at(1_704_067_200, 999_999_999),
            at(253_402_300_799, 999_999_000), // 9999-12-31T23:59:59.999999
            at(253_402_300_800, 0),           // year 10000: chrono's fallback
            at(-62_167_219_201, 0),           // year -1: chrono's fallback
            at(1_483_228_799, 1_500_000_000), // a leap second: chrono's fallback
        ] {
            let (ours, chrono) = both(t);
            assert_eq!(ours, chrono);
        }
    }

    proptest! {
        #[test]
        fn any_instant_matches_chrono(secs in -70_000_000_000i64..300_000_000_000, nanos in 0u32..1_000_000_000, round in 0u32..4) {
            let nanos = match round { 0 => 0, 1 => nanos / 1_000_000 * 1_000_000, 2 => nanos / 1_000 * 1_000, _ => nanos };
            if let Some(t) = DateTime::from_timestamp(secs, nanos) {
                let (ours, chrono) = both(t);
                prop_assert_eq!(ours, chrono);
            }
        }
    }
}
