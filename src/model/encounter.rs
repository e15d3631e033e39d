//! The patient encounter: one ambulance attendance, as a serde document.
//!
//! The whole record is one JSON document so that a version can be hashed, signed, pushed and
//! exported as a unit. Free text fields are plain `String`s (empty means "not recorded");
//! anything with rules (NHS number, observations) is a checked type.

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::dose::DoseUnit;
use super::news2::{self, News2, News2Score, Spo2Scale};
use super::nhs_number::NhsNumber;
use super::observations::ObservationSet;

/// Where a record is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RecordStatus {
    /// Being written; may change on every edit.
    Draft,
    /// Completed and signed by the clinician; immutable.
    Completed,
    /// A later signed version that changes a completed record, with a reason.
    Amended,
}

impl RecordStatus {
    /// The status as stored in indexed columns and sent on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            RecordStatus::Draft => "draft",
            RecordStatus::Completed => "completed",
            RecordStatus::Amended => "amended",
        }
    }

    /// Parses [`RecordStatus::as_str`] output.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "draft" => Some(RecordStatus::Draft),
            "completed" => Some(RecordStatus::Completed),
            "amended" => Some(RecordStatus::Amended),
            _ => None,
        }
    }

    /// True for the signed statuses whose versions are immutable.
    pub fn is_signed(self) -> bool {
        !matches!(self, RecordStatus::Draft)
    }
}

/// The UK ambulance milestones of an incident, in the order they should happen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Milestone {
    CallConnected,
    Mobilised,
    EnRoute,
    OnScene,
    AtPatient,
    LeftScene,
    AtHospital,
    Handover,
    Clear,
}

impl Milestone {
    /// All milestones in the order they should occur.
    pub const ALL: [Milestone; 9] = [
        Milestone::CallConnected,
        Milestone::Mobilised,
        Milestone::EnRoute,
        Milestone::OnScene,
        Milestone::AtPatient,
        Milestone::LeftScene,
        Milestone::AtHospital,
        Milestone::Handover,
        Milestone::Clear,
    ];

    /// The milestone as crews say it.
    pub fn label(self) -> &'static str {
        match self {
            Milestone::CallConnected => "Call connected",
            Milestone::Mobilised => "Mobilised",
            Milestone::EnRoute => "En route",
            Milestone::OnScene => "On scene",
            Milestone::AtPatient => "At patient",
            Milestone::LeftScene => "Left scene",
            Milestone::AtHospital => "At hospital",
            Milestone::Handover => "Handover",
            Milestone::Clear => "Clear",
        }
    }
}

/// Milestone times; each is stamped with one tap and may be edited.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct IncidentTimes {
    #[serde(default)]
    pub call_connected_utc: Option<DateTime<Utc>>,
    #[serde(default)]
    pub mobilised_utc: Option<DateTime<Utc>>,
    #[serde(default)]
    pub en_route_utc: Option<DateTime<Utc>>,
    #[serde(default)]
    pub on_scene_utc: Option<DateTime<Utc>>,
    #[serde(default)]
    pub at_patient_utc: Option<DateTime<Utc>>,
    #[serde(default)]
    pub left_scene_utc: Option<DateTime<Utc>>,
    #[serde(default)]
    pub at_hospital_utc: Option<DateTime<Utc>>,
    #[serde(default)]
    pub handover_utc: Option<DateTime<Utc>>,
    #[serde(default)]
    pub clear_utc: Option<DateTime<Utc>>,
}

/// A milestone recorded earlier than the one before it: a warning, never a block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeOrderWarning {
    pub milestone: Milestone,
    pub earlier_than: Milestone,
}

impl TimeOrderWarning {
    /// The warning in words.
    pub fn message(&self) -> String {
        format!(
            "{} is earlier than {}: check the time",
            self.milestone.label(),
            self.earlier_than.label().to_lowercase()
        )
    }
}

impl IncidentTimes {
    /// The time of one milestone.
    pub fn get(&self, m: Milestone) -> Option<DateTime<Utc>> {
        *self.slot(m)
    }

    /// Sets (or clears) one milestone.
    pub fn set(&mut self, m: Milestone, at: Option<DateTime<Utc>>) {
        *self.slot_mut(m) = at;
    }

