//! Text the crew is typing that has not (yet) become a checked value: times as HH:MM, the NHS
//! number, the date of birth, numbers. Each buffer keeps exactly what was typed, so a value
//! that fails its check stays on screen beside its error instead of vanishing.

use std::cell::Cell;

use chrono::{DateTime, Local, NaiveDate, Timelike, Utc};

use crate::model::clock_time::{self, ClockTimeError, Expect, Occurrence};
use crate::model::{DrugGiven, Encounter, Milestone};

/// Formats a stored time as the crew's local 24-hour clock ("14:05").
pub fn clock_local(at: DateTime<Utc>) -> String {
    at.with_timezone(&Local).format("%H:%M").to_string()
}

thread_local! {
    /// A wall clock fixed for this thread, for tests of the time rules ("it is 00:05").
    static FIXED_NOW: Cell<Option<DateTime<Utc>>> = const { Cell::new(None) };
}

/// Fixes the editor's wall clock on this thread (`None` returns to the real clock). The UI
/// runs on one thread, so a UI test can set "now" to just after midnight.
pub fn set_wall_clock_for_this_thread(at: Option<DateTime<Utc>>) {
    FIXED_NOW.with(|c| c.set(at));
}

/// Now, to the second (sub-second precision means nothing on a record).
pub fn now_utc() -> DateTime<Utc> {
    let now = FIXED_NOW.with(Cell::get).unwrap_or_else(Utc::now);
    now.with_nanosecond(0).unwrap_or(now)
}

/// Reads a typed clock time in the tablet's zone, placed by the rules of
/// [`crate::model::clock_time`]: a time of something that happened is its latest occurrence
/// at or before `reference`; an ETA or a correction is the occurrence nearest `reference`.
pub fn read_clock(
    text: &str,
    reference: DateTime<Utc>,
    expect: Expect,
) -> Result<DateTime<Utc>, ClockTimeError> {
    clock_time::resolve(text, reference, &Local, expect)
}

/// The text to offer for each occurrence of a repeated hour: "01:30 (1st)", "01:30 (2nd)".
pub fn with_occurrence(text: &str, occurrence: Occurrence) -> String {
    let bare = text
        .trim()
        .trim_end_matches(Occurrence::First.suffix())
        .trim_end_matches(Occurrence::Second.suffix())
        .trim_end();
    format!("{bare} {}", occurrence.suffix())
}

/// The message shown beside a date that cannot be read.
pub const DATE_FORMAT_HELP: &str = "Enter the date as DD/MM/YYYY";

/// Reads "14/06/1957", "14-06-1957", "14.06.1957" or "1957-06-14".
pub fn parse_date(text: &str) -> Result<NaiveDate, &'static str> {
    let t = text.trim();
    ["%d/%m/%Y", "%d-%m-%Y", "%d.%m.%Y", "%Y-%m-%d"]
        .iter()
        .find_map(|f| NaiveDate::parse_from_str(t, f).ok())
        .ok_or(DATE_FORMAT_HELP)
}

/// A time field's buffer and its problem, if any.
#[derive(Debug, Clone, Default)]
pub struct TimeText {
    pub text: String,
    pub error: Option<ClockTimeError>,
}

impl TimeText {
    /// The buffer for a stored time.
    pub fn from_time(at: Option<DateTime<Utc>>) -> Self {
        Self {
            text: at.map(clock_local).unwrap_or_default(),
            error: None,
        }
    }

    /// Applies the typed text: empty clears the time, a valid time sets it, anything else
    /// leaves the stored time alone and shows the problem. A time already set is corrected
    /// near where it was (a record may be amended days later); a new one is placed relative
    /// to `now` as `expect` says.
    pub fn apply(
        &mut self,
        now: DateTime<Utc>,
        expect: Expect,
        target: &mut Option<DateTime<Utc>>,
    ) {
        if self.text.trim().is_empty() {
            *target = None;
            self.error = None;
            return;
        }
        let placed = match *target {
            Some(current) => read_clock(&self.text, current, Expect::Nearest),
            None => read_clock(&self.text, now, expect),
        };
        match placed {
            Ok(t) => {
                *target = Some(t);
                self.error = None;
            }
            Err(e) => self.error = Some(e),
        }
    }
}

/// The form for adding an intervention.
#[derive(Debug, Clone, Default)]
pub struct InterventionForm {
    pub what: String,
    pub time: String,
    pub by: String,
    pub details: String,
    pub error: Option<String>,
    pub time_error: Option<ClockTimeError>,
}

impl InterventionForm {
    /// True when nothing has been typed.
    pub fn is_blank(&self) -> bool {
        [&self.what, &self.time, &self.by, &self.details]
            .iter()
            .all(|t| t.trim().is_empty())
    }
}

/// Why an entry form was not added.
#[derive(Debug, Clone, PartialEq)]
pub enum FormProblem {
    Text(String),
    Time(ClockTimeError),
    /// The formulary's checks raised these: the crew must look and confirm.
    Concerns(Vec<crate::model::formulary::DoseConcern>),
}

