//! The sepsis screen ([`SepsisScreen`]): when the crew screened, the suspected source, the
//! high-risk ("red flag") criteria found, and the pathway with its pre-alert.
//!
//! The red flags follow the high-risk criteria of NICE guideline NG51 that a crew can see at
//! the roadside. Three of them can be read from the observations (respiratory rate 25 or
//! more, heart rate above 130, systolic pressure 90 or less): the editor points those out,
//! and the crew still tick them, so the record says what the clinician judged. The NEWS2 at
//! screening is not typed: it is the score of the latest complete observation set taken at or
//! before the screening time.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::encounter::Encounter;
use super::observations::ObservationSet;

/// Where the infection is thought to be.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SepsisSource {
    Chest,
    Urine,
    Abdomen,
    SkinOrSoftTissue,
    CentralNervousSystem,
    Other,
    Unknown,
}

impl SepsisSource {
    pub const ALL: [SepsisSource; 7] = [
        SepsisSource::Chest,
        SepsisSource::Urine,
        SepsisSource::Abdomen,
        SepsisSource::SkinOrSoftTissue,
        SepsisSource::CentralNervousSystem,
        SepsisSource::Other,
        SepsisSource::Unknown,
    ];

    pub fn label(self) -> &'static str {
        match self {
            SepsisSource::Chest => "Chest",
            SepsisSource::Urine => "Urine",
            SepsisSource::Abdomen => "Abdomen",
            SepsisSource::SkinOrSoftTissue => "Skin or soft tissue",
            SepsisSource::CentralNervousSystem => "Brain or meninges",
            SepsisSource::Other => "Other",
            SepsisSource::Unknown => "Not known",
        }
    }
}

/// A high-risk criterion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RedFlag {
    AlteredMentalState,
    RespRate25OrMore,
    HeartRateOver130,
    Systolic90OrLess,
    NoUrine18Hours,
    MottledOrCyanosed,
    NonBlanchingRash,
}

impl RedFlag {
    pub const ALL: [RedFlag; 7] = [
        RedFlag::AlteredMentalState,
        RedFlag::RespRate25OrMore,
        RedFlag::HeartRateOver130,
        RedFlag::Systolic90OrLess,
        RedFlag::NoUrine18Hours,
        RedFlag::MottledOrCyanosed,
        RedFlag::NonBlanchingRash,
    ];

    pub fn label(self) -> &'static str {
        match self {
            RedFlag::AlteredMentalState => "New altered mental state",
            RedFlag::RespRate25OrMore => "Respiratory rate 25 or more",
            RedFlag::HeartRateOver130 => "Heart rate above 130",
            RedFlag::Systolic90OrLess => "Systolic 90 mmHg or less",
            RedFlag::NoUrine18Hours => "No urine in 18 hours",
            RedFlag::MottledOrCyanosed => "Mottled, ashen or cyanosed",
            RedFlag::NonBlanchingRash => "Non-blanching rash",
        }
    }

    /// True when `set` shows this criterion (only the three read from vital signs can).
    pub fn seen_in(self, set: &ObservationSet) -> bool {
        match self {
            RedFlag::RespRate25OrMore => set.resp_rate_per_min.is_some_and(|v| v.get() >= 25),
            RedFlag::HeartRateOver130 => set.pulse_bpm.is_some_and(|v| v.get() > 130),
            RedFlag::Systolic90OrLess => set.systolic_mmhg.is_some_and(|v| v.get() <= 90),
            _ => false,
        }
    }
}

/// What the crew did about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SepsisPathway {
    /// Red flag sepsis: the emergency department pre-alerted.
    RedFlagPreAlert,
    /// Sepsis suspected without a red flag: conveyed for assessment.
    ConveyForAssessment,
    /// Screened and sepsis not thought likely.
    NotSepsis,
}

impl SepsisPathway {
    pub const ALL: [SepsisPathway; 3] = [
        SepsisPathway::RedFlagPreAlert,
        SepsisPathway::ConveyForAssessment,
        SepsisPathway::NotSepsis,
    ];

    pub fn label(self) -> &'static str {
        match self {
            SepsisPathway::RedFlagPreAlert => "Red flag sepsis: pre-alert",
            SepsisPathway::ConveyForAssessment => "Convey for assessment",
            SepsisPathway::NotSepsis => "Sepsis not likely",
        }
    }
}

/// The sepsis section, present while "Sepsis / infection" is one of the record's
/// presentations.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SepsisScreen {
    #[serde(default)]
    pub screened_utc: Option<DateTime<Utc>>,
    #[serde(default)]
    pub source: Option<SepsisSource>,
    /// The red flags found, in [`RedFlag::ALL`] order.
    #[serde(default)]
    pub red_flags: Vec<RedFlag>,
    /// The crew looked for red flags and found none.
    #[serde(default)]
    pub no_red_flags: bool,
    #[serde(default)]
    pub pathway: Option<SepsisPathway>,
    /// When the receiving department was pre-alerted.
    #[serde(default)]
    pub pre_alert_utc: Option<DateTime<Utc>>,
}

impl SepsisScreen {
    /// Ticks or unticks a red flag; ticking one clears "no red flags".
    pub fn set_flag(&mut self, flag: RedFlag, on: bool) {
        self.red_flags.retain(|f| *f != flag);
        if on {
            self.red_flags.push(flag);
            self.red_flags.sort();
            self.no_red_flags = false;
        }
    }

