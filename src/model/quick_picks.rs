//! One-tap answers for the commonest entries on a shift: presenting complaints, the adult
//! drugs given most often, and where a 12-lead ECG is sent.
//!
//! A pick only fills the form or field it belongs to: the crew sees the filled entry and adds
//! it themselves, so nothing reaches the record unseen. The drug picks are the usual adult
//! doses of the national ambulance guidelines and are offered for adults only; a trust
//! formulary, once the tablet holds one, is the authority for doses.

use super::DoseUnit;

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

/// One usual adult drug entry, filled into the drug form by one tap.
#[derive(Debug, Clone, PartialEq)]
pub struct CommonDrug {
    pub drug: &'static str,
    /// The dose as the crew would type it (a point, never a comma).
    pub dose: &'static str,
    pub unit: DoseUnit,
    /// One of the editor's routes.
    pub route: &'static str,
}

impl CommonDrug {
    /// "Aspirin 300 mg oral": the button's text.
    pub fn label(&self) -> String {
        let unit = match self.unit {
            DoseUnit::Micrograms => "micrograms",
            DoseUnit::Milligrams => "mg",
            DoseUnit::Grams => "g",
            _ => self.unit.label(),
        };
        // "oral", "sublingual", but "IV" and "IM" as written.
        let route = if self.route.chars().all(|c| c.is_ascii_uppercase()) {
            self.route.to_owned()
        } else {
            self.route.to_lowercase()
        };
        format!("{} {} {unit} {route}", self.drug, self.dose)
    }
}

/// The usual adult doses offered as picks (never for a patient under 18).
pub const COMMON_ADULT_DRUGS: [CommonDrug; 6] = [
    CommonDrug {
        drug: "Aspirin",
        dose: "300",
        unit: DoseUnit::Milligrams,
        route: "Oral",
    },
    CommonDrug {
        drug: "GTN",
        dose: "400",
        unit: DoseUnit::Micrograms,
        route: "Sublingual",
    },
    CommonDrug {
        drug: "Salbutamol",
        dose: "5",
        unit: DoseUnit::Milligrams,
        route: "Nebulised",
    },
    CommonDrug {
        drug: "Ipratropium bromide",
        dose: "500",
        unit: DoseUnit::Micrograms,
        route: "Nebulised",
    },
    CommonDrug {
        drug: "Paracetamol",
        dose: "1",
        unit: DoseUnit::Grams,
        route: "Oral",
    },
    CommonDrug {
        drug: "Ondansetron",
        dose: "4",
        unit: DoseUnit::Milligrams,
        route: "IV",
    },
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
    fn every_pick_dose_reads_as_a_dose() {
        for d in &COMMON_ADULT_DRUGS {
            let dose = super::super::parse_dose(d.dose).unwrap();
            assert!(dose > 0.0, "{}", d.drug);
        }
    }

    #[test]
    fn picks_say_their_dose_unit_and_route() {
        assert_eq!(COMMON_ADULT_DRUGS[0].label(), "Aspirin 300 mg oral");
        assert_eq!(
            COMMON_ADULT_DRUGS[1].label(),
            "GTN 400 micrograms sublingual"
        );
        assert_eq!(COMMON_ADULT_DRUGS[4].label(), "Paracetamol 1 g oral");
        assert_eq!(COMMON_ADULT_DRUGS[5].label(), "Ondansetron 4 mg IV");
    }

    #[test]
    fn children_are_not_offered_adult_doses() {
        assert!(!adult_picks_allowed(Some(12)));
        assert!(!adult_picks_allowed(Some(17)));
        assert!(adult_picks_allowed(Some(18)));
        assert!(adult_picks_allowed(None));
    }
}
