//! The trauma section ([`TraumaAssessment`]): the mechanism (kept apart from the history),
//! the injuries by body region and type, catastrophic haemorrhage and how it was controlled
//! (with the tourniquet time, which the receiving surgeon needs), and the major trauma triage
//! result.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// How the injury happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mechanism {
    VehicleOccupant,
    Pedestrian,
    CyclistOrMotorcyclist,
    FallFromHeight,
    FallStandingHeight,
    Assault,
    Stabbing,
    Shooting,
    Crush,
    Burn,
    Other,
}

impl Mechanism {
    pub const ALL: [Mechanism; 11] = [
        Mechanism::VehicleOccupant,
        Mechanism::Pedestrian,
        Mechanism::CyclistOrMotorcyclist,
        Mechanism::FallFromHeight,
        Mechanism::FallStandingHeight,
        Mechanism::Assault,
        Mechanism::Stabbing,
        Mechanism::Shooting,
        Mechanism::Crush,
        Mechanism::Burn,
        Mechanism::Other,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Mechanism::VehicleOccupant => "Vehicle occupant",
            Mechanism::Pedestrian => "Pedestrian struck",
            Mechanism::CyclistOrMotorcyclist => "Cyclist or motorcyclist",
            Mechanism::FallFromHeight => "Fall from height",
            Mechanism::FallStandingHeight => "Fall from standing",
            Mechanism::Assault => "Assault",
            Mechanism::Stabbing => "Stabbing",
            Mechanism::Shooting => "Shooting",
            Mechanism::Crush => "Crush",
            Mechanism::Burn => "Burn",
            Mechanism::Other => "Other",
        }
    }
}

/// Where on the body.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BodyRegion {
    Head,
    Face,
    Neck,
    Chest,
    Abdomen,
    Pelvis,
    Spine,
    LeftArm,
    RightArm,
    LeftLeg,
    RightLeg,
}

impl BodyRegion {
    pub const ALL: [BodyRegion; 11] = [
        BodyRegion::Head,
        BodyRegion::Face,
        BodyRegion::Neck,
        BodyRegion::Chest,
        BodyRegion::Abdomen,
        BodyRegion::Pelvis,
        BodyRegion::Spine,
        BodyRegion::LeftArm,
        BodyRegion::RightArm,
        BodyRegion::LeftLeg,
        BodyRegion::RightLeg,
    ];

    pub fn label(self) -> &'static str {
        match self {
            BodyRegion::Head => "Head",
            BodyRegion::Face => "Face",
            BodyRegion::Neck => "Neck",
            BodyRegion::Chest => "Chest",
            BodyRegion::Abdomen => "Abdomen",
            BodyRegion::Pelvis => "Pelvis",
            BodyRegion::Spine => "Spine",
            BodyRegion::LeftArm => "Left arm",
            BodyRegion::RightArm => "Right arm",
            BodyRegion::LeftLeg => "Left leg",
            BodyRegion::RightLeg => "Right leg",
        }
    }
}

/// What kind of injury.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InjuryKind {
    Laceration,
    Abrasion,
    Bruising,
    SuspectedFracture,
    Penetrating,
    Burn,
    Amputation,
    Tenderness,
}

impl InjuryKind {
    pub const ALL: [InjuryKind; 8] = [
        InjuryKind::Laceration,
        InjuryKind::Abrasion,
        InjuryKind::Bruising,
        InjuryKind::SuspectedFracture,
        InjuryKind::Penetrating,
        InjuryKind::Burn,
        InjuryKind::Amputation,
        InjuryKind::Tenderness,
    ];

    pub fn label(self) -> &'static str {
        match self {
            InjuryKind::Laceration => "Laceration",
            InjuryKind::Abrasion => "Abrasion",
            InjuryKind::Bruising => "Bruising",
            InjuryKind::SuspectedFracture => "Suspected fracture",
            InjuryKind::Penetrating => "Penetrating wound",
            InjuryKind::Burn => "Burn",
            InjuryKind::Amputation => "Amputation",
            InjuryKind::Tenderness => "Pain or tenderness",
        }
    }
}

/// One injury found.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Injury {
    pub region: BodyRegion,
    pub kind: InjuryKind,
}

impl Injury {
    /// "Left leg: suspected fracture".
    pub fn text(&self) -> String {
        format!(
            "{}: {}",
            self.region.label(),
            self.kind.label().to_lowercase()
        )
    }
}

/// How a catastrophic haemorrhage was controlled.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum HaemorrhageControl {
    Tourniquet,
    WoundPacking,
    DirectPressure,
    PelvicBinder,
}

impl HaemorrhageControl {
    pub const ALL: [HaemorrhageControl; 4] = [
        HaemorrhageControl::Tourniquet,
        HaemorrhageControl::WoundPacking,
        HaemorrhageControl::DirectPressure,
        HaemorrhageControl::PelvicBinder,
    ];

    pub fn label(self) -> &'static str {
        match self {
            HaemorrhageControl::Tourniquet => "Tourniquet",
            HaemorrhageControl::WoundPacking => "Wound packing",
            HaemorrhageControl::DirectPressure => "Direct pressure",
            HaemorrhageControl::PelvicBinder => "Pelvic binder",
        }
    }
}

/// The result of the major trauma triage tool.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TraumaTriage {
    /// Positive: to a major trauma centre.
    MajorTraumaCentre,
    /// Negative: to a trauma unit or emergency department.
    TraumaUnit,
}

impl TraumaTriage {
    pub const ALL: [TraumaTriage; 2] = [TraumaTriage::MajorTraumaCentre, TraumaTriage::TraumaUnit];