    fn slot(&self, m: Milestone) -> &Option<DateTime<Utc>> {
        match m {
            Milestone::CallConnected => &self.call_connected_utc,
            Milestone::Mobilised => &self.mobilised_utc,
            Milestone::EnRoute => &self.en_route_utc,
            Milestone::OnScene => &self.on_scene_utc,
            Milestone::AtPatient => &self.at_patient_utc,
            Milestone::LeftScene => &self.left_scene_utc,
            Milestone::AtHospital => &self.at_hospital_utc,
            Milestone::Handover => &self.handover_utc,
            Milestone::Clear => &self.clear_utc,
        }
    }

    fn slot_mut(&mut self, m: Milestone) -> &mut Option<DateTime<Utc>> {
        match m {
            Milestone::CallConnected => &mut self.call_connected_utc,
            Milestone::Mobilised => &mut self.mobilised_utc,
            Milestone::EnRoute => &mut self.en_route_utc,
            Milestone::OnScene => &mut self.on_scene_utc,
            Milestone::AtPatient => &mut self.at_patient_utc,
            Milestone::LeftScene => &mut self.left_scene_utc,
            Milestone::AtHospital => &mut self.at_hospital_utc,
            Milestone::Handover => &mut self.handover_utc,
            Milestone::Clear => &mut self.clear_utc,
        }
    }

    /// Each recorded milestone that is earlier than the latest recorded milestone before it.
    pub fn order_warnings(&self) -> Vec<TimeOrderWarning> {
        let mut out = Vec::new();
        let mut previous: Option<(Milestone, DateTime<Utc>)> = None;
        for m in Milestone::ALL {
            if let Some(at) = self.get(m) {
                if let Some((prev_m, prev_at)) = previous
                    && at < prev_at
                {
                    out.push(TimeOrderWarning {
                        milestone: m,
                        earlier_than: prev_m,
                    });
                    continue;
                }
                previous = Some((m, at));
            }
        }
        out
    }

    /// The earliest recorded milestone: the best available "time of incident".
    pub fn first_recorded(&self) -> Option<(Milestone, DateTime<Utc>)> {
        Milestone::ALL
            .iter()
            .find_map(|m| self.get(*m).map(|t| (*m, t)))
    }
}

/// Incident details from dispatch and the crew.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Incident {
    #[serde(default)]
    pub incident_number: String,
    #[serde(default)]
    pub call_sign: String,
    #[serde(default)]
    pub location: String,
    #[serde(default)]
    pub times: IncidentTimes,
}

/// Sex as recorded for clinical purposes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Sex {
    Female,
    Male,
    Other,
    Unknown,
}

impl Sex {
    /// All values, for pick lists.
    pub const ALL: [Sex; 4] = [Sex::Female, Sex::Male, Sex::Other, Sex::Unknown];

    /// In words.
    pub fn label(self) -> &'static str {
        match self {
            Sex::Female => "Female",
            Sex::Male => "Male",
            Sex::Other => "Other",
            Sex::Unknown => "Unknown",
        }
    }
}

/// Who the patient is.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Patient {
    #[serde(default)]
    pub given_name: String,
    #[serde(default)]
    pub family_name: String,
    #[serde(default)]
    pub date_of_birth: Option<NaiveDate>,
    /// Used when the date of birth is not known.
    #[serde(default)]
    pub estimated_age_years: Option<u32>,
    #[serde(default)]
    pub sex: Option<Sex>,
    #[serde(default)]
    pub nhs_number: Option<NhsNumber>,
    #[serde(default)]
    pub address: String,
    #[serde(default)]
    pub gp_practice: String,
    /// Asked because NEWS2 is not validated in pregnancy or up to 6 weeks after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pregnancy: Option<Pregnancy>,
}

/// Whether the patient is pregnant or recently was: NEWS2 is not validated then.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Pregnancy {
    NotPregnant,
    Pregnant {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        gestation_weeks: Option<u8>,
    },
    /// Up to 6 weeks after giving birth.
    PostPartum,
    Unknown,
}

impl Pregnancy {
    /// The choices, in the order offered (gestation is asked separately).
    pub const CHOICES: [Pregnancy; 4] = [
        Pregnancy::NotPregnant,
        Pregnancy::Pregnant {
            gestation_weeks: None,
        },
        Pregnancy::PostPartum,
        Pregnancy::Unknown,
    ];

    /// In words.
    pub fn label(self) -> String {
        match self {
            Pregnancy::NotPregnant => "Not pregnant".to_owned(),
            Pregnancy::Pregnant {
                gestation_weeks: Some(w),
            } => format!("Pregnant, {w} weeks"),
            Pregnancy::Pregnant {
                gestation_weeks: None,
            } => "Pregnant".to_owned(),
            Pregnancy::PostPartum => "Up to 6 weeks post-partum".to_owned(),
            Pregnancy::Unknown => "Pregnancy unknown".to_owned(),
        }
    }

