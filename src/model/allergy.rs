//! What the allergies field says, read the way a clinician reads it: [`AllergyStatus`].
//!
//! The field is free text ("NKDA", "Penicillin – rash"). Three short answers mean something
//! precise and must not be confused at handover: no known *drug* allergy (NKDA), no known
//! allergy of any kind (NKA), and "unknown" (the patient could not say), which is not an
//! allergy and not the absence of one.

/// SNOMED CT: no known drug allergy.
pub const SNOMED_NO_KNOWN_DRUG_ALLERGY: &str = "409137002";
/// SNOMED CT: no known allergy.
pub const SNOMED_NO_KNOWN_ALLERGY: &str = "716186003";

/// The allergies field, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AllergyStatus {
    /// Nothing written.
    NotRecorded,
    /// "NKDA": no known drug allergy (other allergies not excluded).
    NoKnownDrugAllergy,
    /// "NKA", "none": no known allergy of any kind.
    NoKnownAllergy,
    /// "Unknown", "unable to establish": the allergy status is not known.
    Unknown,
    /// Allergies as written.
    Recorded(String),
}

impl AllergyStatus {
    /// The record's allergies: the classes ticked from the formulary's list (each an
    /// allergy) with the free text, or the text's own answer when no class is ticked.
    pub fn of_record(text: &str, classes: &[String]) -> AllergyStatus {
        if classes.is_empty() {
            return Self::of(text);
        }
        let mut parts: Vec<String> = classes.to_vec();
        // "NKDA" beside a ticked class contradicts it: the class stands, said plainly.
        if let AllergyStatus::Recorded(t) = Self::of(text) {
            parts.push(t);
        }
        AllergyStatus::Recorded(parts.join(", "))
    }

    /// Classifies the field's text (case, spaces and a final full stop ignored).
    pub fn of(text: &str) -> AllergyStatus {
        let t = text.trim();
        let key = t
            .trim_end_matches('.')
            .to_lowercase()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        match key.as_str() {
            "" => AllergyStatus::NotRecorded,
            "nkda" | "no known drug allergy" | "no known drug allergies" => {
                AllergyStatus::NoKnownDrugAllergy
            }
            "nka" | "none" | "nil" | "nil known" | "none known" | "no known allergy"
            | "no known allergies" => AllergyStatus::NoKnownAllergy,
            "unknown"
            | "not known"
            | "unable to establish"
            | "unable to ascertain"
            | "allergy status unknown" => AllergyStatus::Unknown,
            _ => AllergyStatus::Recorded(t.to_owned()),
        }
    }

    /// The line printed at the top of a handover, said in full.
    pub fn headline(&self) -> String {
        match self {
            AllergyStatus::NotRecorded => "Allergies: not recorded".to_owned(),
            AllergyStatus::NoKnownDrugAllergy => {
                "Allergies: no known drug allergy (NKDA)".to_owned()
            }
            AllergyStatus::NoKnownAllergy => "Allergies: no known allergy".to_owned(),
            AllergyStatus::Unknown => "Allergies: UNKNOWN (unable to establish)".to_owned(),
            AllergyStatus::Recorded(t) => format!("ALLERGIES: {t}"),
        }
    }

    /// The SNOMED CT code for the "no known" answers.
    pub fn snomed(&self) -> Option<(&'static str, &'static str)> {
        match self {
            AllergyStatus::NoKnownDrugAllergy => {
                Some((SNOMED_NO_KNOWN_DRUG_ALLERGY, "No known drug allergy"))
            }
            AllergyStatus::NoKnownAllergy => Some((SNOMED_NO_KNOWN_ALLERGY, "No known allergy")),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticked_classes_are_allergies_whatever_the_text_says() {
        let classes = ["penicillins".to_owned()];
        assert_eq!(
            AllergyStatus::of_record("rash", &classes),
            AllergyStatus::Recorded("penicillins, rash".into())
        );
        assert_eq!(
            AllergyStatus::of_record("NKDA", &classes),
            AllergyStatus::Recorded("penicillins".into())
        );
        assert_eq!(
            AllergyStatus::of_record("NKDA", &[]),
            AllergyStatus::NoKnownDrugAllergy
        );
    }

    #[test]
    fn the_short_answers_are_told_apart() {
        use AllergyStatus::*;
        for (text, want) in [
            ("", NotRecorded),
            ("  ", NotRecorded),
            ("NKDA", NoKnownDrugAllergy),
            ("nkda.", NoKnownDrugAllergy),
            ("No known drug allergies", NoKnownDrugAllergy),
            ("NKA", NoKnownAllergy),
            ("None", NoKnownAllergy),
            ("no  known allergies", NoKnownAllergy),
            ("Unknown", Unknown),
            ("Unable to establish", Unknown),
            ("Penicillin – rash", Recorded("Penicillin – rash".into())),
            ("NKDA but hay fever", Recorded("NKDA but hay fever".into())),
        ] {
            assert_eq!(AllergyStatus::of(text), want, "{text:?}");
        }
        assert_eq!(NoKnownDrugAllergy.snomed().unwrap().0, "409137002");
        assert_eq!(NoKnownAllergy.snomed().unwrap().0, "716186003");
        assert_eq!(Unknown.snomed(), None);
        assert!(
            Recorded("Latex".into())
                .headline()
                .starts_with("ALLERGIES: Latex")
        );
    }
}
