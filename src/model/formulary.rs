//! A drug given from the trust's formulary, checked before it is added: the dose against the
//! formulary's soft range (adult, or per kilogram for a child), the total given in this
//! encounter against its maximum, the time since the last dose against its interval, and the
//! drug's allergy classes against the allergies recorded. Each check that fails is a
//! [`DoseConcern`]: the crew are asked again, and go on only by confirming (an allergy
//! conflict needs a reason too), which is kept with the drug as a [`DoseOverride`].
//!
//! A controlled drug also needs a witness from the staff list, its batch number and the
//! amount wasted ([`ControlledDrugRecord`]).
//!
//! The formulary itself is `super::reference`; this module only reads it.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::reference::{DoseRange, FormularyDrug};
use super::{DrugGiven, Encounter};

/// Under this age (whole years) a dose is checked per kilogram.
pub const CHILD_UNDER_YEARS: u32 = 16;

/// Which check a concern comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DoseCheck {
    /// Outside the formulary's single-dose range.
    Range,
    /// A child with no weight recorded, or a drug with no children's range.
    ChildDose,
    /// This dose takes the encounter's total above the formulary's maximum.
    Cumulative,
    /// Sooner after the last dose than the formulary's interval.
    Interval,
    /// The drug belongs to an allergy class recorded for the patient.
    Allergy,
}

impl DoseCheck {
    /// True when going on needs a reason, not only a confirmation.
    pub fn needs_reason(self) -> bool {
        matches!(self, DoseCheck::Allergy)
    }

    /// Its name on outputs.
    pub fn label(self) -> &'static str {
        match self {
            DoseCheck::Range => "dose outside the formulary range",
            DoseCheck::ChildDose => "child's dose not checkable",
            DoseCheck::Cumulative => "above the maximum total",
            DoseCheck::Interval => "sooner than the dose interval",
            DoseCheck::Allergy => "allergy conflict",
        }
    }
}

/// One check that failed for a dose about to be added, in words for the crew.
#[derive(Debug, Clone, PartialEq)]
pub struct DoseConcern {
    pub check: DoseCheck,
    pub said: String,
}

/// A concern the clinician was shown and went on through.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DoseOverride {
    pub check: DoseCheck,
    /// What the app said.
    pub said: String,
    /// Why they went on: required for an allergy conflict, otherwise may be empty.
    #[serde(default)]
    pub reason: String,
}

/// What is recorded for a controlled drug.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ControlledDrugRecord {
    /// The witness's id in the staff list, and their name as it was then.
    pub witness_id: String,
    pub witness_name: String,
    pub batch: String,
    /// Drawn up but not given, in the drug's unit (0 when none).
    pub wasted: f64,
}

/// What the checks need to know of the patient and the record.
#[derive(Debug, Clone, Copy)]
pub struct PatientFacts<'a> {
    pub age_years: Option<u32>,
    pub weight_kg: Option<f64>,
    pub allergies_text: &'a str,
    pub allergy_classes: &'a [String],
    /// Drugs already in the record.
    pub given: &'a [DrugGiven],
    /// The record's paediatric section is open: a child even when no age is recorded.
    pub paediatric: bool,
}

impl<'a> PatientFacts<'a> {
    /// As the record `e` says.
    pub fn of(e: &'a Encounter) -> Self {
        Self {
            age_years: e.patient_age_years(),
            weight_kg: e.assessment.paediatric().and_then(|p| p.weight_kg),
            allergies_text: &e.history.allergies,
            allergy_classes: &e.history.allergy_classes,
            given: &e.drugs,
            paediatric: e.assessment.paediatric().is_some(),
        }
    }

    /// Under 16, or of unknown age with the paediatric section open.
    pub fn is_child(&self) -> bool {
        match self.age_years {
            Some(a) => a < CHILD_UNDER_YEARS,
            None => self.paediatric,
        }
    }
}

