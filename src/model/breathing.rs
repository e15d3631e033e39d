//! The breathing difficulty section ([`BreathingAssessment`]): how much the patient can say in
//! one breath, wheeze, use of the accessory muscles, a known lung or heart condition, and the
//! features that make an attack life-threatening (silent chest, cyanosis, poor respiratory
//! effort, exhaustion).
//!
//! The respiratory rate, SpO2, peak flow and ETCO2 are observations and stay there; this
//! section says what the numbers do not. Life-threatening features open the section's line in
//! the handover.

use serde::{Deserialize, Serialize};

/// How much the patient can say in one breath.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Speech {
    FullSentences,
    ShortPhrases,
    SingleWords,
    UnableToSpeak,
}

impl Speech {
    pub const ALL: [Speech; 4] = [
        Speech::FullSentences,
        Speech::ShortPhrases,
        Speech::SingleWords,
        Speech::UnableToSpeak,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Speech::FullSentences => "Full sentences",
            Speech::ShortPhrases => "Short phrases",
            Speech::SingleWords => "Single words",
            Speech::UnableToSpeak => "Unable to speak",
        }
    }
}

/// A known condition behind the breathlessness.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum KnownCondition {
    Asthma,
    Copd,
    HeartFailure,
    Other,
    None,
}

impl KnownCondition {
    pub const ALL: [KnownCondition; 5] = [
        KnownCondition::Asthma,
        KnownCondition::Copd,
        KnownCondition::HeartFailure,
        KnownCondition::Other,
        KnownCondition::None,
    ];

    pub fn label(self) -> &'static str {
        match self {
            KnownCondition::Asthma => "Asthma",
            KnownCondition::Copd => "COPD",
            KnownCondition::HeartFailure => "Heart failure",
            KnownCondition::Other => "Other",
            KnownCondition::None => "None known",
        }
    }
}

/// A feature that makes an attack of breathlessness life-threatening.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LifeThreat {
    SilentChest,
    Cyanosis,
    PoorEffort,
    Exhaustion,
}

impl LifeThreat {
    pub const ALL: [LifeThreat; 4] = [
        LifeThreat::SilentChest,
        LifeThreat::Cyanosis,
        LifeThreat::PoorEffort,
        LifeThreat::Exhaustion,
    ];

    pub fn label(self) -> &'static str {
        match self {
            LifeThreat::SilentChest => "Silent chest",
            LifeThreat::Cyanosis => "Cyanosis",
            LifeThreat::PoorEffort => "Poor respiratory effort",
            LifeThreat::Exhaustion => "Exhaustion",
        }
    }
}

/// The breathing difficulty section, present while "Breathing difficulty" is picked.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BreathingAssessment {
    #[serde(default)]
    pub speech: Option<Speech>,
    #[serde(default)]
    pub wheeze: Option<bool>,
    #[serde(default)]
    pub accessory_muscles: Option<bool>,
    #[serde(default)]
    pub known_condition: Option<KnownCondition>,
    /// The life-threatening features seen, in [`LifeThreat::ALL`] order.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub life_threats: Vec<LifeThreat>,
    /// The crew looked for every life-threatening feature and found none.
    #[serde(default)]
    pub no_life_threats: bool,
}

impl BreathingAssessment {
    /// Ticks or unticks a life-threatening feature (ticking one clears "none").
    pub fn set_threat(&mut self, threat: LifeThreat, seen: bool) {
        self.life_threats.retain(|t| *t != threat);
        if seen {
            self.life_threats.push(threat);
            self.life_threats.sort();
            self.no_life_threats = false;
        }
    }

    /// What is still needed before sign-off.
    pub fn missing(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.speech.is_none() {
            out.push("Breathing: speech in one breath");
        }
        if self.wheeze.is_none() {
            out.push("Breathing: wheeze or not");
        }
        if self.accessory_muscles.is_none() {
            out.push("Breathing: accessory muscle use or not");
        }
        if self.known_condition.is_none() {
            out.push("Breathing: known condition (or none)");
        }
        if self.life_threats.is_empty() && !self.no_life_threats {
            out.push("Breathing: life-threatening features, or none");
        }
        out
    }

    /// "LIFE-THREATENING: silent chest, cyanosis. Breathing: single words, wheeze,
    /// accessory muscles, known asthma".
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        if let Some(s) = self.speech {
            parts.push(format!("speaking in {}", s.label().to_lowercase()));
        }
        match self.wheeze {
            Some(true) => parts.push("wheeze".to_owned()),
            Some(false) => parts.push("no wheeze".to_owned()),
            None => {}
        }
        match self.accessory_muscles {
            Some(true) => parts.push("using accessory muscles".to_owned()),
            Some(false) => parts.push("no accessory muscle use".to_owned()),
            None => {}
        }
        match self.known_condition {
            Some(KnownCondition::None) => parts.push("no known lung or heart condition".to_owned()),
            Some(KnownCondition::Copd) => parts.push("known COPD".to_owned()),
            Some(c) => parts.push(format!("known {}", c.label().to_lowercase())),
            None => {}
        }
        let breathing = if parts.is_empty() {
            "Breathing difficulty".to_owned()
        } else {
            format!("Breathing: {}", parts.join(", "))
        };
        if self.life_threats.is_empty() {
            return breathing;
        }
        let threats: Vec<String> = self
            .life_threats
            .iter()
            .map(|t| t.label().to_lowercase())
            .collect();
        format!("LIFE-THREATENING: {}. {breathing}", threats.join(", "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn whole() -> BreathingAssessment {
        BreathingAssessment {
            speech: Some(Speech::SingleWords),
            wheeze: Some(true),
            accessory_muscles: Some(true),
            known_condition: Some(KnownCondition::Asthma),
            life_threats: Vec::new(),
            no_life_threats: true,
        }
    }

    #[test]
    fn every_item_is_asked_and_none_found_must_be_said() {
        let b = BreathingAssessment::default();
        assert_eq!(b.missing().len(), 5);
        assert!(whole().missing().is_empty());
        let mut b = whole();
        b.no_life_threats = false;
        assert_eq!(
            b.missing(),
            ["Breathing: life-threatening features, or none"]
        );
        b.set_threat(LifeThreat::SilentChest, true);
        assert!(b.missing().is_empty());
    }

    #[test]
    fn a_life_threatening_feature_is_said_first() {
        let mut b = whole();
        b.set_threat(LifeThreat::Cyanosis, true);
        b.set_threat(LifeThreat::SilentChest, true);
        assert!(!b.no_life_threats, "ticking a feature clears 'none'");
        assert_eq!(
            b.summary(),
            "LIFE-THREATENING: silent chest, cyanosis. Breathing: speaking in single words, \
             wheeze, using accessory muscles, known asthma"
        );
        b.set_threat(LifeThreat::Cyanosis, false);
        b.set_threat(LifeThreat::SilentChest, false);
        assert_eq!(
            b.summary(),
            "Breathing: speaking in single words, wheeze, using accessory muscles, known asthma"
        );
    }
}
