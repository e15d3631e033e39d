//! A drug dose as typed and its unit: [`parse_dose`] and [`DoseUnit`].
//!
//! Doses are where a misread character harms: "1,000" read with a decimal comma is 1, ".5"
//! is read as 5, "mcg" is misread as "mg". So a dose is digits with at most one decimal
//! point, nothing else; a comma anywhere is refused (it is either a thousands separator or a
//! decimal comma, and we cannot tell which); a naked decimal (".5") is refused; zero and
//! negative doses are refused. Units come from a fixed list and are written in full.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why typed text is not a dose. Messages name the rule, never the text typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DoseError {
    #[error("Enter the dose")]
    Empty,
    #[error("Use a point for decimals and no separators: 1000, not 1,000; 0.5, not 0,5")]
    Separator,
    #[error("Write a zero before the point: 0.5, not .5")]
    NakedDecimal,
    #[error("Enter the dose as a number, e.g. 300 or 0.5")]
    NotANumber,
    #[error("A dose must be more than zero")]
    NotPositive,
    #[error("Enter the dose to at most 3 decimal places")]
    TooPrecise,
    #[error("That dose is larger than any given: check the number and the unit")]
    TooLarge,
}

/// The largest number a dose may be typed as (in any unit); beyond it is a typing slip.
pub const MAX_DOSE: f64 = 100_000.0;

/// Reads a typed dose: "300", "0.5", "2.25". See the module notes for what is refused.
pub fn parse_dose(text: &str) -> Result<f64, DoseError> {
    let t = text.trim();
    if t.is_empty() {
        return Err(DoseError::Empty);
    }
    if t.contains([',', '\'', ' ', '_', '\u{a0}', '\u{202f}']) {
        return Err(DoseError::Separator);
    }
    if t.starts_with('-') {
        return Err(DoseError::NotPositive);
    }
    if t.starts_with('.') {
        return Err(DoseError::NakedDecimal);
    }
    let mut parts = t.split('.');
    let whole = parts.next().unwrap_or_default();
    let fraction = parts.next();
    if parts.next().is_some()
        || whole.is_empty()
        || !whole.chars().all(|c| c.is_ascii_digit())
        || fraction.is_some_and(|f| f.is_empty() || !f.chars().all(|c| c.is_ascii_digit()))
    {
        return Err(DoseError::NotANumber);
    }
    if fraction.is_some_and(|f| f.len() > 3) {
        return Err(DoseError::TooPrecise);
    }
    let value: f64 = t.parse().map_err(|_| DoseError::NotANumber)?;
    if value <= 0.0 {
        return Err(DoseError::NotPositive);
    }
    if value > MAX_DOSE {
        return Err(DoseError::TooLarge);
    }
    Ok(value)
}

/// The unit a dose is given in, written in full on every screen and output.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum DoseUnit {
    Micrograms,
    Milligrams,
    Grams,
    Millilitres,
    Units,
    LitresPerMinute,
    /// A unit recorded before the list was fixed, kept exactly as it was typed.
    Recorded(String),
}

impl DoseUnit {
    /// The units a crew can choose, in the order offered.
    pub const CHOICES: [DoseUnit; 6] = [
        DoseUnit::Micrograms,
        DoseUnit::Milligrams,
        DoseUnit::Grams,
        DoseUnit::Millilitres,
        DoseUnit::Units,
        DoseUnit::LitresPerMinute,
    ];

    /// The unit written in full.
    pub fn label(&self) -> &str {
        match self {
            DoseUnit::Micrograms => "micrograms",
            DoseUnit::Milligrams => "milligrams",
            DoseUnit::Grams => "grams",
            DoseUnit::Millilitres => "millilitres",
            DoseUnit::Units => "units",
            DoseUnit::LitresPerMinute => "litres per minute",
            DoseUnit::Recorded(text) => text,
        }
    }

    /// The unit for one of it ("gram" in "1 gram").
    pub fn singular(&self) -> &str {
        match self {
            DoseUnit::Micrograms => "microgram",
            DoseUnit::Milligrams => "milligram",
            DoseUnit::Grams => "gram",
            DoseUnit::Millilitres => "millilitre",
            DoseUnit::Units => "unit",
            DoseUnit::LitresPerMinute => "litre per minute",
            DoseUnit::Recorded(text) => text,
        }
    }

    /// An amount as it is read aloud: "300 milligrams", "1 gram", "0.5 grams".
    pub fn amount(&self, dose: f64) -> String {
        if dose == 1.0 {
            format!("1 {}", self.singular())
        } else {
            format!("{dose} {}", self.label())
        }
    }

    /// The UCUM code for FHIR, where one exists.
    pub fn ucum(&self) -> Option<&'static str> {
        match self {
            DoseUnit::Micrograms => Some("ug"),
            DoseUnit::Milligrams => Some("mg"),
            DoseUnit::Grams => Some("g"),
            DoseUnit::Millilitres => Some("mL"),
            DoseUnit::Units => Some("[U]"),
            DoseUnit::LitresPerMinute => Some("L/min"),
            DoseUnit::Recorded(_) => None,
        }
    }
}