/// "300" or "0.5": a dose written without trailing zeros.
pub fn amount_text(x: f64) -> String {
    let rounded = (x * 1000.0).round() / 1000.0;
    format!("{rounded}")
}

/// "300 milligrams" for a fixed dose, "1 to 10 milligrams" for a range.
pub fn range_text(r: DoseRange, unit: &str) -> String {
    if r.min == r.max {
        format!("{} {unit}", amount_text(r.min))
    } else {
        format!("{} to {} {unit}", amount_text(r.min), amount_text(r.max))
    }
}

/// Every check `dose` of `drug` at `at` fails for this patient, in the order the crew should
/// read them (allergy first).
pub fn dose_concerns(
    drug: &FormularyDrug,
    dose: f64,
    at: DateTime<Utc>,
    patient: &PatientFacts<'_>,
) -> Vec<DoseConcern> {
    let mut out = Vec::new();
    let unit = drug.unit.as_str();
    let conflicts = allergy_conflicts(drug, patient.allergies_text, patient.allergy_classes);
    if !conflicts.is_empty() {
        out.push(DoseConcern {
            check: DoseCheck::Allergy,
            said: format!(
                "{} is in the allergy class {} and the patient's allergies say {}",
                drug.name,
                conflicts.join(", "),
                allergy_summary(patient.allergies_text, patient.allergy_classes)
            ),
        });
    }
    if patient.is_child() {
        match (drug.paediatric_dose_per_kg, patient.weight_kg) {
            (Some(per_kg), Some(kg)) => {
                let mut range = DoseRange {
                    min: per_kg.min * kg,
                    max: per_kg.max * kg,
                };
                // A child's dose is never more than an adult's, whatever the weight.
                let capped = drug.adult_dose.filter(|adult| range.max > adult.max);
                if let Some(adult) = capped {
                    range.max = adult.max;
                    range.min = range.min.min(adult.max);
                }
                if !within(dose, range) {
                    out.push(DoseConcern {
                        check: DoseCheck::Range,
                        said: format!(
                            "{} {unit} is outside the child's range for {} kg: {} ({} per kg{})",
                            amount_text(dose),
                            amount_text(kg),
                            range_text(range, unit),
                            range_text(per_kg, unit),
                            if capped.is_some() {
                                ", no more than the adult dose"
                            } else {
                                ""
                            }
                        ),
                    });
                }
            }
            (Some(_), None) => out.push(DoseConcern {
                check: DoseCheck::ChildDose,
                said: "a child with no weight recorded: the dose per kilogram cannot be checked (record the weight in the paediatric section)".to_owned(),
            }),
            (None, _) => out.push(DoseConcern {
                check: DoseCheck::ChildDose,
                said: format!(
                    "the formulary gives no children's dose for {}: check it against the trust's paediatric guidance",
                    drug.name
                ),
            }),
        }
    } else if let Some(range) = drug.adult_dose
        && !within(dose, range)
    {
        out.push(DoseConcern {
            check: DoseCheck::Range,
            said: format!(
                "{} {unit} is outside the adult range for {}: {}",
                amount_text(dose),
                drug.name,
                range_text(range, unit)
            ),
        });
    }
    let earlier: Vec<&DrugGiven> = patient
        .given
        .iter()
        .filter(|g| g.formulary_id.as_deref() == Some(drug.id.as_str()))
        .collect();
    if let Some(max) = drug.max_cumulative {
        let before: f64 = earlier.iter().map(|g| g.dose).sum();
        if before + dose > max + 1e-9 {
            out.push(DoseConcern {
                check: DoseCheck::Cumulative,
                said: format!(
                    "{} {unit} already given in this encounter; with this dose the total is {} {unit}, above the maximum of {} {unit}",
                    amount_text(before),
                    amount_text(before + dose),
                    amount_text(max)
                ),
            });
        }
    }
    // The nearest other dose, before or after: a dose recorded late for an earlier time is
    // as close to the others as one recorded at once.
    if let Some(minutes) = drug.min_interval_minutes
        && let Some(nearest) = earlier
            .iter()
            .map(|g| (at - g.at_utc).num_minutes().abs())
            .min()
        && nearest < i64::from(minutes)
    {
        out.push(DoseConcern {
            check: DoseCheck::Interval,
            said: format!(
                "another dose is recorded {nearest} minutes from this one; the interval is at least {minutes} minutes"
            ),
        });
    }
    out
}

