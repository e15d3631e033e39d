//! The record's presentations and the structured assessments they bring ([`Assessment`]).
//!
//! The crew pick one or more presentations ("Stroke / TIA", "Chest pain / ACS", ...); each
//! may add its own section and its own sign-off checks, and an unpicked one stays out of the
//! way: picking "Cardiac arrest" asks for the Utstein core; "Stroke / TIA" for BE-FAST, onset
//! and pathway; "Chest pain / ACS" for a 12-lead ECG (or why none was taken); "Breathing
//! difficulty" for speech, wheeze and life-threatening features; "Mental health" for the
//! risks and the Mental Health Act status; and so on. "Other" brings none. A 12-lead ECG may
//! be recorded on any record.

use serde::{Deserialize, Serialize};

use super::arrest::CardiacArrest;
use super::breathing::BreathingAssessment;
use super::ecg::Ecg12Lead;
use super::encounter::Pregnancy;
use super::falls::FallAssessment;
use super::maternity::MaternityAssessment;
use super::mental_health::MentalHealthAssessment;
use super::paediatric::PaediatricAssessment;
use super::sepsis::SepsisScreen;
use super::stroke::StrokeAssessment;
use super::trauma::TraumaAssessment;

/// What the patient presents with; a record may have several.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Presentation {
    CardiacArrest,
    ChestPain,
    Stroke,
    BreathingDifficulty,
    Sepsis,
    Fall,
    Trauma,
    MentalHealth,
    Maternity,
    Paediatric,
    Other,
}

impl Presentation {
    pub const ALL: [Presentation; 11] = [
        Presentation::CardiacArrest,
        Presentation::ChestPain,
        Presentation::Stroke,
        Presentation::BreathingDifficulty,
        Presentation::Sepsis,
        Presentation::Fall,
        Presentation::Trauma,
        Presentation::MentalHealth,
        Presentation::Maternity,
        Presentation::Paediatric,
        Presentation::Other,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Presentation::CardiacArrest => "Cardiac arrest",
            Presentation::ChestPain => "Chest pain / ACS",
            Presentation::Stroke => "Stroke / TIA",
            Presentation::BreathingDifficulty => "Breathing difficulty",
            Presentation::Sepsis => "Sepsis / infection",
            Presentation::Fall => "Fall",
            Presentation::Trauma => "Trauma",
            Presentation::MentalHealth => "Mental health",
            Presentation::Maternity => "Maternity",
            Presentation::Paediatric => "Paediatric",
            Presentation::Other => "Other",
        }
    }
}

/// The presentations picked and the sections they brought. Empty (and absent from the
/// document) on a record that has none, such as every record made before presentations
/// existed.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Assessment {
    /// In the order of [`Presentation::ALL`], each at most once.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub presentations: Vec<Presentation>,
    /// Present while [`Presentation::CardiacArrest`] is picked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub arrest: Option<CardiacArrest>,
    /// Present while [`Presentation::Stroke`] is picked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stroke: Option<StrokeAssessment>,
    /// Present while [`Presentation::Sepsis`] is picked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sepsis: Option<SepsisScreen>,
    /// Present while [`Presentation::Fall`] is picked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fall: Option<FallAssessment>,
    /// Present while [`Presentation::Trauma`] is picked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub trauma: Option<TraumaAssessment>,
    /// Present while [`Presentation::Maternity`] is picked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maternity: Option<MaternityAssessment>,
    /// Present while [`Presentation::Paediatric`] is picked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paediatric: Option<PaediatricAssessment>,
    /// Present while [`Presentation::BreathingDifficulty`] is picked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub breathing: Option<BreathingAssessment>,
    /// Present while [`Presentation::MentalHealth`] is picked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mental_health: Option<MentalHealthAssessment>,
    /// Every 12-lead ECG, in the order recorded.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ecgs: Vec<Ecg12Lead>,
    /// Why no 12-lead ECG was taken for chest pain (refused, no equipment, ...).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub ecg_not_done_reason: String,
}

