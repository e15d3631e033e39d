//! 12-lead ECGs ([`Ecg12Lead`]): when each was taken, its rhythm, whether it meets STEMI
//! criteria, whether it was transmitted and to whom, and whether the patient goes on the
//! primary PCI pathway.
//!
//! A rhythm has a SNOMED CT code where the record can name one it is sure of (the DICOM ECG
//! finding value set, CID 3230); the others travel as text.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// SNOMED CT's "12 lead electrocardiogram" procedure (DICOM CID 3670).
pub const SNOMED_12_LEAD_ECG: &str = "268400002";

/// The rhythm the crew read from the ECG.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EcgRhythm {
    SinusRhythm,
    SinusTachycardia,
    SinusBradycardia,
    AtrialFibrillation,
    AtrialFlutter,
    SupraventricularTachycardia,
    VentricularTachycardia,
    FirstDegreeBlock,
    SecondDegreeBlock,
    CompleteHeartBlock,
    Paced,
    Other,
}

impl EcgRhythm {
    pub const ALL: [EcgRhythm; 12] = [
        EcgRhythm::SinusRhythm,
        EcgRhythm::SinusTachycardia,
        EcgRhythm::SinusBradycardia,
        EcgRhythm::AtrialFibrillation,
        EcgRhythm::AtrialFlutter,
        EcgRhythm::SupraventricularTachycardia,
        EcgRhythm::VentricularTachycardia,
        EcgRhythm::FirstDegreeBlock,
        EcgRhythm::SecondDegreeBlock,
        EcgRhythm::CompleteHeartBlock,
        EcgRhythm::Paced,
        EcgRhythm::Other,
    ];

    pub fn label(self) -> &'static str {
        match self {
            EcgRhythm::SinusRhythm => "Sinus rhythm",
            EcgRhythm::SinusTachycardia => "Sinus tachycardia",
            EcgRhythm::SinusBradycardia => "Sinus bradycardia",
            EcgRhythm::AtrialFibrillation => "Atrial fibrillation",
            EcgRhythm::AtrialFlutter => "Atrial flutter",
            EcgRhythm::SupraventricularTachycardia => "SVT",
            EcgRhythm::VentricularTachycardia => "Ventricular tachycardia",
            EcgRhythm::FirstDegreeBlock => "First-degree AV block",
            EcgRhythm::SecondDegreeBlock => "Second-degree AV block",
            EcgRhythm::CompleteHeartBlock => "Complete heart block",
            EcgRhythm::Paced => "Paced rhythm",
            EcgRhythm::Other => "Other",
        }
    }

    /// The SNOMED CT code and display, where one is known for certain.
    pub fn snomed(self) -> Option<(&'static str, &'static str)> {
        Some(match self {
            EcgRhythm::AtrialFibrillation => ("49436004", "Atrial fibrillation"),
            EcgRhythm::SupraventricularTachycardia => ("6456007", "Supraventricular tachycardia"),
            EcgRhythm::VentricularTachycardia => ("25569003", "Ventricular tachycardia"),
            EcgRhythm::FirstDegreeBlock => ("270492004", "First degree atrioventricular block"),
            EcgRhythm::SecondDegreeBlock => ("195042002", "Second degree atrioventricular block"),
            EcgRhythm::CompleteHeartBlock => ("27885002", "Third degree atrioventricular block"),
            _ => return None,
        })
    }
}

/// One 12-lead ECG.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ecg12Lead {
    #[serde(default)]
    pub taken_utc: Option<DateTime<Utc>>,
    #[serde(default)]
    pub rhythm: Option<EcgRhythm>,
    /// The rhythm in words when it is "other".
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub rhythm_other: String,
    /// Whether the ECG meets STEMI criteria.
    #[serde(default)]
    pub stemi: Option<bool>,
    /// Whether the ECG was transmitted for an opinion.
    #[serde(default)]
    pub transmitted: Option<bool>,
    /// Who it was transmitted to ("Cath lab, Sample Royal Infirmary").
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub transmitted_to: String,
    /// Whether the patient was accepted for primary PCI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ppci: Option<bool>,
}

impl Ecg12Lead {
    /// The rhythm in words ("Atrial fibrillation", or the typed one for "other").
    pub fn rhythm_text(&self) -> Option<String> {
        self.rhythm.map(|r| match r {
            EcgRhythm::Other if !self.rhythm_other.trim().is_empty() => {
                self.rhythm_other.trim().to_owned()
            }
            r => r.label().to_owned(),
        })
    }