fn within(dose: f64, r: DoseRange) -> bool {
    // A tolerance for doses worked out per kilogram and typed to a few decimals.
    let slack = 1e-6 * r.max.max(1.0);
    dose >= r.min - slack && dose <= r.max + slack
}

/// The drug's allergy classes the patient's allergies name: ticked as a class, or written in
/// the free text (the class or its singular, or the drug's own name).
pub fn allergy_conflicts(
    drug: &FormularyDrug,
    allergies_text: &str,
    allergy_classes: &[String],
) -> Vec<String> {
    let text = allergies_text.to_lowercase();
    let mentions = |word: &str| {
        let w = word.trim().to_lowercase();
        let singular = w.strip_suffix('s').unwrap_or(&w);
        !singular.is_empty() && text.contains(singular)
    };
    let mut out: Vec<String> = drug
        .allergy_classes
        .iter()
        .filter(|c| allergy_classes.iter().any(|a| a.eq_ignore_ascii_case(c)) || mentions(c))
        .cloned()
        .collect();
    if out.is_empty() && mentions(&drug.name) {
        out.push(drug.name.clone());
    }
    if out.is_empty() && mentions(&drug.id) {
        out.push(drug.name.clone());
    }
    out
}

/// The patient's allergies in a few words, for a concern.
fn allergy_summary(text: &str, classes: &[String]) -> String {
    let mut parts: Vec<String> = classes.to_vec();
    if !text.trim().is_empty() {
        parts.push(format!("\"{}\"", text.trim()));
    }
    parts.join(", ")
}

/// The formulary drug a name typed as "other" names (its name or id, or either within the
/// typed text, without case), so the crew pick it from the list and its checks run.
pub fn formulary_match<'a>(
    formulary: &'a [FormularyDrug],
    typed: &str,
) -> Option<&'a FormularyDrug> {
    let t = typed.trim().to_lowercase();
    if t.is_empty() {
        return None;
    }
    formulary.iter().find(|d| {
        let (name, id) = (d.name.to_lowercase(), d.id.to_lowercase());
        t == name || t == id || t.contains(&name) || (id.len() >= 4 && t.contains(&id))
    })
}

/// A drug not in the formulary has no classes to check, but the allergies may name it:
/// then it is an allergy conflict like any other.
pub fn other_drug_concerns(typed: &str, patient: &PatientFacts<'_>) -> Vec<DoseConcern> {
    let name = typed.trim().to_lowercase();
    let text = patient.allergies_text.to_lowercase();
    let named = !name.is_empty()
        && (text.contains(&name)
            || patient
                .allergy_classes
                .iter()
                .any(|c| name.contains(&c.to_lowercase())));
    if named {
        vec![DoseConcern {
            check: DoseCheck::Allergy,
            said: format!(
                "{} is named in the patient's allergies: {}",
                typed.trim(),
                allergy_summary(patient.allergies_text, patient.allergy_classes)
            ),
        }]
    } else {
        Vec::new()
    }
}