/// When a drug was given or an intervention done: blank is now, otherwise the typed clock
/// time's latest occurrence at or before now.
pub fn given_at(text: &str, now: DateTime<Utc>) -> Result<DateTime<Utc>, ClockTimeError> {
    if text.trim().is_empty() {
        Ok(now)
    } else {
        read_clock(text, now, Expect::Past)
    }
}

/// The form for adding a crew member.
#[derive(Debug, Clone, Default)]
pub struct CrewForm {
    pub name: String,
    pub role: String,
    pub registration: String,
}

/// Every typed-text buffer of the editor, other than the observation entry row.
#[derive(Debug, Clone, Default)]
pub struct Forms {
    /// One per [`Milestone::ALL`] entry, same order.
    pub times: Vec<TimeText>,
    pub nhs_number: String,
    pub nhs_error: Option<String>,
    pub date_of_birth: String,
    pub dob_error: Option<String>,
    pub estimated_age: String,
    pub age_error: Option<String>,
    /// Weeks of pregnancy, as typed.
    pub gestation_weeks: String,
    pub gestation_error: Option<String>,
    pub eta: TimeText,
    pub intervention: InterventionForm,
    pub drug: super::drugs::DrugForm,
    pub crew: CrewForm,
    /// The number pad: on or off, and the number field it types into.
    pub pad: super::number_pad::NumberPad,
    /// One-tap answers from the crew's recent records (call sign, crew, destinations).
    pub recent: crate::store::RecentChoices,
    /// The trust's reference data this tablet works from (formulary, destinations, staff);
    /// `None` until the store worker has read it.
    pub reference: Option<std::sync::Arc<crate::store::reference::ActiveReference>>,
    /// The drug or intervention the crew asked to remove, waiting for them to confirm.
    pub removing: Option<Removal>,
    /// Removals confirmed this frame, for the editor to audit.
    pub removed: Vec<crate::store::audit::Action>,
    /// A non-conveyance section set aside when the crew chose an outcome that does not need
    /// it, given back if they choose one that does.
    pub parked_non_conveyance: Option<crate::model::NonConveyance>,
    /// A stroke section set aside when the crew unpicked stroke, given back if they pick it
    /// again.
    pub parked_stroke: Option<crate::model::stroke::StrokeAssessment>,
    /// An arrest section set aside when the crew unpicked cardiac arrest.
    pub parked_arrest: Option<crate::model::arrest::CardiacArrest>,
    /// One per [`crate::model::arrest::ArrestTime::ALL`] entry, same order.
    pub arrest_times: Vec<TimeText>,
    /// Sepsis and falls sections set aside when unpicked.
    pub parked_sepsis: Option<crate::model::sepsis::SepsisScreen>,
    pub parked_fall: Option<crate::model::falls::FallAssessment>,
    /// Breathing and mental health sections set aside when unpicked.
    pub parked_breathing: Option<crate::model::breathing::BreathingAssessment>,
    pub parked_mental_health: Option<crate::model::mental_health::MentalHealthAssessment>,
    /// A trauma section set aside when unpicked.
    pub parked_trauma: Option<crate::model::trauma::TraumaAssessment>,
    /// The tourniquet time, as typed.
    pub tourniquet: TimeText,
    /// The injury being picked: its region and kind, added together.
    pub injury_region: Option<crate::model::trauma::BodyRegion>,
    pub injury_kind: Option<crate::model::trauma::InjuryKind>,
    /// Maternity and paediatric sections set aside when unpicked.
    pub parked_maternity: Option<crate::model::maternity::MaternityAssessment>,
    pub parked_paediatric: Option<crate::model::paediatric::PaediatricAssessment>,
    /// The child's weight in kilograms, as typed, and why it was refused.
    pub weight_kg: String,
    pub weight_error: Option<crate::model::paediatric::WeightError>,
    /// The sepsis screening and pre-alert times, as typed.
    pub sepsis_screened: TimeText,
    pub sepsis_pre_alert: TimeText,
    /// The stroke onset (or last-known-well) time and the stroke-unit pre-alert, as typed.
    pub stroke_onset: TimeText,
    pub stroke_pre_alert: TimeText,
    /// One per 12-lead ECG, same order.
    pub ecg_times: Vec<TimeText>,
    /// The signature stroke being drawn, as fractions of the pad (kept on lifting the finger).
    pub signature_stroke: Vec<(f32, f32)>,
}

/// Something recorded that the crew asked to remove, as it was when they asked.
#[derive(Debug, Clone, PartialEq)]
pub enum Removal {
    Drug(DrugGiven),
    Intervention(crate::model::Intervention),
}