    /// True when NEWS2 is not validated for this patient.
    pub fn affects_news2(self) -> bool {
        matches!(self, Pregnancy::Pregnant { .. } | Pregnancy::PostPartum)
    }

    /// Whether two values are the same choice, gestation aside.
    pub fn same_choice(self, other: Pregnancy) -> bool {
        std::mem::discriminant(&self) == std::mem::discriminant(&other)
    }
}

/// A date of birth that cannot be right.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DateOfBirthError {
    #[error("date of birth is in the future")]
    InFuture,
    #[error("date of birth is more than 130 years ago")]
    TooOld,
}

impl Patient {
    /// "Given Family", trimmed; empty when neither is recorded.
    /// What tells this patient apart from another on the same tablet, for the editor's top
    /// bar: "DOB 14/06/1957 (68) · NHS 943 476 5919", "Age about 70 · NHS not recorded".
    pub fn identifiers_line(&self, today: NaiveDate) -> String {
        let born = match (self.date_of_birth, self.age_years_on(today)) {
            (Some(dob), Some(age)) => format!("DOB {} ({age})", dob.format("%d/%m/%Y")),
            (Some(dob), None) => format!("DOB {}", dob.format("%d/%m/%Y")),
            (None, Some(age)) => format!("Age about {age}"),
            (None, None) => "DOB not recorded".to_owned(),
        };
        let nhs = match &self.nhs_number {
            Some(n) => format!("NHS {}", n.formatted()),
            None => "NHS not recorded".to_owned(),
        };
        format!("{born} · {nhs}")
    }

    pub fn display_name(&self) -> String {
        format!("{} {}", self.given_name.trim(), self.family_name.trim())
            .trim()
            .to_owned()
    }

    /// Age in whole years on `on`, from the date of birth, else the estimate.
    pub fn age_years_on(&self, on: NaiveDate) -> Option<u32> {
        match self.date_of_birth {
            Some(dob) => on.years_since(dob),
            None => self.estimated_age_years,
        }
    }

    /// Checks a date of birth against `today`.
    pub fn check_date_of_birth(dob: NaiveDate, today: NaiveDate) -> Result<(), DateOfBirthError> {
        if dob > today {
            return Err(DateOfBirthError::InFuture);
        }
        if today.years_since(dob).is_some_and(|y| y > 130) {
            return Err(DateOfBirthError::TooOld);
        }
        Ok(())
    }
}

/// Presenting complaint and history.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    #[serde(default)]
    pub presenting_complaint: String,
    /// Mechanism of injury or history of the presenting complaint.
    #[serde(default)]
    pub history_of_complaint: String,
    #[serde(default)]
    pub past_medical_history: String,
    #[serde(default)]
    pub medications: String,
    /// Free text: the allergies as said, or "NKDA" (no known drug allergies) or "Unable to
    /// establish" (see [`super::AllergyStatus`]).
    #[serde(default)]
    pub allergies: String,
    /// Allergy classes from the formulary's list ("penicillins"), checked against every drug
    /// given from the formulary.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub allergy_classes: Vec<String>,
    #[serde(default)]
    pub safeguarding: super::safeguarding::Safeguarding,
    /// DNACPR, ReSPECT or other advance decisions; absent from the document until answered.
    #[serde(default, skip_serializing_if = "super::AdvanceDecisions::is_empty")]
    pub advance_decisions: super::AdvanceDecisions,
}

/// A procedure performed (cannulation, splint, airway...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Intervention {
    pub what: String,
    pub at_utc: DateTime<Utc>,
    #[serde(default)]
    pub by: String,
    #[serde(default)]
    pub details: String,
}

/// A drug given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DrugGiven {
    pub drug: String,
    /// The amount, in `unit`; more than zero (see [`super::dose::parse_dose`]).
    pub dose: f64,
    pub unit: DoseUnit,
    pub route: String,
    pub at_utc: DateTime<Utc>,
    #[serde(default)]
    pub by: String,
    /// The formulary entry given, by id; `None` for a drug entered as "other (not in
    /// formulary)" (and drugs recorded before the formulary), which every output marks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub formulary_id: Option<String>,
    /// The form and strength ("10 mg in 1 mL injection"); empty when not recorded.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub form: String,
    /// Checks the clinician was shown when adding it and went on through.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub overrides: Vec<super::formulary::DoseOverride>,
    /// A controlled drug's witness, batch and amount wasted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub controlled: Option<super::formulary::ControlledDrugRecord>,
}

