//! The stroke / TIA assessment ([`StrokeAssessment`]): BE-FAST findings, when the symptoms
//! began or when the patient was last known well, the pathway chosen and when the receiving
//! unit was pre-alerted.
//!
//! The onset time is the one thrombolysis and thrombectomy decisions hang on, so it is kept
//! apart from the call time and said to be either a witnessed onset or the last time the
//! patient was known to be well (a stroke found on waking is timed from going to bed). FAST
//! (face, arms, speech) is asked on every stroke record; balance and eyes (the "BE" of
//! BE-FAST) are recorded when assessed.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One finding of a BE-FAST item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Finding {
    Normal,
    Abnormal,
}

impl Finding {
    pub const ALL: [Finding; 2] = [Finding::Normal, Finding::Abnormal];

    pub fn label(self) -> &'static str {
        match self {
            Finding::Normal => "Normal",
            Finding::Abnormal => "Abnormal",
        }
    }
}

/// The items of BE-FAST, in the order they are asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BeFast {
    Balance,
    Eyes,
    Face,
    Arms,
    Speech,
}

impl BeFast {
    pub const ALL: [BeFast; 5] = [
        BeFast::Balance,
        BeFast::Eyes,
        BeFast::Face,
        BeFast::Arms,
        BeFast::Speech,
    ];

    pub fn label(self) -> &'static str {
        match self {
            BeFast::Balance => "Balance",
            BeFast::Eyes => "Eyes (vision)",
            BeFast::Face => "Face",
            BeFast::Arms => "Arms",
            BeFast::Speech => "Speech",
        }
    }

    /// The word used when the finding is abnormal ("face", "arm").
    fn word(self) -> &'static str {
        match self {
            BeFast::Balance => "balance",
            BeFast::Eyes => "vision",
            BeFast::Face => "face",
            BeFast::Arms => "arm",
            BeFast::Speech => "speech",
        }
    }

    /// True for the three items of FAST, asked on every stroke record.
    pub fn is_fast(self) -> bool {
        matches!(self, BeFast::Face | BeFast::Arms | BeFast::Speech)
    }
}

/// What the onset time means.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OnsetKind {
    /// Someone saw the symptoms begin (or the patient can say when they did).
    Witnessed,
    /// The last time the patient was known to be well (found with symptoms, woke with them).
    LastKnownWell,
}

impl OnsetKind {
    pub const ALL: [OnsetKind; 2] = [OnsetKind::Witnessed, OnsetKind::LastKnownWell];

    pub fn label(self) -> &'static str {
        match self {
            OnsetKind::Witnessed => "Witnessed onset",
            OnsetKind::LastKnownWell => "Last known well",
        }
    }
}

/// Where the patient is taken for the suspected stroke.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StrokePathway {
    /// Direct to a hyperacute stroke unit, pre-alerted.
    HyperacuteStrokeUnit,
    /// To the nearest emergency department (outside the time window, or unstable).
    EmergencyDepartment,
    /// Not on a stroke pathway (symptoms resolved and referred as TIA, or another cause).
    NotOnPathway,
}

impl StrokePathway {
    pub const ALL: [StrokePathway; 3] = [
        StrokePathway::HyperacuteStrokeUnit,
        StrokePathway::EmergencyDepartment,
        StrokePathway::NotOnPathway,
    ];

    pub fn label(self) -> &'static str {
        match self {
            StrokePathway::HyperacuteStrokeUnit => "Hyperacute stroke unit",
            StrokePathway::EmergencyDepartment => "Emergency department",
            StrokePathway::NotOnPathway => "Not on a stroke pathway",
        }
    }
}

/// The stroke section, present while "Stroke / TIA" is one of the record's presentations.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StrokeAssessment {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub balance: Option<Finding>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub eyes: Option<Finding>,
    #[serde(default)]
    pub face: Option<Finding>,
    #[serde(default)]
    pub arms: Option<Finding>,
    #[serde(default)]
    pub speech: Option<Finding>,
    #[serde(default)]
    pub onset: Option<OnsetKind>,
    /// When the symptoms began, or when the patient was last known well ([`Self::onset`]).
    #[serde(default)]
    pub onset_utc: Option<DateTime<Utc>>,
    #[serde(default)]
    pub pathway: Option<StrokePathway>,
    /// When the receiving stroke unit was pre-alerted.
    #[serde(default)]
    pub pre_alert_utc: Option<DateTime<Utc>>,
}

impl StrokeAssessment {
    pub fn finding(&self, item: BeFast) -> Option<Finding> {
        match item {
            BeFast::Balance => self.balance,
            BeFast::Eyes => self.eyes,
            BeFast::Face => self.face,
            BeFast::Arms => self.arms,
            BeFast::Speech => self.speech,
        }
    }

    pub fn finding_mut(&mut self, item: BeFast) -> &mut Option<Finding> {
        match item {
            BeFast::Balance => &mut self.balance,
            BeFast::Eyes => &mut self.eyes,
            BeFast::Face => &mut self.face,
            BeFast::Arms => &mut self.arms,
            BeFast::Speech => &mut self.speech,
        }
    }

    /// True when any finding recorded is abnormal.
    pub fn positive(&self) -> bool {
        BeFast::ALL
            .iter()
            .any(|i| self.finding(*i) == Some(Finding::Abnormal))
    }