/// What still stops a controlled drug's entry: the witness, the batch and the amount wasted.
pub fn controlled_missing(
    witness_id: Option<&str>,
    batch: &str,
    wasted: Option<f64>,
) -> Option<&'static str> {
    if witness_id.is_none_or(|w| w.trim().is_empty()) {
        Some("A controlled drug needs a witness: choose them from the staff list")
    } else if batch.trim().is_empty() {
        Some("A controlled drug needs its batch number")
    } else if wasted.is_none() {
        Some("A controlled drug needs the amount wasted (0 if none)")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::model::DoseUnit;
    use crate::model::reference::ReferenceData;
    use chrono::TimeZone;

    fn sample() -> ReferenceData {
        ReferenceData::sample().unwrap()
    }

    fn drug(id: &str) -> FormularyDrug {
        sample().formulary.into_iter().find(|d| d.id == id).unwrap()
    }

    fn at(h: u32, m: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 3, h, m, 0).unwrap()
    }

    fn given(d: &FormularyDrug, dose: f64, when: DateTime<Utc>) -> DrugGiven {
        DrugGiven {
            drug: d.name.clone(),
            dose,
            unit: DoseUnit::Milligrams,
            route: d.routes[0].clone(),
            at_utc: when,
            by: String::new(),
            formulary_id: Some(d.id.clone()),
            form: String::new(),
            overrides: Vec::new(),
            controlled: None,
        }
    }

    fn adult<'a>(given: &'a [DrugGiven], text: &'a str, classes: &'a [String]) -> PatientFacts<'a> {
        PatientFacts {
            age_years: Some(54),
            weight_kg: None,
            allergies_text: text,
            allergy_classes: classes,
            given,
            paediatric: false,
        }
    }

    fn checks(c: &[DoseConcern]) -> Vec<DoseCheck> {
        c.iter().map(|c| c.check).collect()
    }

    #[test]
    fn an_adult_dose_in_range_raises_nothing_and_outside_it_is_asked_again() {
        let morphine = drug("morphine");
        let range = morphine.adult_dose.unwrap();
        let none = adult(&[], "NKDA", &[]);
        assert!(dose_concerns(&morphine, range.min, at(3, 0), &none).is_empty());
        let c = dose_concerns(&morphine, range.max + 5.0, at(3, 0), &none);
        assert_eq!(checks(&c), vec![DoseCheck::Range]);
        assert!(
            c[0].said.contains("outside the adult range"),
            "{}",
            c[0].said
        );
        assert!(c[0].said.contains(&morphine.unit), "{}", c[0].said);
    }

    #[test]
    fn a_childs_dose_is_checked_per_kilogram_and_needs_a_weight() {
        let paracetamol = drug("paracetamol");
        let per_kg = paracetamol.paediatric_dose_per_kg.unwrap();
        let mut child = adult(&[], "", &[]);
        child.age_years = Some(6);
        let c = dose_concerns(&paracetamol, 100.0, at(3, 0), &child);
        assert_eq!(checks(&c), vec![DoseCheck::ChildDose]);
        assert!(c[0].said.contains("no weight"), "{}", c[0].said);
        child.weight_kg = Some(20.0);
        assert!(dose_concerns(&paracetamol, per_kg.max * 20.0, at(3, 0), &child).is_empty());
        let c = dose_concerns(&paracetamol, per_kg.max * 20.0 * 2.0, at(3, 0), &child);
        assert_eq!(checks(&c), vec![DoseCheck::Range]);
        assert!(c[0].said.contains("20 kg"), "{}", c[0].said);
        // A heavy child never gets more than the adult dose.
        child.weight_kg = Some(90.0);
        let adult_max = paracetamol.adult_dose.unwrap().max;
        assert!(dose_concerns(&paracetamol, adult_max, at(3, 0), &child).is_empty());
        let c = dose_concerns(&paracetamol, per_kg.max * 90.0, at(3, 0), &child);
        assert_eq!(c[0].check, DoseCheck::Range);
        assert!(
            c[0].said.contains("no more than the adult dose"),
            "{}",
            c[0].said
        );
        // No age, but the paediatric section open: checked as a child.
        child.age_years = None;
        child.paediatric = true;
        child.weight_kg = None;
        let c = dose_concerns(&paracetamol, 100.0, at(3, 0), &child);
        assert_eq!(checks(&c), vec![DoseCheck::ChildDose]);
    }

    #[test]
    fn the_total_and_the_interval_are_checked_across_the_record() {
        let morphine = drug("morphine");
        let max = morphine.max_cumulative.unwrap();
        let interval = i64::from(morphine.min_interval_minutes.unwrap());
        let dose = morphine.adult_dose.unwrap().max;
        let first = given(&morphine, max - dose / 2.0, at(3, 0));
        let record = [first];
        let soon = at(3, 0) + chrono::Duration::minutes(interval - 1);
        let c = dose_concerns(&morphine, dose, soon, &adult(&record, "", &[]));
        assert_eq!(checks(&c), vec![DoseCheck::Cumulative, DoseCheck::Interval]);
        assert!(
            c[1].said.contains(&format!("{} minutes", interval - 1)),
            "{}",
            c[1].said
        );
        // A dose recorded for a time just before one already given is as close to it.
        let later_first = [given(&morphine, dose, at(3, 10))];
        let c = dose_concerns(&morphine, dose, at(3, 8), &adult(&later_first, "", &[]));
        assert_eq!(checks(&c), vec![DoseCheck::Interval]);
        // Another drug's doses do not count.
        let other = given(&drug("paracetamol"), 1000.0, at(3, 0));
        assert!(dose_concerns(&morphine, dose, soon, &adult(&[other], "", &[])).is_empty());
        // Later, and within the total: nothing.
        let small = given(&morphine, dose, at(3, 0));
        let later = at(3, 0) + chrono::Duration::minutes(interval);
        assert!(dose_concerns(&morphine, dose, later, &adult(&[small], "", &[])).is_empty());
    }

    #[test]
    fn an_allergy_is_found_by_class_or_in_the_free_text() {
        let amoxicillin = drug("amoxicillin");
        let class = amoxicillin.allergy_classes[0].clone();
        let ticked = [class.clone()];
        let c = dose_concerns(&amoxicillin, 500.0, at(3, 0), &adult(&[], "", &ticked));
        assert_eq!(c[0].check, DoseCheck::Allergy);
        assert!(c[0].check.needs_reason());
        let singular = class.trim_end_matches('s').to_uppercase();
        let typed = format!("{singular} - rash");
        let c = dose_concerns(&amoxicillin, 500.0, at(3, 0), &adult(&[], &typed, &[]));
        assert_eq!(c[0].check, DoseCheck::Allergy, "typed: {typed}");
        assert!(
            dose_concerns(&amoxicillin, 500.0, at(3, 0), &adult(&[], "NKDA", &[]))
                .iter()
                .all(|c| c.check != DoseCheck::Allergy)
        );
    }

    #[test]
    fn a_formulary_drug_typed_as_other_is_found_and_an_allergy_named_in_text_is_raised() {
        let data = sample();
        assert_eq!(
            formulary_match(&data.formulary, " morphine sulfate ").map(|d| d.id.as_str()),
            Some("morphine")
        );
        assert_eq!(
            formulary_match(&data.formulary, "Amoxicillin 500").map(|d| d.id.as_str()),
            Some("amoxicillin")
        );
        assert!(formulary_match(&data.formulary, "Ondansetron").is_none());
        let patient = adult(&[], "Ondansetron - rash", &[]);
        let c = other_drug_concerns("ondansetron", &patient);
        assert_eq!(checks(&c), vec![DoseCheck::Allergy]);
        assert!(other_drug_concerns("Cyclizine", &patient).is_empty());
    }

    #[test]
    fn a_controlled_drug_needs_its_witness_batch_and_waste() {
        assert!(
            controlled_missing(None, "B1", Some(0.0))
                .unwrap()
                .contains("witness")
        );
        assert!(
            controlled_missing(Some("s1"), " ", Some(0.0))
                .unwrap()
                .contains("batch")
        );
        assert!(
            controlled_missing(Some("s1"), "B1", None)
                .unwrap()
                .contains("wasted")
        );
        assert_eq!(controlled_missing(Some("s1"), "B1", Some(0.0)), None);
    }
}
