//! A trust's reference data ([`ReferenceData`]): its formulary, destinations, staff and pick
//! lists, as one versioned document, and the checks a document passes before anything uses
//! it ([`ReferenceData::from_json`]).
//!
//! A document is taken whole or not at all: the first problem is reported with its path in
//! the document ("formulary[2].adult_dose: the minimum 10 is above the maximum 5"), so whoever
//! prepared the file can find it. The format is described by `docs/reference-data.schema.json`;
//! a labelled sample (not clinical guidance) ships as `assets/reference-sample.json`.

use serde::{Deserialize, Serialize};

use super::{DoseUnit, Presentation};

/// The whole reference data set of one trust, at one version.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ReferenceData {
    /// Increases with every set the trust publishes.
    pub version: u32,
    pub trust: String,
    /// A demonstration set: sample data, not clinical guidance.
    #[serde(default)]
    pub sample: bool,
    pub formulary: Vec<FormularyDrug>,
    pub destinations: Vec<Destination>,
    pub staff: Vec<StaffMember>,
    #[serde(default)]
    pub presenting_complaints: Vec<String>,
    #[serde(default)]
    pub referral_services: Vec<String>,
}

/// One drug of the formulary.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FormularyDrug {
    pub id: String,
    pub name: String,
    /// Forms and strengths ("300 mg dispersible tablet").
    pub forms: Vec<String>,
    pub routes: Vec<String>,
    /// The one unit its doses are given in, written in full ("milligrams").
    pub unit: String,
    /// A single adult dose: outside it, the crew is asked again (a soft limit).
    #[serde(default)]
    pub adult_dose: Option<DoseRange>,
    /// A single child's dose per kilogram, a soft limit.
    #[serde(default)]
    pub paediatric_dose_per_kg: Option<DoseRange>,
    /// A usual adult dose, offered to adults as a one-tap pick (and checked like any dose).
    #[serde(default)]
    pub usual_adult_dose: Option<f64>,
    /// The most that may be given in one encounter, in `unit`.
    #[serde(default)]
    pub max_cumulative: Option<f64>,
    /// The least time between two doses.
    #[serde(default)]
    pub min_interval_minutes: Option<u32>,
    /// A controlled drug: a witness, the batch and any amount wasted are recorded.
    #[serde(default)]
    pub controlled: bool,
    /// The allergy classes it belongs to ("penicillins", "NSAIDs").
    #[serde(default)]
    pub allergy_classes: Vec<String>,
}

/// A dose range, in the drug's unit.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DoseRange {
    pub min: f64,
    pub max: f64,
}

/// A place a patient may be taken.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Destination {
    pub id: String,
    pub name: String,
    /// The NHS Organisation Data Service code of the site.
    pub ods_code: String,
    pub kind: DestinationKind,
    #[serde(default)]
    pub capabilities: Vec<Capability>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DestinationKind {
    AcuteHospital,
    UrgentTreatmentCentre,
    MentalHealthUnit,
    Other,
}

/// What a destination can take.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Capability {
    EmergencyDepartment,
    HyperacuteStrokeUnit,
    Ppci,
    MajorTraumaCentre,
    Maternity,
    Paediatric,
}

impl Capability {
    /// In words, as the destination list shows it.
    pub fn label(self) -> &'static str {
        match self {
            Capability::EmergencyDepartment => "emergency department",
            Capability::HyperacuteStrokeUnit => "hyperacute stroke unit",
            Capability::Ppci => "PPCI (heart attack centre)",
            Capability::MajorTraumaCentre => "major trauma centre",
            Capability::Maternity => "maternity",
            Capability::Paediatric => "paediatric",
        }
    }

    /// What a record with these presentations needs of where it goes: a stroke needs a
    /// hyperacute stroke unit, chest pain and a cardiac arrest a PPCI centre, trauma a major
    /// trauma centre, and so on; anything else an emergency department.
    pub fn needed_for(presentations: &[Presentation]) -> Vec<Capability> {
        let mut out = Vec::new();
        for p in presentations {
            let need = match p {
                Presentation::Stroke => Capability::HyperacuteStrokeUnit,
                Presentation::ChestPain | Presentation::CardiacArrest => Capability::Ppci,
                Presentation::Trauma => Capability::MajorTraumaCentre,
                Presentation::Maternity => Capability::Maternity,
                Presentation::Paediatric => Capability::Paediatric,
                _ => continue,
            };
            if !out.contains(&need) {
                out.push(need);
            }
        }
        if out.is_empty() {
            out.push(Capability::EmergencyDepartment);
        }
        out
    }
}