impl DrugGiven {
    /// True for a drug not from the formulary.
    pub fn is_other(&self) -> bool {
        self.formulary_id.is_none()
    }

    /// "Morphine sulfate 5 milligrams IV", with "(not in formulary)" for another drug.
    pub fn summary(&self) -> String {
        let mut out = format!(
            "{} {} {}",
            self.drug,
            self.unit.amount(self.dose),
            self.route
        );
        if self.is_other() {
            out.push_str(" (not in formulary)");
        }
        out
    }
}

/// How the encounter ended.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Outcome {
    ConveyedTo {
        hospital: String,
        /// The destination's ODS code, when it was picked from the trust's list.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        ods_code: Option<String>,
    },
    NotConveyed {
        reason: String,
    },
    Referred {
        to: String,
    },
    Declined,
    Deceased,
}

impl Outcome {
    /// True when the patient stays where they are: not conveyed, referred elsewhere, or
    /// refusing conveyance. Such a record needs its non-conveyance section at sign-off.
    pub fn is_non_conveyance(&self) -> bool {
        matches!(
            self,
            Outcome::NotConveyed { .. } | Outcome::Referred { .. } | Outcome::Declined
        )
    }

    /// Where the patient is taken, with the ODS code when it was picked from the trust's
    /// list: "Sample Royal Infirmary (ODS XX1AA)". `None` unless conveyed.
    pub fn destination(&self) -> Option<String> {
        match self {
            Outcome::ConveyedTo {
                hospital,
                ods_code: Some(code),
            } => Some(format!("{} (ODS {code})", hospital.trim())),
            Outcome::ConveyedTo { hospital, .. } => Some(hospital.trim().to_owned()),
            _ => None,
        }
    }

    /// A one-line summary.
    pub fn summary(&self) -> String {
        match self {
            Outcome::ConveyedTo { .. } => {
                format!("Conveyed to {}", self.destination().unwrap_or_default())
            }
            Outcome::NotConveyed { reason } if reason.trim().is_empty() => {
                "Not conveyed".to_owned()
            }
            Outcome::NotConveyed { reason } => format!("Not conveyed: {reason}"),
            Outcome::Referred { to } => format!("Referred to {to}"),
            Outcome::Declined => "Patient declined conveyance".to_owned(),
            Outcome::Deceased => "Deceased".to_owned(),
        }
    }
}

/// A crew member on the encounter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CrewMember {
    pub name: String,
    /// Paramedic, EMT, technician...
    #[serde(default)]
    pub role: String,
    /// HCPC or staff number.
    #[serde(default)]
    pub registration: String,
}

/// The clinician's sign-off, stamped when the record is completed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SignOff {
    pub clinician_name: String,
    #[serde(default)]
    pub registration: String,
    pub signed_at_utc: DateTime<Utc>,
}

/// Pre-alert details for the receiving hospital (the ER of ATMISTER).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PreAlert {
    #[serde(default)]
    pub eta_utc: Option<DateTime<Utc>>,
    #[serde(default)]
    pub requirements: String,
}

/// One ambulance patient encounter.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Encounter {
    /// Client-made UUIDv7: unique without a server, sortable by creation time.
    pub id: Uuid,
    pub status: RecordStatus,
    pub created_at_utc: DateTime<Utc>,
    #[serde(default)]
    pub incident: Incident,
    #[serde(default)]
    pub patient: Patient,
    #[serde(default)]
    pub history: History,
    /// The presentations picked and the sections they bring (stroke, 12-lead ECGs). Absent
    /// from records that have none.
    #[serde(default, skip_serializing_if = "super::Assessment::is_empty")]
    pub assessment: super::Assessment,
    #[serde(default)]
    pub spo2_scale: Spo2Scale,
    #[serde(default)]
    pub observations: Vec<ObservationSet>,
    #[serde(default)]
    pub interventions: Vec<Intervention>,
    #[serde(default)]
    pub drugs: Vec<DrugGiven>,
    #[serde(default)]
    pub outcome: Option<Outcome>,
    /// Why the patient was not conveyed, their capacity, consent, advice and signature:
    /// required at sign-off when the outcome leaves the patient at home
    /// ([`Outcome::is_non_conveyance`]). Absent from records made before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub non_conveyance: Option<super::NonConveyance>,
    #[serde(default)]
    pub pre_alert: PreAlert,
    #[serde(default)]
    pub notes: String,
    #[serde(default)]
    pub crew: Vec<CrewMember>,
    #[serde(default)]
    pub sign_off: Option<SignOff>,
    /// Why this version amends a completed record; set on amended versions only.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amendment_reason: Option<String>,
}

