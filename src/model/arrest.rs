//! The cardiac arrest section ([`CardiacArrest`]), after the Utstein core: who witnessed the
//! collapse, bystander CPR, the time of collapse and of the start of CPR, the first rhythm,
//! each shock with its time and energy, the airway, and how it ended: return of spontaneous
//! circulation with its time, resuscitation stopped and death verified, or life recognised as
//! extinct with no resuscitation attempted. Drugs given during the arrest are in the drug
//! record like any other.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Who saw the patient collapse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Witness {
    Unwitnessed,
    Bystander,
    /// The ambulance crew (bystander CPR does not apply).
    Crew,
}

impl Witness {
    pub const ALL: [Witness; 3] = [Witness::Unwitnessed, Witness::Bystander, Witness::Crew];

    pub fn label(self) -> &'static str {
        match self {
            Witness::Unwitnessed => "Unwitnessed",
            Witness::Bystander => "Bystander witnessed",
            Witness::Crew => "Crew witnessed",
        }
    }
}

/// The first rhythm seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArrestRhythm {
    Vf,
    Pvt,
    Pea,
    Asystole,
    /// Shocked by a public-access defibrillator before the crew saw a rhythm.
    UnknownShockable,
}

impl ArrestRhythm {
    pub const ALL: [ArrestRhythm; 5] = [
        ArrestRhythm::Vf,
        ArrestRhythm::Pvt,
        ArrestRhythm::Pea,
        ArrestRhythm::Asystole,
        ArrestRhythm::UnknownShockable,
    ];

    pub fn label(self) -> &'static str {
        match self {
            ArrestRhythm::Vf => "VF",
            ArrestRhythm::Pvt => "Pulseless VT",
            ArrestRhythm::Pea => "PEA",
            ArrestRhythm::Asystole => "Asystole",
            ArrestRhythm::UnknownShockable => "Shocked by public AED",
        }
    }
}

/// The airway used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArrestAirway {
    BagValveMask,
    Supraglottic,
    Intubated,
}

impl ArrestAirway {
    pub const ALL: [ArrestAirway; 3] = [
        ArrestAirway::BagValveMask,
        ArrestAirway::Supraglottic,
        ArrestAirway::Intubated,
    ];

    pub fn label(self) -> &'static str {
        match self {
            ArrestAirway::BagValveMask => "Bag-valve-mask",
            ArrestAirway::Supraglottic => "Supraglottic airway",
            ArrestAirway::Intubated => "Tracheal tube",
        }
    }
}

/// How the arrest ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ArrestEnd {
    /// Return of spontaneous circulation.
    Rosc,
    /// Conveyed with CPR in progress.
    OngoingCpr,
    /// Resuscitation attempted, then stopped; death verified.
    ResuscitationStopped,
    /// Recognition of life extinct: no resuscitation attempted.
    LifeExtinct,
}

impl ArrestEnd {
    pub const ALL: [ArrestEnd; 4] = [
        ArrestEnd::Rosc,
        ArrestEnd::OngoingCpr,
        ArrestEnd::ResuscitationStopped,
        ArrestEnd::LifeExtinct,
    ];

    pub fn label(self) -> &'static str {
        match self {
            ArrestEnd::Rosc => "ROSC",
            ArrestEnd::OngoingCpr => "Conveyed with CPR ongoing",
            ArrestEnd::ResuscitationStopped => "Resuscitation stopped",
            ArrestEnd::LifeExtinct => "Life extinct (no resuscitation)",
        }
    }

    /// True when the patient died: a verification time is needed.
    pub fn is_death(self) -> bool {
        matches!(
            self,
            ArrestEnd::ResuscitationStopped | ArrestEnd::LifeExtinct
        )
    }
}

/// The times of the arrest, each typed or stamped with "Now".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ArrestTime {
    Collapse,
    CprStarted,
    Rosc,
    DeathVerified,
}

impl ArrestTime {
    pub const ALL: [ArrestTime; 4] = [
        ArrestTime::Collapse,
        ArrestTime::CprStarted,
        ArrestTime::Rosc,
        ArrestTime::DeathVerified,
    ];

    pub fn label(self) -> &'static str {
        match self {
            ArrestTime::Collapse => "Collapse",
            ArrestTime::CprStarted => "CPR started",
            ArrestTime::Rosc => "ROSC",
            ArrestTime::DeathVerified => "Death verified",
        }
    }
}

/// One shock.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Shock {
    pub at_utc: DateTime<Utc>,
    pub energy_joules: u16,
}