/// A destination as offered for one record: which of the record's needs it meets.
#[derive(Debug, Clone, PartialEq)]
pub struct DestinationOffer<'a> {
    pub destination: &'a Destination,
    pub meets: Vec<Capability>,
    /// It meets every need.
    pub meets_all: bool,
}

/// A member of staff who may be on a crew.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StaffMember {
    pub id: String,
    pub name: String,
    pub role: String,
    /// HCPC or other professional registration; empty for roles without one.
    #[serde(default)]
    pub registration: String,
    /// Their user on the trust's tablets (the name they unlock with), if they have one.
    #[serde(default)]
    pub user_id: Option<String>,
}

/// Why a reference data document was refused: where, and what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{path}: {message}")]
pub struct ReferenceError {
    /// Where in the document ("formulary[2].unit"); "document" for the whole.
    pub path: String,
    pub message: String,
}

fn problem(path: impl Into<String>, message: impl Into<String>) -> ReferenceError {
    ReferenceError {
        path: path.into(),
        message: message.into(),
    }
}

/// The labelled sample set shipped in `assets/`: demo mode, tests, and a tablet before its
/// trust's set reaches it. Sample data, not clinical guidance.
pub const SAMPLE_JSON: &str = include_str!("../../assets/reference-sample.json");

impl ReferenceData {
    /// The shipped sample set ([`SAMPLE_JSON`]), checked like any other.
    pub fn sample() -> Result<ReferenceData, ReferenceError> {
        Self::from_json(SAMPLE_JSON)
    }

    /// Reads and checks a whole document; the first problem refuses it.
    pub fn from_json(text: &str) -> Result<ReferenceData, ReferenceError> {
        let data: ReferenceData = serde_json::from_str(text)
            .map_err(|e| problem("document", format!("not a reference data document: {e}")))?;
        data.validate()?;
        Ok(data)
    }

    /// The checks a document must pass, in document order.
    pub fn validate(&self) -> Result<(), ReferenceError> {
        if self.version == 0 {
            return Err(problem("version", "must be 1 or more"));
        }
        if self.trust.trim().is_empty() {
            return Err(problem("trust", "the trust's name is missing"));
        }
        let mut ids = std::collections::HashSet::new();
        for (i, d) in self.formulary.iter().enumerate() {
            let at = |field: &str| format!("formulary[{i}].{field}");
            entry(&mut ids, &d.id, &d.name, &at)?;
            if !DoseUnit::CHOICES.iter().any(|u| u.label() == d.unit) {
                let known: Vec<&str> = DoseUnit::CHOICES.iter().map(|u| u.label()).collect();
                return Err(problem(
                    at("unit"),
                    format!(
                        "\"{}\" is not a unit; use one written in full: {}",
                        d.unit,
                        known.join(", ")
                    ),
                ));
            }
            if d.routes.is_empty() {
                return Err(problem(at("routes"), "at least one route is needed"));
            }
            for (field, range) in [
                ("adult_dose", d.adult_dose),
                ("paediatric_dose_per_kg", d.paediatric_dose_per_kg),
            ] {
                if let Some(r) = range {
                    check_range(&at(field), r)?;
                }
            }
            if let Some(m) = d.max_cumulative
                && !(m.is_finite() && m > 0.0)
            {
                return Err(problem(at("max_cumulative"), "must be above 0"));
            }
            if let Some(u) = d.usual_adult_dose
                && !(u.is_finite() && u > 0.0)
            {
                return Err(problem(at("usual_adult_dose"), "must be above 0"));
            }
        }
        let mut ids = std::collections::HashSet::new();
        for (i, d) in self.destinations.iter().enumerate() {
            let at = |field: &str| format!("destinations[{i}].{field}");
            entry(&mut ids, &d.id, &d.name, &at)?;
            let code = d.ods_code.trim();
            if code.is_empty() {
                return Err(problem(at("ods_code"), "the ODS code is missing"));
            }
            if !code.chars().all(|c| c.is_ascii_alphanumeric()) || code.len() > 10 {
                return Err(problem(
                    at("ods_code"),
                    format!("\"{code}\" is not an ODS code (letters and digits, up to 10)"),
                ));
            }
        }
        let mut ids = std::collections::HashSet::new();
        let mut users = std::collections::HashSet::new();
        for (i, s) in self.staff.iter().enumerate() {
            let at = |field: &str| format!("staff[{i}].{field}");
            entry(&mut ids, &s.id, &s.name, &at)?;
            if s.role.trim().is_empty() {
                return Err(problem(at("role"), "the role is missing"));
            }
            if let Some(user) = &s.user_id {
                let user = user.trim().to_lowercase();
                if user.is_empty() {
                    return Err(problem(at("user_id"), "an empty user id"));
                }
                if !users.insert(user) {
                    return Err(problem(
                        at("user_id"),
                        "this user id is given to two people",
                    ));
                }
            }
        }
        for (list, items) in [
            ("presenting_complaints", &self.presenting_complaints),
            ("referral_services", &self.referral_services),
        ] {
            if let Some(i) = items.iter().position(|t| t.trim().is_empty()) {
                return Err(problem(format!("{list}[{i}]"), "an empty entry"));
            }
        }
        Ok(())
    }