    /// What is still needed before sign-off.
    pub fn missing(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.taken_utc.is_none() {
            out.push("12-lead ECG: time taken");
        }
        let named = match self.rhythm {
            None => false,
            Some(EcgRhythm::Other) => !self.rhythm_other.trim().is_empty(),
            Some(_) => true,
        };
        if !named {
            out.push("12-lead ECG: rhythm");
        }
        if self.stemi.is_none() {
            out.push("12-lead ECG: STEMI criteria met or not");
        }
        match self.transmitted {
            None => out.push("12-lead ECG: transmitted or not"),
            Some(true) if self.transmitted_to.trim().is_empty() => {
                out.push("12-lead ECG: who it was transmitted to")
            }
            Some(_) => {}
        }
        if self.stemi == Some(true) && self.ppci.is_none() {
            out.push("12-lead ECG: primary PCI pathway or not");
        }
        out
    }

    /// "12-lead at 02:30: sinus rhythm, STEMI, transmitted to cath lab, PPCI pathway".
    pub fn summary(&self, clock: impl Fn(DateTime<Utc>) -> String) -> String {
        let mut parts = Vec::new();
        parts.push(
            self.rhythm_text()
                .map(|r| r.to_lowercase())
                .unwrap_or_else(|| "rhythm not recorded".to_owned()),
        );
        match self.stemi {
            Some(true) => parts.push("STEMI".to_owned()),
            Some(false) => parts.push("no STEMI".to_owned()),
            None => {}
        }
        match self.transmitted {
            Some(true) if !self.transmitted_to.trim().is_empty() => {
                parts.push(format!("transmitted to {}", self.transmitted_to.trim()))
            }
            Some(true) => parts.push("transmitted".to_owned()),
            _ => {}
        }
        match self.ppci {
            Some(true) => parts.push("PPCI pathway".to_owned()),
            Some(false) if self.stemi == Some(true) => parts.push("not for PPCI".to_owned()),
            _ => {}
        }
        let at = self
            .taken_utc
            .map(|t| format!(" at {}", clock(t)))
            .unwrap_or_default();
        format!("12-lead{at}: {}", parts.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::handover::clock as hhmm;
    use chrono::TimeZone;

    #[test]
    fn an_ecg_needs_time_rhythm_stemi_and_transmission() {
        assert_eq!(
            Ecg12Lead::default().missing(),
            [
                "12-lead ECG: time taken",
                "12-lead ECG: rhythm",
                "12-lead ECG: STEMI criteria met or not",
                "12-lead ECG: transmitted or not",
            ]
        );
    }

    #[test]
    fn a_stemi_needs_the_ppci_decision_and_a_transmission_its_recipient() {
        let mut ecg = Ecg12Lead {
            taken_utc: Some(Utc.with_ymd_and_hms(2026, 3, 1, 2, 30, 0).unwrap()),
            rhythm: Some(EcgRhythm::SinusRhythm),
            stemi: Some(true),
            transmitted: Some(true),
            ..Ecg12Lead::default()
        };
        assert_eq!(
            ecg.missing(),
            [
                "12-lead ECG: who it was transmitted to",
                "12-lead ECG: primary PCI pathway or not",
            ]
        );
        ecg.transmitted_to = "Cath lab".into();
        ecg.ppci = Some(true);
        assert!(ecg.missing().is_empty());
        assert_eq!(
            ecg.summary(hhmm),
            "12-lead at 02:30: sinus rhythm, STEMI, transmitted to Cath lab, PPCI pathway"
        );
    }

    #[test]
    fn other_rhythm_needs_its_name_and_known_rhythms_carry_codes() {
        let mut ecg = Ecg12Lead {
            rhythm: Some(EcgRhythm::Other),
            ..Ecg12Lead::default()
        };
        assert!(ecg.missing().contains(&"12-lead ECG: rhythm"));
        ecg.rhythm_other = "Junctional rhythm".into();
        assert!(!ecg.missing().contains(&"12-lead ECG: rhythm"));
        assert_eq!(ecg.rhythm_text().as_deref(), Some("Junctional rhythm"));
        assert_eq!(
            EcgRhythm::AtrialFibrillation.snomed().map(|c| c.0),
            Some("49436004")
        );
        assert_eq!(EcgRhythm::SinusRhythm.snomed(), None);
    }
}
