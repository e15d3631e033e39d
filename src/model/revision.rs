//! Which save of a record a version is: [`Revision`].
//!
//! Revisions are numbered from 1 and go up by one with every save on the tablet. They travel
//! in JSON as plain numbers and are stored as signed 64-bit integers by SQLite and
//! PostgreSQL, so the type holds only values both can store (`0..=i64::MAX`). Every
//! conversion is checked here once: a number out of range is refused when it is read (from
//! the wire, a file or a database row), never wrapped or clamped on the way in.

use std::fmt;

use serde::{Deserialize, Serialize};

/// One save of one record. Ordered, copyable, and always storable as an `i64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u64", into = "u64")]
pub struct Revision(u64);

/// A number that is not a storable revision (above `i64::MAX`, or negative when read back
/// from a database).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RevisionOutOfRange;

impl fmt::Display for RevisionOutOfRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a revision is out of range")
    }
}

impl std::error::Error for RevisionOutOfRange {}

impl Revision {
    /// The first save of a record.
    pub const FIRST: Revision = Revision(1);
    /// The largest revision any backend can store.
    pub const MAX: Revision = Revision(i64::MAX as u64);

    /// A revision from its number, refused above `i64::MAX`.
    pub const fn new(n: u64) -> Result<Revision, RevisionOutOfRange> {
        if n > i64::MAX as u64 {
            Err(RevisionOutOfRange)
        } else {
            Ok(Revision(n))
        }
    }

    /// The revision's number.
    pub const fn get(self) -> u64 {
        self.0
    }

    /// The revision as a database column. Never fails: the range is checked on the way in.
    pub const fn to_i64(self) -> i64 {
        // In range by construction (`new` and `from_i64` are the only ways in).
        self.0 as i64
    }

    /// A revision read back from a database column; a negative value means damage.
    pub fn from_i64(stored: i64) -> Result<Revision, RevisionOutOfRange> {
        u64::try_from(stored)
            .map(Revision)
            .map_err(|_| RevisionOutOfRange)
    }

    /// The save after this one; `None` only at [`Revision::MAX`].
    pub fn next(self) -> Option<Revision> {
        if self == Revision::MAX {
            None
        } else {
            Some(Revision(self.0 + 1))
        }
    }
}

impl TryFrom<u64> for Revision {
    type Error = RevisionOutOfRange;
    fn try_from(n: u64) -> Result<Self, Self::Error> {
        Revision::new(n)
    }
}

impl From<Revision> for u64 {
    fn from(r: Revision) -> u64 {
        r.0
    }
}

/// Parses a revision typed on a command line: a whole number up to `i64::MAX`.
impl std::str::FromStr for Revision {
    type Err = RevisionParseError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let n: u64 = s.trim().parse().map_err(|_| RevisionParseError)?;
        Revision::new(n).map_err(|_| RevisionParseError)
    }
}

/// Text that is not a revision number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RevisionParseError;

impl fmt::Display for RevisionParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a revision is a whole number from 0 to 9223372036854775807")
    }
}

impl std::error::Error for RevisionParseError {}

impl fmt::Display for Revision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// Test and fixture shorthand: `rev(3)` for revision 3. Panics above `i64::MAX`, so only
/// for literals.
#[cfg(test)]
pub fn rev(n: u64) -> Revision {
    match Revision::new(n) {
        Ok(r) => r,
        Err(_) => panic!("revision literal out of range"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_range_is_what_both_databases_store() {
        assert_eq!(Revision::new(0).map(Revision::get), Ok(0));
        assert_eq!(Revision::new(7).map(Revision::to_i64), Ok(7));
        assert_eq!(Revision::new(i64::MAX as u64), Ok(Revision::MAX));
        assert_eq!(Revision::new(i64::MAX as u64 + 1), Err(RevisionOutOfRange));
        assert_eq!(Revision::new(u64::MAX), Err(RevisionOutOfRange));
        assert_eq!(Revision::from_i64(-1), Err(RevisionOutOfRange));
        assert_eq!(Revision::from_i64(i64::MAX), Ok(Revision::MAX));
        assert_eq!(Revision::MAX.to_i64(), i64::MAX);
    }

    #[test]
    fn next_stops_at_the_top_instead_of_wrapping() {
        assert_eq!(Revision::FIRST.next().map(Revision::get), Some(2));
        assert_eq!(Revision::MAX.next(), None);
    }

    #[test]
    fn json_is_a_plain_number_and_out_of_range_numbers_are_refused() {
        let r = Revision::new(42).unwrap();
        assert_eq!(serde_json::to_string(&r).unwrap(), "42");
        assert_eq!(serde_json::from_str::<Revision>("42").unwrap(), r);
        assert!(serde_json::from_str::<Revision>("18446744073709551615").is_err());
        assert!(serde_json::from_str::<Revision>("-1").is_err());
        assert!(serde_json::from_str::<Revision>("1.5").is_err());
    }

    #[test]
    fn command_line_text_parses_in_range_only() {
        assert_eq!("3".parse::<Revision>(), Ok(rev(3)));
        assert_eq!(" 12 ".parse::<Revision>(), Ok(rev(12)));
        for bad in ["", "-1", "1.0", "three", "9223372036854775808"] {
            assert_eq!(bad.parse::<Revision>(), Err(RevisionParseError), "{bad:?}");
        }
    }
}