    pub fn label(self) -> &'static str {
        match self {
            TraumaTriage::MajorTraumaCentre => "Triage positive: major trauma centre",
            TraumaTriage::TraumaUnit => "Triage negative: trauma unit or ED",
        }
    }
}

/// The trauma section, present while "Trauma" is one of the record's presentations.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraumaAssessment {
    #[serde(default)]
    pub mechanism: Option<Mechanism>,
    /// The mechanism in the crew's words ("car into wall at about 40 mph").
    #[serde(default)]
    pub mechanism_details: String,
    /// In the order found.
    #[serde(default)]
    pub injuries: Vec<Injury>,
    /// Examined and no injury found.
    #[serde(default)]
    pub no_injuries_found: bool,
    #[serde(default)]
    pub catastrophic_haemorrhage: Option<bool>,
    #[serde(default)]
    pub haemorrhage_control: Option<HaemorrhageControl>,
    #[serde(default)]
    pub tourniquet_utc: Option<DateTime<Utc>>,
    #[serde(default)]
    pub triage: Option<TraumaTriage>,
}

impl TraumaAssessment {
    /// Adds an injury once; adding one clears "no injuries found".
    pub fn add_injury(&mut self, injury: Injury) {
        if !self.injuries.contains(&injury) {
            self.injuries.push(injury);
        }
        self.no_injuries_found = false;
    }

    /// What is still needed before sign-off.
    pub fn missing(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.mechanism.is_none() {
            out.push("Trauma: mechanism");
        }
        if self.injuries.is_empty() && !self.no_injuries_found {
            out.push("Trauma: injuries, or none found");
        }
        match self.catastrophic_haemorrhage {
            None => out.push("Trauma: catastrophic haemorrhage or not"),
            Some(true) => match self.haemorrhage_control {
                None => out.push("Trauma: how the haemorrhage was controlled"),
                Some(HaemorrhageControl::Tourniquet) if self.tourniquet_utc.is_none() => {
                    out.push("Trauma: tourniquet time")
                }
                Some(_) => {}
            },
            Some(false) => {}
        }
        if self.triage.is_none() {
            out.push("Trauma: major trauma triage result");
        }
        out
    }

    /// The mechanism in words ("Vehicle occupant: car into wall"); `None` before one is picked.
    pub fn mechanism_text(&self) -> Option<String> {
        let m = self.mechanism?.label();
        let details = self.mechanism_details.trim();
        Some(if details.is_empty() {
            m.to_owned()
        } else {
            format!("{m}: {details}")
        })
    }

    /// The injuries and haemorrhage in words, for the handover's "I" line.
    pub fn injuries_text(&self, clock: impl Fn(DateTime<Utc>) -> String) -> String {
        let mut parts = Vec::new();
        if self.catastrophic_haemorrhage == Some(true) {
            let control = match (self.haemorrhage_control, self.tourniquet_utc) {
                (Some(HaemorrhageControl::Tourniquet), Some(t)) => {
                    format!(", tourniquet on at {}", clock(t))
                }
                (Some(c), _) => format!(", {}", c.label().to_lowercase()),
                (None, _) => String::new(),
            };
            parts.push(format!("CATASTROPHIC HAEMORRHAGE{control}"));
        }
        if self.injuries.is_empty() {
            if self.no_injuries_found {
                parts.push("no injuries found".to_owned());
            }
        } else {
            let injuries: Vec<String> = self.injuries.iter().map(Injury::text).collect();
            parts.push(format!("injuries: {}", injuries.join("; ")));
        }
        if let Some(t) = self.triage {
            parts.push(t.label().to_owned());
        }
        parts.join("; ")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::handover::clock as hhmm;
    use chrono::TimeZone;

    #[test]
    fn an_empty_trauma_section_asks_for_each_item() {
        assert_eq!(
            TraumaAssessment::default().missing(),
            [
                "Trauma: mechanism",
                "Trauma: injuries, or none found",
                "Trauma: catastrophic haemorrhage or not",
                "Trauma: major trauma triage result",
            ]
        );
    }

    #[test]
    fn a_tourniquet_needs_its_time_and_is_said_first() {
        let mut t = TraumaAssessment {
            mechanism: Some(Mechanism::Stabbing),
            mechanism_details: "Single wound, left thigh".into(),
            catastrophic_haemorrhage: Some(true),
            triage: Some(TraumaTriage::MajorTraumaCentre),
            ..TraumaAssessment::default()
        };
        t.add_injury(Injury {
            region: BodyRegion::LeftLeg,
            kind: InjuryKind::Penetrating,
        });
        t.add_injury(Injury {
            region: BodyRegion::LeftLeg,
            kind: InjuryKind::Penetrating,
        });
        assert_eq!(t.injuries.len(), 1, "the same injury is kept once");
        assert_eq!(t.missing(), ["Trauma: how the haemorrhage was controlled"]);
        t.haemorrhage_control = Some(HaemorrhageControl::Tourniquet);
        assert_eq!(t.missing(), ["Trauma: tourniquet time"]);
        t.tourniquet_utc = Some(Utc.with_ymd_and_hms(2026, 3, 1, 10, 5, 0).unwrap());
        assert!(t.missing().is_empty());
        assert_eq!(
            t.mechanism_text().as_deref(),
            Some("Stabbing: Single wound, left thigh")
        );
        assert_eq!(
            t.injuries_text(hhmm),
            "CATASTROPHIC HAEMORRHAGE, tourniquet on at 10:05; injuries: Left leg: penetrating \
             wound; Triage positive: major trauma centre"
        );
    }
}
