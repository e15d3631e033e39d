//! The paediatric section ([`PaediatricAssessment`]): the child's weight and how it was
//! found (measured, estimated, or worked out from age), which every weight-based dose hangs
//! on; and the age in months for a child under two, which years alone hide.

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};

/// How the weight was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WeightMethod {
    Measured,
    /// Told by a parent or carer, or the crew's estimate.
    Estimated,
    /// Worked out from the child's age with the service's formula.
    FromAge,
}

impl WeightMethod {
    pub const ALL: [WeightMethod; 3] = [
        WeightMethod::Measured,
        WeightMethod::Estimated,
        WeightMethod::FromAge,
    ];

    pub fn label(self) -> &'static str {
        match self {
            WeightMethod::Measured => "Measured",
            WeightMethod::Estimated => "Estimated or told",
            WeightMethod::FromAge => "From age",
        }
    }
}

/// The lightest and heaviest weights a child's record accepts, in kilograms.
pub const WEIGHT_KG_RANGE: std::ops::RangeInclusive<f64> = 0.3..=150.0;

/// Why a typed weight was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightError {
    NotANumber,
    OutOfRange,
}

impl WeightError {
    pub fn message(self) -> &'static str {
        match self {
            WeightError::NotANumber => "Type the weight in kilograms, for example 12.5",
            WeightError::OutOfRange => "A weight must be between 0.3 and 150 kg",
        }
    }
}

/// Reads a typed weight in kilograms ("12.5", "12,5" is refused: a comma is never a point).
pub fn parse_weight_kg(text: &str) -> Result<f64, WeightError> {
    let t = text.trim().trim_end_matches("kg").trim();
    let kg: f64 = t.parse().map_err(|_| WeightError::NotANumber)?;
    if !kg.is_finite() || !WEIGHT_KG_RANGE.contains(&kg) {
        return Err(WeightError::OutOfRange);
    }
    Ok(kg)
}

/// The paediatric section, present while "Paediatric" is one of the record's presentations.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PaediatricAssessment {
    #[serde(default)]
    pub weight_kg: Option<f64>,
    #[serde(default)]
    pub weight_method: Option<WeightMethod>,
}

impl PaediatricAssessment {
    /// What is still needed before sign-off.
    pub fn missing(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.weight_kg.is_none() {
            out.push("Paediatric: weight");
        }
        if self.weight_method.is_none() {
            out.push("Paediatric: how the weight was found");
        }
        out
    }

    /// "12.5 kg (estimated or told)"; `None` before a weight is given.
    pub fn weight_text(&self) -> Option<String> {
        let kg = self.weight_kg?;
        Some(match self.weight_method {
            Some(m) => format!("{kg} kg ({})", m.label().to_lowercase()),
            None => format!("{kg} kg"),
        })
    }
}

/// Whole months from `dob` to `on`, for a child under two; `None` from two years on (or a
/// birth date after `on`).
pub fn age_months_under_two(dob: NaiveDate, on: NaiveDate) -> Option<u32> {
    let months = on.years_since(dob).map(|y| y * 12)?;
    let mut m = months;
    // Add the months of the current year of life.
    while dob
        .checked_add_months(chrono::Months::new(m + 1))
        .is_some_and(|d| d <= on)
    {
        m += 1;
    }
    (m < 24).then_some(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_weight_is_read_with_a_point_and_refused_out_of_range() {
        assert_eq!(parse_weight_kg("12.5"), Ok(12.5));
        assert_eq!(parse_weight_kg(" 9 kg"), Ok(9.0));
        assert_eq!(parse_weight_kg("12,5"), Err(WeightError::NotANumber));
        assert_eq!(parse_weight_kg("0.1"), Err(WeightError::OutOfRange));
        assert_eq!(parse_weight_kg("NaN"), Err(WeightError::OutOfRange));
        assert_eq!(parse_weight_kg("inf"), Err(WeightError::OutOfRange));
    }

    #[test]
    fn months_are_given_under_two_only() {
        let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day).unwrap();
        assert_eq!(
            age_months_under_two(d(2026, 1, 15), d(2026, 3, 14)),
            Some(1)
        );
        assert_eq!(
            age_months_under_two(d(2026, 1, 15), d(2026, 3, 15)),
            Some(2)
        );
        assert_eq!(
            age_months_under_two(d(2025, 1, 31), d(2026, 3, 1)),
            Some(13)
        );
        assert_eq!(age_months_under_two(d(2024, 3, 1), d(2026, 3, 1)), None);
        assert_eq!(age_months_under_two(d(2026, 4, 1), d(2026, 3, 1)), None);
    }

    #[test]
    fn a_child_needs_a_weight_and_its_method() {
        let mut p = PaediatricAssessment::default();
        assert_eq!(
            p.missing(),
            ["Paediatric: weight", "Paediatric: how the weight was found"]
        );
        p.weight_kg = Some(12.5);
        p.weight_method = Some(WeightMethod::Estimated);
        assert!(p.missing().is_empty());
        assert_eq!(
            p.weight_text().as_deref(),
            Some("12.5 kg (estimated or told)")
        );
    }
}
