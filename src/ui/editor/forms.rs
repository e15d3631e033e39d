//! Text the crew is typing that has not (yet) become a checked value: times as HH:MM, the NHS
//! number, the date of birth, numbers. Each buffer keeps exactly what was typed, so a value
//! that fails its check stays on screen beside its error instead of vanishing.

use chrono::{DateTime, Local, NaiveDate, NaiveTime, TimeZone, Timelike, Utc};

use crate::model::{Encounter, Milestone};

/// Formats a stored time as the crew's local 24-hour clock ("14:05").
pub fn clock_local(at: DateTime<Utc>) -> String {
    at.with_timezone(&Local).format("%H:%M").to_string()
}

/// Now, to the second (sub-second precision means nothing on a record).
pub fn now_utc() -> DateTime<Utc> {
    let now = Utc::now();
    now.with_nanosecond(0).unwrap_or(now)
}

/// The message shown beside a time that cannot be read.
pub const TIME_FORMAT_HELP: &str = "Enter the time as HH:MM (24-hour clock)";

/// Reads "14:05", "1405" or "9:05" as a local time on `date`.
pub fn parse_clock(text: &str, date: NaiveDate) -> Result<DateTime<Utc>, &'static str> {
    let t = text.trim();
    let time = NaiveTime::parse_from_str(t, "%H:%M")
        .or_else(|_| {
            if t.len() == 4 && t.chars().all(|c| c.is_ascii_digit()) {
                NaiveTime::parse_from_str(&format!("{}:{}", &t[..2], &t[2..]), "%H:%M")
            } else {
                NaiveTime::parse_from_str("invalid", "%H:%M")
            }
        })
        .map_err(|_| TIME_FORMAT_HELP)?;
    Local
        .from_local_datetime(&date.and_time(time))
        .earliest()
        .map(|t| t.with_timezone(&Utc))
        .ok_or(TIME_FORMAT_HELP)
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
    pub error: Option<&'static str>,
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
    /// leaves the stored time alone and shows the problem.
    pub fn apply(&mut self, date: NaiveDate, target: &mut Option<DateTime<Utc>>) {
        if self.text.trim().is_empty() {
            *target = None;
            self.error = None;
            return;
        }
        match parse_clock(&self.text, date) {
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
}

/// The form for adding a drug.
#[derive(Debug, Clone, Default)]
pub struct DrugForm {
    pub drug: String,
    pub dose: String,
    pub unit: String,
    pub route: String,
    pub time: String,
    pub by: String,
    pub error: Option<String>,
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
    pub eta: TimeText,
    pub intervention: InterventionForm,
    pub drug: DrugForm,
    pub crew: CrewForm,
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

    #[test]
    fn clock_accepts_common_ways_of_typing_a_time() {
        let d = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
        let a = parse_clock("14:05", d).unwrap();
        assert_eq!(parse_clock("1405", d).unwrap(), a);
        assert_eq!(clock_local(a), "14:05");
        assert!(parse_clock("9:05", d).is_ok());
        assert_eq!(parse_clock("25:00", d), Err(TIME_FORMAT_HELP));
        assert_eq!(parse_clock("soon", d), Err(TIME_FORMAT_HELP));
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
        let d = NaiveDate::from_ymd_opt(2026, 3, 1).unwrap();
        let mut stored = Some(parse_clock("10:00", d).unwrap());
        let mut t = TimeText {
            text: "10:7x".into(),
            error: None,
        };
        t.apply(d, &mut stored);
        assert_eq!(t.error, Some(TIME_FORMAT_HELP));
        assert!(stored.is_some());
        t.text.clear();
        t.apply(d, &mut stored);
        assert!(stored.is_none());
    }
}