impl Encounter {
    /// A new, empty draft created now.
    pub fn new_draft(now: DateTime<Utc>) -> Self {
        Self {
            id: Uuid::now_v7(),
            status: RecordStatus::Draft,
            created_at_utc: now,
            incident: Incident::default(),
            patient: Patient::default(),
            history: History::default(),
            assessment: super::Assessment::default(),
            spo2_scale: Spo2Scale::Scale1,
            observations: Vec::new(),
            interventions: Vec::new(),
            drugs: Vec::new(),
            outcome: None,
            non_conveyance: None,
            pre_alert: PreAlert::default(),
            notes: String::new(),
            crew: Vec::new(),
            sign_off: None,
            amendment_reason: None,
        }
    }

    /// The patient's age when the encounter began.
    pub fn patient_age_years(&self) -> Option<u32> {
        self.patient.age_years_on(self.created_at_utc.date_naive())
    }

    /// The SpO2 scale a set is scored on: scale 2 when chosen for that set, or when the record
    /// chose it for every set (records made before the scale was chosen per set); otherwise
    /// scale 1. Choosing scale 2 for a new set never rescores the sets before it.
    pub fn spo2_scale_for(&self, obs: &ObservationSet) -> Spo2Scale {
        if obs.spo2_scale2.is_some() || self.spo2_scale == Spo2Scale::Scale2 {
            Spo2Scale::Scale2
        } else {
            Spo2Scale::Scale1
        }
    }

    /// NEWS2 for one observation set of this encounter.
    pub fn news2_for(&self, obs: &ObservationSet) -> News2 {
        news2::score(obs, self.spo2_scale_for(obs), self.patient_age_years())
    }

    /// The observation sets in time order.
    pub fn observations_by_time(&self) -> Vec<&ObservationSet> {
        let mut sets: Vec<_> = self.observations.iter().collect();
        sets.sort_by_key(|o| o.taken_at_utc);
        sets
    }

    /// The NEWS2 to show as the patient's current score: that of the latest **complete**
    /// set when there is one (a later glucose-only or pain-only recheck must not hide the
    /// vital signs), otherwise the latest set's result (incomplete or not applicable).
    /// `None` when nothing has been measured.
    pub fn latest_news2(&self) -> Option<News2> {
        self.current_news2().news2()
    }

    /// The latest complete NEWS2 with its set's time and the number of sets taken after it.
    pub fn latest_complete_news2(&self) -> Option<LatestNews2> {
        let sets = self.observations_by_time();
        sets.iter()
            .enumerate()
            .rev()
            .find_map(|(i, o)| match self.news2_for(o) {
                News2::Complete(score) => Some(LatestNews2 {
                    score,
                    taken_at_utc: o.taken_at_utc,
                    set: (*o).clone(),
                    newer_partial_sets: u32::try_from(sets.len() - i - 1).unwrap_or(u32::MAX),
                }),
                _ => None,
            })
    }

    /// Why a NEWS2 total shown for this patient needs a caveat beside it: not validated in
    /// pregnancy or up to 6 weeks after; an unknown age is scored on the adult chart until an
    /// age is entered. `None` when the score stands as it is.
    pub fn news2_caveat(&self) -> Option<&'static str> {
        if self.patient.pregnancy.is_some_and(Pregnancy::affects_news2) {
            return Some("NEWS2 not validated in pregnancy");
        }
        if self.patient_age_years().is_none() {
            return Some("adult chart assumed: no age recorded");
        }
        None
    }

    /// What to show where a current score belongs (see [`CurrentNews2`]).
    pub fn current_news2(&self) -> CurrentNews2 {
        if let Some(latest) = self.latest_complete_news2() {
            return CurrentNews2::Scored(Box::new(latest));
        }
        match self
            .observations_by_time()
            .last()
            .map(|o| self.news2_for(o))
        {
            None => CurrentNews2::NoObservations,
            Some(News2::NotApplicable) => CurrentNews2::NotApplicable,
            Some(News2::Incomplete { present }) => CurrentNews2::Incomplete { present },
            // Unreachable (a complete set was looked for above); reported as what it is.
            Some(News2::Complete(_)) => CurrentNews2::Incomplete { present: 7 },
        }
    }

    /// The sets taken after the latest complete one (all sets when none is complete), in
    /// time order: the partial rechecks a reader must still hear about.
    pub fn sets_after_latest_complete(&self) -> Vec<&ObservationSet> {
        let sets = self.observations_by_time();
        let after = self
            .latest_complete_news2()
            .map_or(0, |l| sets.len() - l.newer_partial_sets as usize);
        sets.into_iter().skip(after).collect()
    }
}