impl Forms {
    /// Buffers showing what `e` holds.
    pub fn from_encounter(e: &Encounter) -> Self {
        Self {
            times: Milestone::ALL
                .iter()
                .map(|m| TimeText::from_time(e.incident.times.get(*m)))
                .collect(),
            nhs_number: e
                .patient
                .nhs_number
                .as_ref()
                .map(|n| n.formatted())
                .unwrap_or_default(),
            date_of_birth: e
                .patient
                .date_of_birth
                .map(|d| d.format("%d/%m/%Y").to_string())
                .unwrap_or_default(),
            estimated_age: e
                .patient
                .estimated_age_years
                .map(|a| a.to_string())
                .unwrap_or_default(),
            eta: TimeText::from_time(e.pre_alert.eta_utc),
            arrest_times: crate::model::arrest::ArrestTime::ALL
                .iter()
                .map(|t| TimeText::from_time(e.assessment.arrest.as_ref().and_then(|a| a.time(*t))))
                .collect(),
            weight_kg: e
                .assessment
                .paediatric
                .as_ref()
                .and_then(|p| p.weight_kg)
                .map(|kg| kg.to_string())
                .unwrap_or_default(),
            tourniquet: TimeText::from_time(
                e.assessment.trauma.as_ref().and_then(|t| t.tourniquet_utc),
            ),
            sepsis_screened: TimeText::from_time(
                e.assessment.sepsis.as_ref().and_then(|s| s.screened_utc),
            ),
            sepsis_pre_alert: TimeText::from_time(
                e.assessment.sepsis.as_ref().and_then(|s| s.pre_alert_utc),
            ),
            stroke_onset: TimeText::from_time(
                e.assessment.stroke.as_ref().and_then(|s| s.onset_utc),
            ),
            stroke_pre_alert: TimeText::from_time(
                e.assessment.stroke.as_ref().and_then(|s| s.pre_alert_utc),
            ),
            ecg_times: e
                .assessment
                .ecgs
                .iter()
                .map(|g| TimeText::from_time(g.taken_utc))
                .collect(),
            gestation_weeks: match e.patient.pregnancy {
                Some(crate::model::Pregnancy::Pregnant {
                    gestation_weeks: Some(w),
                }) => w.to_string(),
                _ => String::new(),
            },
            ..Self::default()
        }
    }

    /// The time buffer for one milestone.
    pub fn time_mut(&mut self, m: Milestone) -> Option<&mut TimeText> {
        let i = Milestone::ALL.iter().position(|x| *x == m)?;
        self.times.get_mut(i)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use chrono::TimeZone;

    /// Noon in the tablet's zone today, as UTC: a "now" far from midnight and any clock change.
    fn noon() -> DateTime<Utc> {
        let today = Local::now().date_naive();
        Local
            .from_local_datetime(&today.and_hms_opt(12, 0, 0).unwrap())
            .earliest()
            .unwrap()
            .with_timezone(&Utc)
    }

    #[test]
    fn clock_accepts_common_ways_of_typing_a_time() {
        let now = noon();
        let a = read_clock("11:05", now, Expect::Past).unwrap();
        assert_eq!(read_clock("1105", now, Expect::Past).unwrap(), a);
        assert_eq!(clock_local(a), "11:05");
        assert!(read_clock("9:05", now, Expect::Past).is_ok());
        assert_eq!(
            read_clock("25:00", now, Expect::Past),
            Err(ClockTimeError::Format)
        );
        assert_eq!(
            read_clock("soon", now, Expect::Past),
            Err(ClockTimeError::Format)
        );
        assert_eq!(
            read_clock("12:30", now, Expect::Past),
            Err(ClockTimeError::Future)
        );
        assert_eq!(with_occurrence("01:30", Occurrence::Second), "01:30 (2nd)");
        assert_eq!(
            with_occurrence("01:30 (2nd)", Occurrence::First),
            "01:30 (1st)"
        );
    }

    #[test]
    fn dates_read_the_uk_way() {
        assert_eq!(
            parse_date("14/06/1957"),
            Ok(NaiveDate::from_ymd_opt(1957, 6, 14).unwrap())
        );
        assert_eq!(parse_date("1957-06-14"), parse_date("14.06.1957"));
        assert_eq!(parse_date("31/02/2000"), Err(DATE_FORMAT_HELP));
    }

    #[test]
    fn a_bad_time_keeps_the_stored_value_and_says_why() {
        let now = noon();
        let mut stored = Some(read_clock("10:00", now, Expect::Past).unwrap());
        let mut t = TimeText {
            text: "10:7x".into(),
            error: None,
        };
        t.apply(now, Expect::Past, &mut stored);
        assert_eq!(t.error, Some(ClockTimeError::Format));
        assert!(stored.is_some());
        t.text.clear();
        t.apply(now, Expect::Past, &mut stored);
        assert!(stored.is_none());
    }

    #[test]
    fn a_set_time_is_corrected_near_where_it_was() {
        // A milestone stored days ago (an amendment) is corrected on its own day.
        let now = noon();
        let old = now - chrono::Duration::days(3);
        let mut stored = Some(old);
        let mut t = TimeText {
            text: clock_local(old - chrono::Duration::minutes(20)),
            error: None,
        };
        t.apply(now, Expect::Past, &mut stored);
        assert_eq!(t.error, None);
        assert_eq!(stored, Some(old - chrono::Duration::minutes(20)));
    }
}