    /// What is still needed before sign-off.
    pub fn missing(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.screened_utc.is_none() {
            out.push("Sepsis: time screened");
        }
        if self.source.is_none() {
            out.push("Sepsis: suspected source");
        }
        if self.red_flags.is_empty() && !self.no_red_flags {
            out.push("Sepsis: red flags found, or none");
        }
        match self.pathway {
            None => out.push("Sepsis: pathway"),
            Some(SepsisPathway::RedFlagPreAlert) if self.pre_alert_utc.is_none() => {
                out.push("Sepsis: time the department was pre-alerted")
            }
            Some(SepsisPathway::NotSepsis) if !self.red_flags.is_empty() => {
                out.push("Sepsis: red flags found, so not \"sepsis not likely\"")
            }
            Some(_) => {}
        }
        out
    }

    /// The NEWS2 at screening: the latest complete set at or before the screening time (any
    /// time, before one is given), with that set's time.
    pub fn news2_at_screening(&self, e: &Encounter) -> Option<(u8, DateTime<Utc>)> {
        e.observations_by_time()
            .into_iter()
            .rev()
            .filter(|o| self.screened_utc.is_none_or(|s| o.taken_at_utc <= s))
            .find_map(|o| e.news2_for(o).total().map(|t| (t, o.taken_at_utc)))
    }

    /// The red flags the observations show that the crew have not ticked.
    pub fn flags_suggested(&self, e: &Encounter) -> Vec<RedFlag> {
        RedFlag::ALL
            .into_iter()
            .filter(|f| !self.red_flags.contains(f))
            .filter(|f| e.observations.iter().any(|o| f.seen_in(o)))
            .collect()
    }

    /// "Sepsis screen 10:20: source chest; NEWS2 7 at screening; red flags: heart rate above
    /// 130; red flag sepsis: pre-alert at 10:40".
    pub fn summary(&self, e: &Encounter, clock: impl Fn(DateTime<Utc>) -> String) -> String {
        let mut parts = vec![match self.screened_utc {
            Some(t) => format!("Sepsis screen {}", clock(t)),
            None => "Sepsis screen".to_owned(),
        }];
        if let Some(s) = self.source {
            parts.push(format!("source {}", s.label().to_lowercase()));
        }
        if let Some((score, _)) = self.news2_at_screening(e) {
            parts.push(format!("NEWS2 {score} at screening"));
        }
        if !self.red_flags.is_empty() {
            let flags: Vec<String> = self
                .red_flags
                .iter()
                .map(|f| f.label().to_lowercase())
                .collect();
            parts.push(format!("RED FLAGS: {}", flags.join(", ")));
        } else if self.no_red_flags {
            parts.push("no red flags".to_owned());
        }
        match (self.pathway, self.pre_alert_utc) {
            (Some(SepsisPathway::RedFlagPreAlert), Some(t)) => {
                parts.push(format!("pre-alerted {}", clock(t)))
            }
            (Some(p), _) => parts.push(p.label().to_lowercase()),
            (None, _) => {}
        }
        parts.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::complete_encounter;
    use crate::demo::fixed_time as at;
    use crate::model::handover::clock as hhmm;
    use crate::model::observations::PulseBpm;

    #[test]
    fn an_empty_screen_asks_for_time_source_flags_and_pathway() {
        assert_eq!(
            SepsisScreen::default().missing(),
            [
                "Sepsis: time screened",
                "Sepsis: suspected source",
                "Sepsis: red flags found, or none",
                "Sepsis: pathway",
            ]
        );
    }

    #[test]
    fn a_red_flag_rules_out_not_sepsis_and_a_pre_alert_needs_its_time() {
        let mut s = SepsisScreen {
            screened_utc: Some(at(10, 20)),
            source: Some(SepsisSource::Chest),
            no_red_flags: true,
            pathway: Some(SepsisPathway::NotSepsis),
            ..SepsisScreen::default()
        };
        assert!(s.missing().is_empty());
        s.set_flag(RedFlag::HeartRateOver130, true);
        assert!(!s.no_red_flags, "ticking a flag clears 'none'");
        assert_eq!(
            s.missing(),
            ["Sepsis: red flags found, so not \"sepsis not likely\""]
        );
        s.pathway = Some(SepsisPathway::RedFlagPreAlert);
        assert_eq!(s.missing(), ["Sepsis: time the department was pre-alerted"]);
        s.pre_alert_utc = Some(at(10, 40));
        assert!(s.missing().is_empty());
    }

    #[test]
    fn news2_at_screening_is_the_latest_complete_set_before_it_and_flags_are_suggested() {
        let mut e = complete_encounter();
        // Sets at 10:15 (NEWS2 scored) and 10:30.
        e.observations[1].pulse_bpm = PulseBpm::new(135).ok();
        let mut s = SepsisScreen {
            screened_utc: Some(at(10, 20)),
            source: Some(SepsisSource::Urine),
            ..SepsisScreen::default()
        };
        let (score, taken) = s.news2_at_screening(&e).unwrap();
        assert_eq!(taken, at(10, 15));
        assert_eq!(Some(score), e.news2_for(&e.observations[0]).total());
        assert_eq!(s.flags_suggested(&e), [RedFlag::HeartRateOver130]);
        s.set_flag(RedFlag::HeartRateOver130, true);
        assert!(s.flags_suggested(&e).is_empty());
        s.pathway = Some(SepsisPathway::RedFlagPreAlert);
        s.pre_alert_utc = Some(at(10, 40));
        assert_eq!(
            s.summary(&e, hhmm),
            format!(
                "Sepsis screen 10:20; source urine; NEWS2 {score} at screening; RED FLAGS: \
                 heart rate above 130; pre-alerted 10:40"
            )
        );
    }
}