/// The arrest section, present while "Cardiac arrest" is one of the record's presentations.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CardiacArrest {
    #[serde(default)]
    pub witnessed: Option<Witness>,
    #[serde(default)]
    pub bystander_cpr: Option<bool>,
    #[serde(default)]
    pub collapse_utc: Option<DateTime<Utc>>,
    #[serde(default)]
    pub cpr_started_utc: Option<DateTime<Utc>>,
    #[serde(default)]
    pub first_rhythm: Option<ArrestRhythm>,
    /// In the order given.
    #[serde(default)]
    pub shocks: Vec<Shock>,
    #[serde(default)]
    pub airway: Option<ArrestAirway>,
    #[serde(default)]
    pub end: Option<ArrestEnd>,
    #[serde(default)]
    pub rosc_utc: Option<DateTime<Utc>>,
    #[serde(default)]
    pub death_verified_utc: Option<DateTime<Utc>>,
}

impl CardiacArrest {
    pub fn time(&self, t: ArrestTime) -> Option<DateTime<Utc>> {
        match t {
            ArrestTime::Collapse => self.collapse_utc,
            ArrestTime::CprStarted => self.cpr_started_utc,
            ArrestTime::Rosc => self.rosc_utc,
            ArrestTime::DeathVerified => self.death_verified_utc,
        }
    }

    pub fn time_mut(&mut self, t: ArrestTime) -> &mut Option<DateTime<Utc>> {
        match t {
            ArrestTime::Collapse => &mut self.collapse_utc,
            ArrestTime::CprStarted => &mut self.cpr_started_utc,
            ArrestTime::Rosc => &mut self.rosc_utc,
            ArrestTime::DeathVerified => &mut self.death_verified_utc,
        }
    }

    /// The times this arrest asks for: CPR only when resuscitation was attempted, ROSC only
    /// after ROSC, death verified only after a death.
    pub fn times_asked(&self) -> Vec<ArrestTime> {
        let mut out = vec![ArrestTime::Collapse];
        if self.end != Some(ArrestEnd::LifeExtinct) {
            out.push(ArrestTime::CprStarted);
        }
        match self.end {
            Some(ArrestEnd::Rosc) => out.push(ArrestTime::Rosc),
            Some(end) if end.is_death() => out.push(ArrestTime::DeathVerified),
            _ => {}
        }
        out
    }

    /// True when resuscitation was attempted (anything but life recognised as extinct).
    pub fn resuscitation_attempted(&self) -> bool {
        self.end != Some(ArrestEnd::LifeExtinct)
    }

    /// What is still needed before sign-off.
    pub fn missing(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.witnessed.is_none() {
            out.push("Cardiac arrest: witnessed by whom");
        }
        if self.witnessed != Some(Witness::Crew) && self.bystander_cpr.is_none() {
            out.push("Cardiac arrest: bystander CPR or not");
        }
        if self.end.is_none() {
            out.push("Cardiac arrest: how it ended (ROSC, ongoing, stopped, life extinct)");
        }
        for t in self.times_asked() {
            if self.time(t).is_none() {
                out.push(match t {
                    ArrestTime::Collapse => "Cardiac arrest: time of collapse",
                    ArrestTime::CprStarted => "Cardiac arrest: time CPR started",
                    ArrestTime::Rosc => "Cardiac arrest: time of ROSC",
                    ArrestTime::DeathVerified => "Cardiac arrest: time death was verified",
                });
            }
        }
        if self.resuscitation_attempted() {
            if self.first_rhythm.is_none() {
                out.push("Cardiac arrest: first rhythm");
            }
            if self.airway.is_none() {
                out.push("Cardiac arrest: airway");
            }
        }
        out
    }

    /// Times out of order, in words, shown beside the section (they do not block signing:
    /// the crew may have the clock of a bystander's phone).
    pub fn time_warnings(&self) -> Vec<String> {
        let mut out = Vec::new();
        let collapse = self.collapse_utc;
        let before = |a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>| match (a, b) {
            (Some(a), Some(b)) => a < b,
            _ => false,
        };
        if before(self.cpr_started_utc, collapse) {
            out.push("CPR started before the collapse".to_owned());
        }
        if before(self.rosc_utc, self.cpr_started_utc) {
            out.push("ROSC before CPR started".to_owned());
        }
        if self.shocks.iter().any(|s| before(Some(s.at_utc), collapse)) {
            out.push("A shock before the collapse".to_owned());
        }
        out
    }