/// The latest complete NEWS2: the score, the set it came from and when it was taken, and how
/// many sets were taken after it (partial rechecks, which carry no score of their own).
#[derive(Debug, Clone, PartialEq)]
pub struct LatestNews2 {
    pub score: News2Score,
    pub taken_at_utc: DateTime<Utc>,
    pub set: ObservationSet,
    pub newer_partial_sets: u32,
}

impl LatestNews2 {
    /// "NEWS2 5 (medium) at 14:05", plus "; 1 newer partial set" when there are any, with
    /// times formatted by `clock`.
    pub fn display(&self, clock: impl Fn(DateTime<Utc>) -> String) -> String {
        let mut text = format!(
            "NEWS2 {} ({}) at {}",
            self.score.total,
            self.score.risk_and_scale(),
            clock(self.taken_at_utc)
        );
        if let Some(newer) = self.newer_partial_text() {
            text.push_str(&format!("; {newer}"));
        }
        text
    }

    /// "1 newer partial set", "3 newer partial sets"; `None` when there are none.
    pub fn newer_partial_text(&self) -> Option<String> {
        match self.newer_partial_sets {
            0 => None,
            1 => Some("1 newer partial set".to_owned()),
            n => Some(format!("{n} newer partial sets")),
        }
    }
}

/// The patient's current NEWS2, as every screen and output shows it.
#[derive(Debug, Clone, PartialEq)]
pub enum CurrentNews2 {
    /// At least one complete set: the latest of them.
    Scored(Box<LatestNews2>),
    /// Sets exist but the patient is under 16.
    NotApplicable,
    /// Sets exist but none is complete; `present` of 7 inputs in the latest set.
    Incomplete {
        present: u8,
    },
    NoObservations,
}

impl CurrentNews2 {
    /// The score itself; `None` when nothing has been measured.
    pub fn news2(&self) -> Option<News2> {
        match self {
            CurrentNews2::Scored(l) => Some(News2::Complete(l.score)),
            CurrentNews2::NotApplicable => Some(News2::NotApplicable),
            CurrentNews2::Incomplete { present } => Some(News2::Incomplete { present: *present }),
            CurrentNews2::NoObservations => None,
        }
    }