impl Assessment {
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    pub fn has(&self, p: Presentation) -> bool {
        self.presentations.contains(&p)
    }

    /// Picks or unpicks `p`, keeping the list in [`Presentation::ALL`] order.
    pub fn set(&mut self, p: Presentation, picked: bool) {
        self.presentations.retain(|x| *x != p);
        if picked {
            self.presentations.push(p);
            self.presentations.sort();
        }
    }

    /// The stroke section when stroke is a presentation.
    pub fn stroke(&self) -> Option<&StrokeAssessment> {
        self.stroke
            .as_ref()
            .filter(|_| self.has(Presentation::Stroke))
    }

    /// The breathing section when breathing difficulty is a presentation.
    pub fn breathing(&self) -> Option<&BreathingAssessment> {
        self.breathing
            .as_ref()
            .filter(|_| self.has(Presentation::BreathingDifficulty))
    }

    /// The mental health section when mental health is a presentation.
    pub fn mental_health(&self) -> Option<&MentalHealthAssessment> {
        self.mental_health
            .as_ref()
            .filter(|_| self.has(Presentation::MentalHealth))
    }

    /// The arrest section when cardiac arrest is a presentation.
    pub fn arrest(&self) -> Option<&CardiacArrest> {
        self.arrest
            .as_ref()
            .filter(|_| self.has(Presentation::CardiacArrest))
    }

    /// The sepsis screen when sepsis is a presentation.
    pub fn sepsis(&self) -> Option<&SepsisScreen> {
        self.sepsis
            .as_ref()
            .filter(|_| self.has(Presentation::Sepsis))
    }

    /// The falls section when a fall is a presentation.
    pub fn fall(&self) -> Option<&FallAssessment> {
        self.fall.as_ref().filter(|_| self.has(Presentation::Fall))
    }

    /// The trauma section when trauma is a presentation.
    pub fn trauma(&self) -> Option<&TraumaAssessment> {
        self.trauma
            .as_ref()
            .filter(|_| self.has(Presentation::Trauma))
    }

    /// The maternity section when maternity is a presentation.
    pub fn maternity(&self) -> Option<&MaternityAssessment> {
        self.maternity
            .as_ref()
            .filter(|_| self.has(Presentation::Maternity))
    }

    /// The paediatric section when paediatric is a presentation.
    pub fn paediatric(&self) -> Option<&PaediatricAssessment> {
        self.paediatric
            .as_ref()
            .filter(|_| self.has(Presentation::Paediatric))
    }

    /// The presentations as words ("Chest pain / ACS, Stroke / TIA").
    pub fn presentations_text(&self) -> Option<String> {
        if self.presentations.is_empty() {
            return None;
        }
        Some(
            self.presentations
                .iter()
                .map(|p| p.label())
                .collect::<Vec<_>>()
                .join(", "),
        )
    }

