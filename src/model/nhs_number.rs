//! The NHS number: ten digits with a Modulus 11 check digit (NHS Digital validation rules).
//!
//! Parsing is the only way to get an [`NhsNumber`], so a stored or displayed NHS number has
//! always passed the check. Input with spaces or hyphens (`943 476 5919`) is accepted and
//! stored without them.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A checked NHS number, stored as its ten digits without separators.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct NhsNumber(String);

/// Why a piece of text is not an NHS number, in words a paramedic can act on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NhsNumberError {
    #[error("NHS number must be 10 digits (found {found})")]
    WrongLength { found: usize },
    #[error("NHS number may contain only digits and spaces")]
    NotDigits,
    #[error("NHS number check digit does not match: check for a typing error")]
    CheckDigitMismatch,
    #[error("not a valid NHS number (no check digit is possible): check for a typing error")]
    CheckDigitTen,
}

impl NhsNumber {
    /// Parses user input, ignoring spaces and hyphens, and applies the Modulus 11 check.
    pub fn parse(input: &str) -> Result<Self, NhsNumberError> {
        let mut digits = [0u32; 10];
        let mut count = 0usize;
        for ch in input.chars() {
            if ch == ' ' || ch == '-' {
                continue;
            }
            let Some(d) = ch.to_digit(10) else {
                return Err(NhsNumberError::NotDigits);
            };
            if count < 10 {
                digits[count] = d;
            }
            count += 1;
        }
        if count != 10 {
            return Err(NhsNumberError::WrongLength { found: count });
        }
        let mut first_nine = [0u32; 9];
        first_nine.copy_from_slice(&digits[..9]);
        let check = Self::check_digit(&first_nine).ok_or(NhsNumberError::CheckDigitTen)?;
        if check != digits[9] {
            return Err(NhsNumberError::CheckDigitMismatch);
        }
        Ok(Self(
            digits.iter().map(|d| char::from(b'0' + *d as u8)).collect(),
        ))
    }

    /// The Modulus 11 check digit for the first nine digits (weights 10 down to 2); `None`
    /// when the check comes out as 10, which no valid NHS number has.
    pub fn check_digit(first_nine: &[u32; 9]) -> Option<u32> {
        let sum: u32 = first_nine
            .iter()
            .zip((2..=10).rev())
            .map(|(d, w)| d * w)
            .sum();
        match 11 - (sum % 11) {
            11 => Some(0),
            10 => None,
            c => Some(c),
        }
    }

    /// The ten digits without separators, as stored and sent to other systems.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The 3-3-4 grouping crews read aloud and the NHS prints (`943 476 5919`).
    pub fn formatted(&self) -> String {
        let s = &self.0;
        format!("{} {} {}", &s[0..3], &s[3..6], &s[6..10])
    }

    /// True for the 999 000 0000 – 999 999 9999 range reserved for test data.
    pub fn is_test_range(&self) -> bool {
        self.0.starts_with("999")
    }
}

impl TryFrom<String> for NhsNumber {
    type Error = NhsNumberError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<NhsNumber> for String {
    fn from(value: NhsNumber) -> Self {
        value.0
    }
}

impl fmt::Display for NhsNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.formatted())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn valid_examples_from_nhs_digital() {
        let n = NhsNumber::parse("9434765919").unwrap();
        assert_eq!(n.as_str(), "9434765919");
        assert_eq!(n.formatted(), "943 476 5919");
    }

    #[test]
    fn spaces_are_accepted_and_stripped() {
        assert_eq!(
            NhsNumber::parse("943 476 5919").unwrap().as_str(),
            "9434765919"
        );
        assert_eq!(
            NhsNumber::parse(" 943-476-5919 ").unwrap().as_str(),
            "9434765919"
        );
    }

    #[test]
    fn invalid_check_digit_is_rejected() {
        assert_eq!(
            NhsNumber::parse("4857773456"),
            Err(NhsNumberError::CheckDigitMismatch)
        );
    }

    #[test]
    fn check_digit_of_ten_is_invalid() {
        // Digits 1-9 of 000000006: sum = 6*2 = 12, 12 mod 11 = 1, check = 10 -> invalid.
        assert_eq!(
            NhsNumber::parse("0000000060"),
            Err(NhsNumberError::CheckDigitTen)
        );
    }

    #[test]
    fn check_digit_of_eleven_becomes_zero() {
        // All zeros: sum 0, remainder 0, 11 - 0 = 11 -> check digit 0.
        assert!(NhsNumber::parse("0000000000").is_ok());
    }

    #[test]
    fn wrong_length_and_letters_are_rejected() {
        assert_eq!(
            NhsNumber::parse("943476591"),
            Err(NhsNumberError::WrongLength { found: 9 })
        );
        assert_eq!(
            NhsNumber::parse("94347659190"),
            Err(NhsNumberError::WrongLength { found: 11 })
        );
        assert_eq!(
            NhsNumber::parse("94347659l9"),
            Err(NhsNumberError::NotDigits)
        );
        assert_eq!(
            NhsNumber::parse(""),
            Err(NhsNumberError::WrongLength { found: 0 })
        );
    }

    #[test]
    fn deserialising_applies_the_check() {
        let ok: Result<NhsNumber, _> = serde_json::from_str("\"9434765919\"");
        assert!(ok.is_ok());
        let bad: Result<NhsNumber, _> = serde_json::from_str("\"4857773456\"");
        assert!(bad.is_err());
    }

    #[test]
    fn test_range_is_recognised() {
        // 9*10 + 9*9 + 9*8 + 1*2 = 245; 245 mod 11 = 3; check = 11 - 3 = 8.
        let n = NhsNumber::parse("9990000018").unwrap();
        assert!(n.is_test_range());
        assert!(!NhsNumber::parse("9434765919").unwrap().is_test_range());
    }
}