    /// The destinations in the order to offer them for `needs`: those meeting every need
    /// first, then those meeting more before fewer, each group in the trust's order.
    pub fn destinations_for(&self, needs: &[Capability]) -> Vec<DestinationOffer<'_>> {
        let mut out: Vec<DestinationOffer<'_>> = self
            .destinations
            .iter()
            .map(|d| {
                let meets: Vec<Capability> = needs
                    .iter()
                    .copied()
                    .filter(|n| d.capabilities.contains(n))
                    .collect();
                DestinationOffer {
                    destination: d,
                    meets_all: meets.len() == needs.len(),
                    meets,
                }
            })
            .collect();
        out.sort_by_key(|o| (!o.meets_all, std::cmp::Reverse(o.meets.len())));
        out
    }

    /// The destination with this ODS code.
    pub fn destination_by_code(&self, code: &str) -> Option<&Destination> {
        self.destinations
            .iter()
            .find(|d| d.ods_code.eq_ignore_ascii_case(code))
    }

    /// The staff member who unlocks tablets as `user`: exactly, as the tablet's keyring
    /// names users (so "Alex" is not "alex").
    pub fn staff_for_user(&self, user: &str) -> Option<&StaffMember> {
        self.staff.iter().find(|s| {
            s.user_id
                .as_deref()
                .is_some_and(|u| u.trim() == user.trim())
        })
    }

    /// Counts for `reference show` and the tablet's status.
    pub fn counts(&self) -> ReferenceCounts {
        ReferenceCounts {
            drugs: self.formulary.len(),
            destinations: self.destinations.len(),
            staff: self.staff.len(),
        }
    }
}

/// How much a reference data set holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ReferenceCounts {
    pub drugs: usize,
    pub destinations: usize,
    pub staff: usize,
}

/// An entry of a list has an id and a name, and no earlier entry of the list has its id.
/// `at` turns a field name into the entry's path.
fn entry<'a>(
    seen: &mut std::collections::HashSet<&'a str>,
    id: &'a str,
    name: &str,
    at: &dyn Fn(&str) -> String,
) -> Result<(), ReferenceError> {
    if id.trim().is_empty() {
        return Err(problem(at("id"), "the id is missing"));
    }
    if name.trim().is_empty() {
        return Err(problem(at("name"), "the name is missing"));
    }
    if !seen.insert(id) {
        return Err(problem(at("id"), format!("\"{id}\" is used twice")));
    }
    Ok(())
}