impl From<String> for DoseUnit {
    /// Reads a stored unit: the full names, and the abbreviations older records used.
    fn from(text: String) -> Self {
        match text.trim().to_lowercase().as_str() {
            "micrograms" | "microgram" | "mcg" | "µg" | "ug" => DoseUnit::Micrograms,
            "milligrams" | "milligram" | "mg" => DoseUnit::Milligrams,
            "grams" | "gram" | "g" => DoseUnit::Grams,
            "millilitres" | "millilitre" | "ml" => DoseUnit::Millilitres,
            "units" | "unit" => DoseUnit::Units,
            "litres per minute" | "l/min" | "lpm" => DoseUnit::LitresPerMinute,
            _ => DoseUnit::Recorded(text),
        }
    }
}

impl From<DoseUnit> for String {
    fn from(unit: DoseUnit) -> String {
        match unit {
            DoseUnit::Recorded(text) => text,
            other => other.label().to_owned(),
        }
    }
}

impl fmt::Display for DoseUnit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.label())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doses_read_exactly_as_typed_or_are_refused() {
        let cases: &[(&str, Result<f64, DoseError>)] = &[
            ("300", Ok(300.0)),
            (" 1000 ", Ok(1000.0)),
            ("0.5", Ok(0.5)),
            ("2.25", Ok(2.25)),
            ("5.0", Ok(5.0)),
            ("0.125", Ok(0.125)),
            // A comma was read as a decimal point: "1,000" mg became 1 mg.
            ("1,000", Err(DoseError::Separator)),
            ("0,5", Err(DoseError::Separator)),
            ("1 000", Err(DoseError::Separator)),
            ("1'000", Err(DoseError::Separator)),
            (".5", Err(DoseError::NakedDecimal)),
            ("0", Err(DoseError::NotPositive)),
            ("0.0", Err(DoseError::NotPositive)),
            ("-5", Err(DoseError::NotPositive)),
            ("", Err(DoseError::Empty)),
            ("   ", Err(DoseError::Empty)),
            ("1.2.3", Err(DoseError::NotANumber)),
            ("5.", Err(DoseError::NotANumber)),
            ("5mg", Err(DoseError::NotANumber)),
            ("1e3", Err(DoseError::NotANumber)),
            ("NaN", Err(DoseError::NotANumber)),
            ("inf", Err(DoseError::NotANumber)),
            ("+5", Err(DoseError::NotANumber)),
            ("0.0625", Err(DoseError::TooPrecise)),
            ("1000000", Err(DoseError::TooLarge)),
        ];
        for (typed, want) in cases {
            assert_eq!(parse_dose(typed), *want, "{typed:?}");
        }
    }

    #[test]
    fn amounts_read_as_they_are_said() {
        assert_eq!(DoseUnit::Grams.amount(1.0), "1 gram");
        assert_eq!(DoseUnit::Grams.amount(0.5), "0.5 grams");
        assert_eq!(DoseUnit::Milligrams.amount(300.0), "300 milligrams");
        assert_eq!(DoseUnit::Units.amount(1.0), "1 unit");
        assert_eq!(DoseUnit::Recorded("puffs".into()).amount(2.0), "2 puffs");
    }

    #[test]
    fn refusals_do_not_repeat_what_was_typed() {
        let msg = parse_dose("1,234").unwrap_err().to_string();
        assert!(!msg.contains("1,234"));
    }

    #[test]
    fn units_are_written_in_full_and_older_abbreviations_read_back() {
        for (stored, unit) in [
            ("mcg", DoseUnit::Micrograms),
            ("micrograms", DoseUnit::Micrograms),
            ("mg", DoseUnit::Milligrams),
            ("MG", DoseUnit::Milligrams),
            ("g", DoseUnit::Grams),
            ("ml", DoseUnit::Millilitres),
            ("units", DoseUnit::Units),
            ("L/min", DoseUnit::LitresPerMinute),
        ] {
            let read: DoseUnit = serde_json::from_str(&format!("{stored:?}")).unwrap();
            assert_eq!(read, unit, "{stored}");
        }
        assert_eq!(
            serde_json::to_string(&DoseUnit::Micrograms).unwrap(),
            "\"micrograms\""
        );
        let odd: DoseUnit = serde_json::from_str("\"puffs\"").unwrap();
        assert_eq!(odd, DoseUnit::Recorded("puffs".into()));
        assert_eq!(serde_json::to_string(&odd).unwrap(), "\"puffs\"");
        for u in DoseUnit::CHOICES {
            assert_eq!(DoseUnit::from(u.label().to_owned()), u, "round trip");
            assert!(u.label().len() > 3, "written in full: {}", u.label());
        }
    }
}