    /// The one-line text: "NEWS2 5 (medium) at 14:05; 1 newer partial set",
    /// "NEWS2 incomplete (5/7)", "NEWS2 not used under 16", or "No observations".
    pub fn display(&self, clock: impl Fn(DateTime<Utc>) -> String) -> String {
        match self {
            CurrentNews2::Scored(l) => l.display(clock),
            CurrentNews2::NotApplicable => News2::NotApplicable.display(),
            CurrentNews2::Incomplete { present } => {
                News2::Incomplete { present: *present }.display()
            }
            CurrentNews2::NoObservations => "No observations".to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn at(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 1, h, m, 0).single().unwrap()
    }

    #[test]
    fn out_of_order_times_warn() {
        let mut t = IncidentTimes::default();
        t.set(Milestone::CallConnected, Some(at(10, 0)));
        t.set(Milestone::OnScene, Some(at(10, 12)));
        t.set(Milestone::AtPatient, Some(at(10, 10)));
        t.set(Milestone::LeftScene, Some(at(10, 40)));
        let w = t.order_warnings();
        assert_eq!(
            w,
            vec![TimeOrderWarning {
                milestone: Milestone::AtPatient,
                earlier_than: Milestone::OnScene
            }]
        );
        assert_eq!(
            w[0].message(),
            "At patient is earlier than on scene: check the time"
        );
    }

    #[test]
    fn in_order_times_do_not_warn() {
        let mut t = IncidentTimes::default();
        for (i, m) in Milestone::ALL.iter().enumerate() {
            t.set(*m, Some(at(10, i as u32)));
        }
        assert!(t.order_warnings().is_empty());
    }

    #[test]
    fn age_from_date_of_birth_or_estimate() {
        let mut p = Patient {
            date_of_birth: NaiveDate::from_ymd_opt(2010, 3, 2),
            ..Patient::default()
        };
        assert_eq!(
            p.age_years_on(NaiveDate::from_ymd_opt(2026, 3, 1).unwrap()),
            Some(15)
        );
        assert_eq!(
            p.age_years_on(NaiveDate::from_ymd_opt(2026, 3, 2).unwrap()),
            Some(16)
        );
        p.date_of_birth = None;
        p.estimated_age_years = Some(70);
        assert_eq!(
            p.age_years_on(NaiveDate::from_ymd_opt(2026, 3, 2).unwrap()),
            Some(70)
        );
    }

    #[test]
    fn the_identifiers_line_tells_patients_apart() {
        let today = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
        let mut p = Patient::default();
        assert_eq!(
            p.identifiers_line(today),
            "DOB not recorded · NHS not recorded"
        );
        p.estimated_age_years = Some(70);
        assert_eq!(p.identifiers_line(today), "Age about 70 · NHS not recorded");
        p.date_of_birth = NaiveDate::from_ymd_opt(1957, 6, 14);
        p.nhs_number = Some(NhsNumber::parse("9434765919").unwrap());
        assert_eq!(
            p.identifiers_line(today),
            "DOB 14/06/1957 (68) · NHS 943 476 5919"
        );
    }

    #[test]
    fn future_date_of_birth_is_refused() {
        let today = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
        assert_eq!(
            Patient::check_date_of_birth(NaiveDate::from_ymd_opt(2026, 3, 2).unwrap(), today),
            Err(DateOfBirthError::InFuture)
        );
        assert!(Patient::check_date_of_birth(today, today).is_ok());
    }

    /// A set scoring 5 (medium): RR 22 (2), SpO2 95 on air (1), SBP 105 (1), pulse 95 (1),
    /// alert, 37.0 °C.
    fn complete_set(at: DateTime<Utc>) -> ObservationSet {
        use crate::model::observations::*;
        let mut s = ObservationSet::empty(at);
        s.resp_rate_per_min = Some(RespRatePerMin::new(22).unwrap());
        s.spo2_percent = Some(Spo2Percent::new(95).unwrap());
        s.inspired = Some(Inspired::Air);
        s.systolic_mmhg = Some(SystolicMmHg::new(105).unwrap());
        s.pulse_bpm = Some(PulseBpm::new(95).unwrap());
        s.acvpu = Some(Acvpu::Alert);
        s.temperature_celsius = Some(TemperatureCelsius::new(37.0).unwrap());
        s
    }

    fn glucose_only(at: DateTime<Utc>) -> ObservationSet {
        let mut s = ObservationSet::empty(at);
        s.glucose_mmol_per_l = Some(crate::model::GlucoseMmolPerL::new(5.4).unwrap());
        s
    }

    fn adult() -> Encounter {
        let mut e = Encounter::new_draft(at(9, 0));
        e.patient.estimated_age_years = Some(60);
        e
    }

    #[test]
    fn a_partial_recheck_does_not_hide_the_latest_complete_score() {
        struct Case {
            name: &'static str,
            sets: Vec<ObservationSet>,
            // (total, taken at, newer partial sets), or what is shown instead.
            want: Result<(u8, DateTime<Utc>, u32), &'static str>,
        }
        let cases = [
            Case {
                name: "no observations",
                sets: vec![],
                want: Err("No observations"),
            },
            Case {
                name: "one complete set",
                sets: vec![complete_set(at(9, 10))],
                want: Ok((5, at(9, 10), 0)),
            },
            Case {
                name: "glucose-only recheck after a complete set",
                sets: vec![complete_set(at(9, 10)), glucose_only(at(9, 20))],
                want: Ok((5, at(9, 10), 1)),
            },
            Case {
                name: "entered out of time order",
                sets: vec![
                    glucose_only(at(9, 30)),
                    complete_set(at(9, 10)),
                    glucose_only(at(9, 20)),
                ],
                want: Ok((5, at(9, 10), 2)),
            },
            Case {
                name: "only partial sets",
                sets: vec![glucose_only(at(9, 10))],
                want: Err("NEWS2 incomplete (0/7)"),
            },
        ];
        for c in cases {
            let mut e = adult();
            e.observations = c.sets;
            let current = e.current_news2();
            match c.want {
                Ok((total, taken, newer)) => {
                    let l = e.latest_complete_news2().expect(c.name);
                    assert_eq!(
                        (l.score.total, l.taken_at_utc, l.newer_partial_sets),
                        (total, taken, newer),
                        "{}",
                        c.name
                    );
                    assert_eq!(
                        e.latest_news2().and_then(|n| n.total()),
                        Some(total),
                        "{}",
                        c.name
                    );
                    assert_eq!(
                        e.sets_after_latest_complete().len(),
                        newer as usize,
                        "{}",
                        c.name
                    );
                    assert!(matches!(current, CurrentNews2::Scored(_)), "{}", c.name);
                }
                Err(text) => {
                    assert_eq!(
                        current.display(|t| t.format("%H:%M").to_string()),
                        text,
                        "{}",
                        c.name
                    );
                    assert_eq!(e.latest_news2().and_then(|n| n.total()), None, "{}", c.name);
                }
            }
        }
    }

    #[test]
    fn scale_2_is_chosen_per_set_and_never_rescores_earlier_sets() {
        use crate::model::observations::*;
        let low_sat = |at: DateTime<Utc>| {
            let mut s = complete_set(at);
            s.spo2_percent = Some(Spo2Percent::new(88).unwrap());
            s
        };
        let mut e = adult();
        e.observations = vec![low_sat(at(9, 10))];
        // SpO2 88 on air: 3 points on scale 1.
        let before = e.news2_for(&e.observations[0]).total();
        assert_eq!(before, Some(7));
        let mut second = low_sat(at(9, 20));
        second.spo2_scale2 = Some(Scale2Choice::hypercapnic_failure("A. Paramedic"));
        e.observations.push(second);
        // The earlier set keeps its score; the new one scores 88 on air as 0 on scale 2.
        assert_eq!(e.news2_for(&e.observations[0]).total(), before);
        assert_eq!(e.news2_for(&e.observations[1]).total(), Some(4));
        assert_eq!(
            e.news2_for(&e.observations[1]).display(),
            "NEWS2 4 (low, SpO2 scale 2)"
        );
        assert_eq!(e.news2_for(&e.observations[0]).display(), "NEWS2 7 (high)");
        assert_eq!(
            e.observations[1].spo2_scale2.as_ref().unwrap().reason,
            "confirmed hypercapnic respiratory failure"
        );
        // A record that chose scale 2 for every set, before the choice was per set, still does.
        e.spo2_scale = Spo2Scale::Scale2;
        assert_eq!(e.news2_for(&e.observations[0]).total(), Some(4));
    }

    #[test]
    fn news2_says_when_it_is_not_validated() {
        let mut e = adult();
        e.observations = vec![complete_set(at(9, 10))];
        assert_eq!(e.news2_caveat(), None);
        // A child with no age yet: scored on the adult chart, and saying so.
        e.patient.estimated_age_years = None;
        assert_eq!(e.latest_news2().and_then(|n| n.total()), Some(5));
        assert_eq!(
            e.news2_caveat(),
            Some("adult chart assumed: no age recorded")
        );
        // Then the age is entered: 9 years, no NEWS2 at all.
        e.patient.estimated_age_years = Some(9);
        assert_eq!(e.latest_news2(), Some(News2::NotApplicable));
        assert_eq!(
            e.current_news2().display(|t| t.to_string()),
            "NEWS2 not used under 16"
        );
        e.patient.estimated_age_years = Some(30);
        for (pregnancy, caveat) in [
            (Pregnancy::NotPregnant, None),
            (Pregnancy::Unknown, None),
            (
                Pregnancy::Pregnant {
                    gestation_weeks: Some(32),
                },
                Some("NEWS2 not validated in pregnancy"),
            ),
            (
                Pregnancy::PostPartum,
                Some("NEWS2 not validated in pregnancy"),
            ),
        ] {
            e.patient.pregnancy = Some(pregnancy);
            assert_eq!(e.news2_caveat(), caveat, "{pregnancy:?}");
        }
    }

    #[test]
    fn the_current_score_says_when_and_what_came_after() {
        let mut e = adult();
        e.observations = vec![complete_set(at(9, 10)), glucose_only(at(9, 20))];
        let text = e.current_news2().display(|t| t.format("%H:%M").to_string());
        assert_eq!(text, "NEWS2 5 (medium) at 09:10; 1 newer partial set");
        e.observations.push(glucose_only(at(9, 25)));
        let text = e.current_news2().display(|t| t.format("%H:%M").to_string());
        assert_eq!(text, "NEWS2 5 (medium) at 09:10; 2 newer partial sets");
    }

    #[test]
    fn document_round_trips_through_json() {
        let mut e = Encounter::new_draft(at(9, 0));
        e.patient.nhs_number = Some(NhsNumber::parse("9434765919").unwrap());
        e.outcome = Some(Outcome::ConveyedTo {
            hospital: "Royal Infirmary".into(),
            ods_code: None,
        });
        let json = serde_json::to_string(&e).unwrap();
        let back: Encounter = serde_json::from_str(&json).unwrap();
        assert_eq!(back, e);
    }
}