    /// "Bystander witnessed, bystander CPR, first rhythm VF, 2 shocks, ROSC 02:31".
    pub fn summary(&self, clock: impl Fn(DateTime<Utc>) -> String) -> String {
        let mut parts = vec![format!(
            "Cardiac arrest{}",
            self.collapse_utc
                .map(|t| format!(" at {}", clock(t)))
                .unwrap_or_default()
        )];
        if let Some(w) = self.witnessed {
            parts.push(w.label().to_lowercase());
        }
        match self.bystander_cpr {
            Some(true) => parts.push("bystander CPR".to_owned()),
            Some(false) if self.witnessed != Some(Witness::Crew) => {
                parts.push("no bystander CPR".to_owned())
            }
            _ => {}
        }
        if let Some(r) = self.first_rhythm {
            parts.push(format!("first rhythm {}", r.label()));
        }
        match self.shocks.len() {
            0 => {}
            1 => parts.push("1 shock".to_owned()),
            n => parts.push(format!("{n} shocks")),
        }
        if let Some(a) = self.airway {
            parts.push(a.label().to_lowercase());
        }
        match self.end {
            Some(ArrestEnd::Rosc) => parts.push(match self.rosc_utc {
                Some(t) => format!("ROSC {}", clock(t)),
                None => "ROSC".to_owned(),
            }),
            Some(end) if end.is_death() => parts.push(match self.death_verified_utc {
                Some(t) => format!("{}, death verified {}", end.label(), clock(t)),
                None => end.label().to_owned(),
            }),
            Some(end) => parts.push(end.label().to_lowercase()),
            None => {}
        }
        parts.join(", ")
    }

    /// Each shock as "Shock 200 J at 02:15", for the treatment line.
    pub fn shock_lines(
        &self,
        clock: impl Fn(DateTime<Utc>) -> String,
    ) -> Vec<(DateTime<Utc>, String)> {
        self.shocks
            .iter()
            .map(|s| {
                (
                    s.at_utc,
                    format!("Shock {} J at {}", s.energy_joules, clock(s.at_utc)),
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::demo::fixed_time as at;
    use crate::model::handover::clock as hhmm;

    #[test]
    fn an_empty_arrest_asks_for_the_utstein_core() {
        assert_eq!(
            CardiacArrest::default().missing(),
            [
                "Cardiac arrest: witnessed by whom",
                "Cardiac arrest: bystander CPR or not",
                "Cardiac arrest: how it ended (ROSC, ongoing, stopped, life extinct)",
                "Cardiac arrest: time of collapse",
                "Cardiac arrest: time CPR started",
                "Cardiac arrest: first rhythm",
                "Cardiac arrest: airway",
            ]
        );
    }

    #[test]
    fn rosc_needs_its_time_and_life_extinct_needs_no_cpr_but_a_verification() {
        let mut a = CardiacArrest {
            witnessed: Some(Witness::Bystander),
            bystander_cpr: Some(true),
            collapse_utc: Some(at(2, 10)),
            cpr_started_utc: Some(at(2, 12)),
            first_rhythm: Some(ArrestRhythm::Vf),
            shocks: vec![
                Shock {
                    at_utc: at(2, 20),
                    energy_joules: 150,
                },
                Shock {
                    at_utc: at(2, 22),
                    energy_joules: 200,
                },
            ],
            airway: Some(ArrestAirway::Supraglottic),
            end: Some(ArrestEnd::Rosc),
            ..CardiacArrest::default()
        };
        assert_eq!(a.missing(), ["Cardiac arrest: time of ROSC"]);
        a.rosc_utc = Some(at(2, 31));
        assert!(a.missing().is_empty());
        assert_eq!(
            a.summary(hhmm),
            "Cardiac arrest at 02:10, bystander witnessed, bystander CPR, first rhythm VF, \
             2 shocks, supraglottic airway, ROSC 02:31"
        );
        assert_eq!(a.shock_lines(hhmm)[1].1, "Shock 200 J at 02:22");

        let role = CardiacArrest {
            witnessed: Some(Witness::Unwitnessed),
            bystander_cpr: Some(false),
            collapse_utc: Some(at(1, 0)),
            end: Some(ArrestEnd::LifeExtinct),
            ..CardiacArrest::default()
        };
        assert_eq!(role.missing(), ["Cardiac arrest: time death was verified"]);
        assert_eq!(
            role.times_asked(),
            [ArrestTime::Collapse, ArrestTime::DeathVerified]
        );
    }

    #[test]
    fn a_crew_witnessed_arrest_is_not_asked_about_bystander_cpr_and_times_out_of_order_are_said() {
        let a = CardiacArrest {
            witnessed: Some(Witness::Crew),
            collapse_utc: Some(at(2, 10)),
            cpr_started_utc: Some(at(2, 5)),
            ..CardiacArrest::default()
        };
        assert!(
            !a.missing()
                .contains(&"Cardiac arrest: bystander CPR or not")
        );
        assert_eq!(a.time_warnings(), ["CPR started before the collapse"]);
    }
}