    /// What is still needed before sign-off. `glucose_measured` says whether any observation
    /// set has a blood glucose: hypoglycaemia mimics a stroke, so a stroke record needs one.
    pub fn missing(&self, glucose_measured: bool) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.face.is_none() {
            out.push("Stroke: face");
        }
        if self.arms.is_none() {
            out.push("Stroke: arms");
        }
        if self.speech.is_none() {
            out.push("Stroke: speech");
        }
        if self.onset.is_none() {
            out.push("Stroke: witnessed onset or last known well");
        }
        if self.onset_utc.is_none() {
            out.push("Stroke: onset or last-known-well time");
        }
        if !glucose_measured {
            out.push("Stroke: blood glucose (in an observation set)");
        }
        match self.pathway {
            None => out.push("Stroke: pathway"),
            Some(StrokePathway::HyperacuteStrokeUnit) if self.pre_alert_utc.is_none() => {
                out.push("Stroke: time the stroke unit was pre-alerted")
            }
            Some(_) => {}
        }
        out
    }

    /// "FAST positive: face, arm" / "BE-FAST negative" / "FAST not assessed".
    pub fn findings_text(&self) -> String {
        let assessed: Vec<BeFast> = BeFast::ALL
            .into_iter()
            .filter(|i| self.finding(*i).is_some())
            .collect();
        if assessed.is_empty() {
            return "FAST not assessed".to_owned();
        }
        let scale = if assessed.iter().any(|i| !i.is_fast()) {
            "BE-FAST"
        } else {
            "FAST"
        };
        let abnormal: Vec<&str> = assessed
            .iter()
            .filter(|i| self.finding(**i) == Some(Finding::Abnormal))
            .map(|i| i.word())
            .collect();
        let mut text = if abnormal.is_empty() {
            format!("{scale} negative")
        } else {
            format!("{scale} positive: {}", abnormal.join(", "))
        };
        let unasked: Vec<&str> = BeFast::ALL
            .into_iter()
            .filter(|i| i.is_fast() && self.finding(*i).is_none())
            .map(|i| i.word())
            .collect();
        if !unasked.is_empty() {
            text.push_str(&format!(" ({} not assessed)", unasked.join(", ")));
        }
        text
    }

    /// "Onset 02:10 (witnessed)" or "Last known well 22:00"; `None` before a time is given.
    pub fn onset_text(&self, clock: impl Fn(DateTime<Utc>) -> String) -> Option<String> {
        let at = clock(self.onset_utc?);
        Some(match self.onset {
            Some(OnsetKind::Witnessed) => format!("Onset {at} (witnessed)"),
            Some(OnsetKind::LastKnownWell) => format!("Last known well {at}"),
            None => format!("Onset or last known well {at}"),
        })
    }

    /// The section as lines for the record, the PDF and the FHIR narrative.
    pub fn summary_lines(&self, clock: impl Fn(DateTime<Utc>) -> String) -> Vec<String> {
        let mut lines = vec![self.findings_text()];
        lines.push(
            self.onset_text(&clock)
                .unwrap_or_else(|| "Onset time not recorded".to_owned()),
        );
        let pathway = match self.pathway {
            Some(p) => p.label().to_owned(),
            None => "not recorded".to_owned(),
        };
        match self.pre_alert_utc {
            Some(at) => lines.push(format!("Pathway: {pathway}, pre-alerted {}", clock(at))),
            None => lines.push(format!("Pathway: {pathway}")),
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::handover::clock as hhmm;
    use chrono::TimeZone;

    #[test]
    fn an_empty_stroke_section_asks_for_fast_onset_glucose_and_pathway() {
        assert_eq!(
            StrokeAssessment::default().missing(false),
            [
                "Stroke: face",
                "Stroke: arms",
                "Stroke: speech",
                "Stroke: witnessed onset or last known well",
                "Stroke: onset or last-known-well time",
                "Stroke: blood glucose (in an observation set)",
                "Stroke: pathway",
            ]
        );
    }

    #[test]
    fn a_hyperacute_pathway_needs_its_pre_alert_time() {
        let at = Utc.with_ymd_and_hms(2026, 3, 1, 22, 0, 0).unwrap();
        let mut s = StrokeAssessment {
            face: Some(Finding::Abnormal),
            arms: Some(Finding::Abnormal),
            speech: Some(Finding::Normal),
            onset: Some(OnsetKind::LastKnownWell),
            onset_utc: Some(at),
            pathway: Some(StrokePathway::HyperacuteStrokeUnit),
            ..StrokeAssessment::default()
        };
        assert_eq!(
            s.missing(true),
            ["Stroke: time the stroke unit was pre-alerted"]
        );
        s.pre_alert_utc = Some(at + chrono::Duration::hours(3));
        assert!(s.missing(true).is_empty());
        assert_eq!(
            s.summary_lines(hhmm),
            [
                "FAST positive: face, arm",
                "Last known well 22:00",
                "Pathway: Hyperacute stroke unit, pre-alerted 01:00",
            ]
        );
        assert!(s.positive());
    }

    #[test]
    fn balance_and_eyes_make_it_be_fast_and_unasked_items_are_said() {
        let s = StrokeAssessment {
            balance: Some(Finding::Abnormal),
            eyes: Some(Finding::Normal),
            face: Some(Finding::Normal),
            ..StrokeAssessment::default()
        };
        assert_eq!(
            s.findings_text(),
            "BE-FAST positive: balance (arm, speech not assessed)"
        );
        let negative = StrokeAssessment {
            face: Some(Finding::Normal),
            arms: Some(Finding::Normal),
            speech: Some(Finding::Normal),
            ..StrokeAssessment::default()
        };
        assert_eq!(negative.findings_text(), "FAST negative");
        assert!(!negative.positive());
        assert_eq!(
            StrokeAssessment::default().findings_text(),
            "FAST not assessed"
        );
    }
}
