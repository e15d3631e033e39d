//! A supervisor's decision on a completed record: what the supervisor decided, as the crew,
//! the device store and the server all name it.
//!
//! Lives in `model` because it is part of the clinical record's life, not of a wire format:
//! the store keeps it, the screens show it and `protocol` sends it (re-exported there). Pure
//! data, no I/O.

use serde::{Deserialize, Serialize};

/// A supervisor's decision on a completed record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Approved,
    /// Returned to the crew with a comment: they amend and sign again.
    Returned,
    /// Flagged for clinical audit.
    Flagged,
}

impl Decision {
    /// As stored and sent.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Approved => "approved",
            Decision::Returned => "returned",
            Decision::Flagged => "flagged",
        }
    }

    /// Parses [`Decision::as_str`].
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "approved" => Some(Decision::Approved),
            "returned" => Some(Decision::Returned),
            "flagged" => Some(Decision::Flagged),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stored_text_round_trips_and_matches_serde() {
        for d in [Decision::Approved, Decision::Returned, Decision::Flagged] {
            assert_eq!(Decision::parse(d.as_str()), Some(d));
            assert_eq!(
                serde_json::to_string(&d).unwrap_or_default(),
                format!("\"{}\"", d.as_str())
            );
        }
        assert_eq!(Decision::parse("Returned"), None);
    }
}