fn check_range(path: &str, r: DoseRange) -> Result<(), ReferenceError> {
    if !(r.min.is_finite() && r.max.is_finite()) || r.min <= 0.0 {
        return Err(problem(path, "doses must be numbers above 0"));
    }
    if r.min > r.max {
        return Err(problem(
            path,
            format!("the minimum {} is above the maximum {}", r.min, r.max),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    const SAMPLE: &str = SAMPLE_JSON;

    #[test]
    fn the_sample_set_loads_and_says_it_is_a_sample() {
        let data = ReferenceData::from_json(SAMPLE).unwrap();
        assert!(data.sample);
        let counts = data.counts();
        assert!(counts.drugs >= 5 && counts.destinations >= 3 && counts.staff >= 3);
        assert!(data.formulary.iter().any(|d| d.controlled));
        assert!(
            data.destinations
                .iter()
                .any(|d| d.capabilities.contains(&Capability::HyperacuteStrokeUnit))
        );
    }

    #[test]
    fn a_stroke_is_offered_stroke_units_first_and_anyone_an_emergency_department() {
        let data = ReferenceData::from_json(SAMPLE).unwrap();
        let needs = Capability::needed_for(&[Presentation::Stroke, Presentation::Fall]);
        assert_eq!(needs, vec![Capability::HyperacuteStrokeUnit]);
        let offers = data.destinations_for(&needs);
        assert_eq!(offers.len(), data.destinations.len(), "nothing is hidden");
        assert!(offers[0].meets_all);
        assert!(
            offers[0]
                .destination
                .capabilities
                .contains(&Capability::HyperacuteStrokeUnit)
        );
        let first_without = offers.iter().position(|o| !o.meets_all).unwrap();
        assert!(offers[first_without..].iter().all(|o| !o.meets_all));
        assert_eq!(
            Capability::needed_for(&[Presentation::Other]),
            vec![Capability::EmergencyDepartment]
        );
        let ed = data.destinations_for(&[Capability::EmergencyDepartment]);
        assert!(
            ed.last().is_some_and(|o| !o.meets_all),
            "the UTC has no ED: last"
        );
        assert_eq!(
            data.destination_by_code("xx1aa").map(|d| d.name.as_str()),
            Some("Sample Royal Infirmary")
        );
    }

    #[test]
    fn the_schema_in_docs_lists_the_units_the_import_accepts() {
        let schema: serde_json::Value =
            serde_json::from_str(include_str!("../../docs/reference-data.schema.json")).unwrap();
        let listed: Vec<&str> = schema["$defs"]["drug"]["properties"]["unit"]["enum"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|u| u.as_str())
            .collect();
        let accepted: Vec<&str> = DoseUnit::CHOICES.iter().map(|u| u.label()).collect();
        assert_eq!(listed, accepted);
    }

    /// The sample with one change made to its JSON.
    fn changed(edit: impl FnOnce(&mut serde_json::Value)) -> String {
        let mut v: serde_json::Value = serde_json::from_str(SAMPLE).unwrap();
        edit(&mut v);
        v.to_string()
    }

    fn refused(text: &str) -> ReferenceError {
        ReferenceData::from_json(text).unwrap_err()
    }

    #[test]
    fn a_bad_document_is_refused_whole_naming_the_first_problem_with_its_path() {
        let e = refused(&changed(|v| {
            let first = v["formulary"][0]["id"].clone();
            v["formulary"][1]["id"] = first;
        }));
        assert_eq!(e.path, "formulary[1].id");
        assert!(e.message.contains("used twice"), "{e}");

        let e = refused(&changed(|v| v["formulary"][0]["unit"] = "mcg".into()));
        assert_eq!(e.path, "formulary[0].unit");
        assert!(e.message.contains("\"mcg\" is not a unit"), "{e}");

        let e = refused(&changed(|v| {
            v["formulary"][2]["adult_dose"] = serde_json::json!({ "min": 10, "max": 5 });
        }));
        assert_eq!(
            e.to_string(),
            "formulary[2].adult_dose: the minimum 10 is above the maximum 5"
        );

        let e = refused(&changed(|v| v["destinations"][1]["ods_code"] = "".into()));
        assert_eq!(
            e.to_string(),
            "destinations[1].ods_code: the ODS code is missing"
        );

        let e = refused(&changed(|v| v["staff"][0]["role"] = " ".into()));
        assert_eq!(e.path, "staff[0].role");

        let e = refused(&changed(|v| v["version"] = 0.into()));
        assert_eq!(e.path, "version");

        let e = refused("{ \"version\": 1, ");
        assert_eq!(e.path, "document");
        let e = refused(&changed(|v| v["formulary"][0]["colour"] = "red".into()));
        assert_eq!(e.path, "document");
        assert!(e.message.contains("colour"), "{e}");
    }
}
