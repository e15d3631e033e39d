//! One-tap answers for the commonest entries on a shift: presenting complaints and where a
//! 12-lead ECG is sent, and the rule for offering adult doses (the doses themselves are the
//! trust formulary's usual adult doses, `super::reference`).
//!
//! A pick only fills the form or field it belongs to: the crew sees the filled entry and adds
//! it themselves, so nothing reaches the record unseen.

/// Complaints crews write most often, offered as one-tap answers for "Presenting complaint".
pub const PRESENTING_COMPLAINTS: [&str; 10] = [
    "Chest pain",
    "Breathing difficulty",
    "Collapse",
    "Fall",
    "Stroke symptoms",
    "Abdominal pain",
    "Seizure",
    "Unwell, infection suspected",
    "Injury",
    "Mental health crisis",
];

/// Where a transmitted 12-lead ECG usually goes.
pub const ECG_SENT_TO: [&str; 3] = [
    "PPCI centre (cath lab)",
    "Emergency department",
    "Clinical hub",
];

/// Whether the adult picks may be offered: not for anyone known to be under 18. An unknown
/// age gets them (most patients are adults) with the same check-before-adding as everyone.
pub fn adult_picks_allowed(age_years: Option<u32>) -> bool {
    age_years.is_none_or(|a| a >= 18)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn children_are_not_offered_adult_doses() {
        assert!(!adult_picks_allowed(Some(12)));
        assert!(!adult_picks_allowed(Some(17)));
        assert!(adult_picks_allowed(Some(18)));
        assert!(adult_picks_allowed(None));
    }
}
