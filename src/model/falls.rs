//! The falls and frailty section ([`FallAssessment`]): the Clinical Frailty Scale, how long
//! the patient was on the floor, a head injury while on an anticoagulant, mobility after the
//! fall, and the referral.
//!
//! A long lie (an hour or more on the floor) risks rhabdomyolysis, pressure damage and
//! hypothermia; a head injury on an anticoagulant needs imaging even when the patient seems
//! well. Both are said in the handover rather than left in the notes.

use serde::{Deserialize, Serialize};

/// Clinical Frailty Scale (version 2.0) level names, 1 to 9.
pub const FRAILTY_LEVELS: [&str; 9] = [
    "Very fit",
    "Fit",
    "Managing well",
    "Living with very mild frailty",
    "Living with mild frailty",
    "Living with moderate frailty",
    "Living with severe frailty",
    "Living with very severe frailty",
    "Terminally ill",
];

/// How long the patient was on the floor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TimeOnFloor {
    /// Got up, or was helped up, at once.
    NotOnFloor,
    UnderOneHour,
    /// A long lie.
    OneHourOrMore,
    Unknown,
}

impl TimeOnFloor {
    pub const ALL: [TimeOnFloor; 4] = [
        TimeOnFloor::NotOnFloor,
        TimeOnFloor::UnderOneHour,
        TimeOnFloor::OneHourOrMore,
        TimeOnFloor::Unknown,
    ];

    pub fn label(self) -> &'static str {
        match self {
            TimeOnFloor::NotOnFloor => "Not on the floor",
            TimeOnFloor::UnderOneHour => "Under an hour",
            TimeOnFloor::OneHourOrMore => "An hour or more (long lie)",
            TimeOnFloor::Unknown => "Not known",
        }
    }
}

/// Mobility after the fall, compared with before.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mobility {
    AsBefore,
    WorseThanBefore,
    UnableToWeightBear,
}

impl Mobility {
    pub const ALL: [Mobility; 3] = [
        Mobility::AsBefore,
        Mobility::WorseThanBefore,
        Mobility::UnableToWeightBear,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Mobility::AsBefore => "Mobile as before",
            Mobility::WorseThanBefore => "Less mobile than before",
            Mobility::UnableToWeightBear => "Unable to weight-bear",
        }
    }
}

/// Who the fall was referred to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FallsReferral {
    FallsTeam,
    UrgentCommunityResponse,
    Gp,
    /// No referral: the patient is conveyed, or needs none.
    NoneNeeded,
}

impl FallsReferral {
    pub const ALL: [FallsReferral; 4] = [
        FallsReferral::FallsTeam,
        FallsReferral::UrgentCommunityResponse,
        FallsReferral::Gp,
        FallsReferral::NoneNeeded,
    ];

    pub fn label(self) -> &'static str {
        match self {
            FallsReferral::FallsTeam => "Falls team",
            FallsReferral::UrgentCommunityResponse => "Urgent community response",
            FallsReferral::Gp => "GP",
            FallsReferral::NoneNeeded => "No referral",
        }
    }
}

/// The falls section, present while "Fall" is one of the record's presentations.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FallAssessment {
    /// Clinical Frailty Scale, 1 to 9.
    #[serde(default)]
    pub frailty_scale: Option<u8>,
    #[serde(default)]
    pub time_on_floor: Option<TimeOnFloor>,
    #[serde(default)]
    pub head_injury: Option<bool>,
    #[serde(default)]
    pub anticoagulated: Option<bool>,
    #[serde(default)]
    pub mobility: Option<Mobility>,
    #[serde(default)]
    pub referral: Option<FallsReferral>,
}

impl FallAssessment {
    /// The frailty level's name, when the scale is 1 to 9.
    pub fn frailty_label(&self) -> Option<&'static str> {
        let level = usize::from(self.frailty_scale?);
        FRAILTY_LEVELS.get(level.checked_sub(1)?).copied()
    }

    /// True for a head injury in a patient on an anticoagulant.
    pub fn anticoagulated_head_injury(&self) -> bool {
        self.head_injury == Some(true) && self.anticoagulated == Some(true)
    }

    /// What is still needed before sign-off.
    pub fn missing(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.frailty_label().is_none() {
            out.push("Fall: Clinical Frailty Scale");
        }
        if self.time_on_floor.is_none() {
            out.push("Fall: time on the floor");
        }
        if self.head_injury.is_none() {
            out.push("Fall: head injury or not");
        }
        if self.anticoagulated.is_none() {
            out.push("Fall: on an anticoagulant or not");
        }
        if self.mobility.is_none() {
            out.push("Fall: mobility");
        }
        if self.referral.is_none() {
            out.push("Fall: referral");
        }
        out
    }

    /// "Fall: CFS 6 (living with moderate frailty), LONG LIE, HEAD INJURY ON ANTICOAGULANT,
    /// less mobile than before, referred to falls team".
    pub fn summary(&self) -> String {
        let mut parts = Vec::new();
        if let (Some(level), Some(name)) = (self.frailty_scale, self.frailty_label()) {
            parts.push(format!("CFS {level} ({})", name.to_lowercase()));
        }
        match self.time_on_floor {
            Some(TimeOnFloor::OneHourOrMore) => parts.push("LONG LIE (an hour or more)".to_owned()),
            Some(TimeOnFloor::Unknown) => parts.push("time on floor not known".to_owned()),
            Some(TimeOnFloor::UnderOneHour) => parts.push("on floor under an hour".to_owned()),
            Some(TimeOnFloor::NotOnFloor) | None => {}
        }
        if self.anticoagulated_head_injury() {
            parts.push("HEAD INJURY ON ANTICOAGULANT".to_owned());
        } else if self.head_injury == Some(true) {
            parts.push("head injury".to_owned());
        }
        if let Some(m) = self.mobility {
            parts.push(m.label().to_lowercase());
        }
        match self.referral {
            Some(FallsReferral::NoneNeeded) | None => {}
            Some(r) => parts.push(format!("referred to {}", r.label())),
        }
        if parts.is_empty() {
            "Fall".to_owned()
        } else {
            format!("Fall: {}", parts.join(", "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_item_is_asked_and_the_frailty_scale_runs_one_to_nine() {
        assert_eq!(FallAssessment::default().missing().len(), 6);
        for (level, ok) in [(0, false), (1, true), (9, true), (10, false)] {
            let f = FallAssessment {
                frailty_scale: Some(level),
                ..FallAssessment::default()
            };
            assert_eq!(f.frailty_label().is_some(), ok, "CFS {level}");
        }
    }

    #[test]
    fn a_long_lie_and_an_anticoagulated_head_injury_are_said_loudly() {
        let f = FallAssessment {
            frailty_scale: Some(6),
            time_on_floor: Some(TimeOnFloor::OneHourOrMore),
            head_injury: Some(true),
            anticoagulated: Some(true),
            mobility: Some(Mobility::WorseThanBefore),
            referral: Some(FallsReferral::FallsTeam),
        };
        assert!(f.missing().is_empty());
        assert_eq!(
            f.summary(),
            "Fall: CFS 6 (living with moderate frailty), LONG LIE (an hour or more), HEAD \
             INJURY ON ANTICOAGULANT, less mobile than before, referred to Falls team"
        );
    }
}