    /// What the picked presentations still need before sign-off, as (part, label) so
    /// the editor can jump to the right place. `glucose_measured` says whether any
    /// observation set has a blood glucose; `pregnancy` is the patient's.
    pub fn missing(
        &self,
        glucose_measured: bool,
        pregnancy: Option<Pregnancy>,
    ) -> Vec<(AssessmentPart, &'static str)> {
        let mut out = Vec::new();
        if self.has(Presentation::CardiacArrest) {
            let empty = CardiacArrest::default();
            let arrest = self.arrest.as_ref().unwrap_or(&empty);
            for label in arrest.missing() {
                out.push((AssessmentPart::Arrest, label));
            }
        }
        if self.has(Presentation::Stroke) {
            let empty = StrokeAssessment::default();
            let stroke = self.stroke.as_ref().unwrap_or(&empty);
            for label in stroke.missing(glucose_measured) {
                out.push((AssessmentPart::Stroke, label));
            }
        }
        if self.has(Presentation::Sepsis) {
            let empty = SepsisScreen::default();
            let sepsis = self.sepsis.as_ref().unwrap_or(&empty);
            for label in sepsis.missing() {
                out.push((AssessmentPart::Sepsis, label));
            }
        }
        if self.has(Presentation::BreathingDifficulty) {
            let empty = BreathingAssessment::default();
            let breathing = self.breathing.as_ref().unwrap_or(&empty);
            for label in breathing.missing() {
                out.push((AssessmentPart::Breathing, label));
            }
        }
        if self.has(Presentation::MentalHealth) {
            let empty = MentalHealthAssessment::default();
            let mental_health = self.mental_health.as_ref().unwrap_or(&empty);
            for label in mental_health.missing() {
                out.push((AssessmentPart::MentalHealth, label));
            }
        }
        if self.has(Presentation::Fall) {
            let empty = FallAssessment::default();
            let fall = self.fall.as_ref().unwrap_or(&empty);
            for label in fall.missing() {
                out.push((AssessmentPart::Fall, label));
            }
        }
        if self.has(Presentation::Trauma) {
            let empty = TraumaAssessment::default();
            let trauma = self.trauma.as_ref().unwrap_or(&empty);
            for label in trauma.missing() {
                out.push((AssessmentPart::Trauma, label));
            }
        }
        if self.has(Presentation::Maternity) {
            let empty = MaternityAssessment::default();
            let maternity = self.maternity.as_ref().unwrap_or(&empty);
            for label in maternity.missing(pregnancy) {
                out.push((AssessmentPart::Maternity, label));
            }
        }
        if self.has(Presentation::Paediatric) {
            let empty = PaediatricAssessment::default();
            let paediatric = self.paediatric.as_ref().unwrap_or(&empty);
            for label in paediatric.missing() {
                out.push((AssessmentPart::Paediatric, label));
            }
        }
        if self.has(Presentation::ChestPain)
            && self.ecgs.is_empty()
            && self.ecg_not_done_reason.trim().is_empty()
        {
            out.push((
                AssessmentPart::Ecg,
                "Chest pain: a 12-lead ECG, or why none was taken",
            ));
        }
        for ecg in &self.ecgs {
            for label in ecg.missing() {
                if !out.iter().any(|(_, l)| *l == label) {
                    out.push((AssessmentPart::Ecg, label));
                }
            }
        }
        out
    }
}

/// The part of the assessment a missing item belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AssessmentPart {
    Presentations,
    Arrest,
    Stroke,
    Sepsis,
    Breathing,
    MentalHealth,
    Fall,
    Trauma,
    Maternity,
    Paediatric,
    Ecg,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presentations_stay_in_order_and_unique() {
        let mut a = Assessment::default();
        a.set(Presentation::Stroke, true);
        a.set(Presentation::ChestPain, true);
        a.set(Presentation::Stroke, true);
        assert_eq!(
            a.presentations,
            [Presentation::ChestPain, Presentation::Stroke]
        );
        a.set(Presentation::ChestPain, false);
        assert_eq!(a.presentations, [Presentation::Stroke]);
        assert_eq!(a.presentations_text().as_deref(), Some("Stroke / TIA"));
    }

    #[test]
    fn chest_pain_needs_an_ecg_or_a_reason_and_stroke_its_section() {
        let mut a = Assessment::default();
        assert!(
            a.missing(false, None).is_empty(),
            "nothing picked, nothing asked"
        );
        a.set(Presentation::ChestPain, true);
        assert_eq!(
            a.missing(true, None),
            [(
                AssessmentPart::Ecg,
                "Chest pain: a 12-lead ECG, or why none was taken"
            )]
        );
        a.ecg_not_done_reason = "Patient declined".into();
        assert!(a.missing(true, None).is_empty());
        a.set(Presentation::Stroke, true);
        let m = a.missing(true, None);
        assert!(m.iter().all(|(part, _)| *part == AssessmentPart::Stroke));
        assert!(m.iter().any(|(_, l)| *l == "Stroke: face"));
        // A stroke section kept after stroke was unpicked asks for nothing and is not shown.
        a.stroke = Some(StrokeAssessment::default());
        a.set(Presentation::Stroke, false);
        assert!(a.missing(true, None).is_empty());
        assert!(a.stroke().is_none());
    }
}
