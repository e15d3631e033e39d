//! Drugs given: the list, and the entry form that takes a drug from the trust's formulary.
//!
//! The crew pick the drug, then its form, route and a dose in the drug's one unit (shown,
//! never chosen). Adding it runs the formulary's checks (`model::formulary`): anything they
//! raise is shown and the crew go on only by confirming it ("Give anyway"), with a reason for
//! an allergy conflict; what they confirmed is kept with the drug. A controlled drug needs a
//! witness from the staff list, its batch number and the amount wasted. A drug not in the
//! formulary can still be recorded as "Other (not in formulary)", and every output marks it.

use chrono::{DateTime, Utc};
use egui::{RichText, Ui};

use super::forms::{FormProblem, Forms, Removal, clock_local, given_at, now_utc};
use super::name_widget;
use crate::model::clock_time::ClockTimeError;
use crate::model::formulary::{
    ControlledDrugRecord, DoseConcern, DoseOverride, PatientFacts, amount_text, controlled_missing,
    dose_concerns, formulary_match, other_drug_concerns, range_text,
};
use crate::model::quick_picks;
use crate::model::reference::{FormularyDrug, StaffMember};
use crate::model::{DoseUnit, DrugGiven, Encounter, parse_dose};
use crate::store::audit::Action;
use crate::ui::widgets::{error_text, quick_pick, text_field, warning_text};

/// Routes offered for a drug not in the formulary.
const OTHER_ROUTES: [&str; 10] = [
    "IV",
    "IO",
    "IM",
    "Oral",
    "Sublingual",
    "Buccal",
    "Intranasal",
    "Nebulised",
    "Inhaled",
    "PR",
];

/// Who gives the drug unless "Given by" says otherwise: the signed-in user, by the name the
/// staff list gives them (and their staff id, so they cannot also witness it).
#[derive(Debug, Clone, Copy)]
pub struct Giver<'a> {
    pub name: &'a str,
    pub staff_id: Option<&'a str>,
}

impl<'a> Giver<'a> {
    /// A giver known by name only.
    pub fn named(name: &'a str) -> Self {
        Self {
            name,
            staff_id: None,
        }
    }
}

/// What the "Drug" list shows for a drug not in the formulary.
pub const OTHER_DRUG: &str = "Other (not in formulary)";

/// The form for adding a drug.
#[derive(Debug, Clone, Default)]
pub struct DrugForm {
    /// The formulary entry chosen, by id.
    pub formulary_id: Option<String>,
    /// "Other (not in formulary)" chosen: the name is typed and the unit chosen.
    pub other: bool,
    /// The typed name of another drug.
    pub other_name: String,
    /// Chosen for another drug from [`DoseUnit::CHOICES`]; a formulary drug has its own.
    pub other_unit: Option<DoseUnit>,
    pub form: String,
    pub dose: String,
    pub route: String,
    pub time: String,
    pub by: String,
    /// A controlled drug's witness (staff id), batch and amount wasted (as typed).
    pub witness_id: Option<String>,
    pub batch: String,
    pub wasted: String,
    /// What the checks raised at the last "Add drug"; "Give anyway" goes on only while the
    /// entry still raises exactly these.
    pub concerns: Vec<DoseConcern>,
    /// Why the crew go on despite an allergy conflict.
    pub override_reason: String,
    pub error: Option<String>,
    pub time_error: Option<ClockTimeError>,
}

impl DrugForm {
    /// True when nothing has been typed or chosen.
    pub fn is_blank(&self) -> bool {
        [
            &self.other_name,
            &self.dose,
            &self.route,
            &self.time,
            &self.by,
            &self.batch,
            &self.wasted,
        ]
        .iter()
        .all(|t| t.trim().is_empty())
            && self.formulary_id.is_none()
            && !self.other
            && self.other_unit.is_none()
    }

    /// Starts the form on `drug`: its only form and route are chosen for the crew.
    pub fn choose(&mut self, drug: &FormularyDrug) {
        *self = DrugForm {
            formulary_id: Some(drug.id.clone()),
            form: single(&drug.forms),
            route: single(&drug.routes),
            time: std::mem::take(&mut self.time),
            by: std::mem::take(&mut self.by),
            ..DrugForm::default()
        };
    }

    /// Starts the form on a drug not in the formulary.
    pub fn choose_other(&mut self) {
        *self = DrugForm {
            other: true,
            time: std::mem::take(&mut self.time),
            by: std::mem::take(&mut self.by),
            ..DrugForm::default()
        };
    }

    /// The drug this form describes, or the first problem to show. `confirm` is "Give
    /// anyway": the checks' concerns are then taken as confirmed if they are the ones shown.
    pub fn entry(
        &self,
        formulary: &[FormularyDrug],
        staff: &[StaffMember],
        patient: &PatientFacts<'_>,
        now: DateTime<Utc>,
        giver: Giver<'_>,
        confirm: bool,
    ) -> Result<DrugGiven, FormProblem> {
        let text = |t: &str| Err(FormProblem::Text(t.to_owned()));
        let chosen = match (&self.formulary_id, self.other) {
            (Some(id), false) => match formulary.iter().find(|d| &d.id == id) {
                Some(d) => Some(d),
                None => return text("That drug is no longer in the formulary: choose it again"),
            },
            (_, true) => None,
            (None, false) => return text("Choose the drug"),
        };
        let (name, unit) = match chosen {
            Some(d) => match DoseUnit::CHOICES.into_iter().find(|u| u.label() == d.unit) {
                Some(u) => (d.name.clone(), u),
                None => return text("The formulary gives this drug a unit this app does not know"),
            },
            None => {
                if self.other_name.trim().is_empty() {
                    return text("Name the drug");
                }
                if let Some(d) = formulary_match(formulary, &self.other_name) {
                    return Err(FormProblem::Text(format!(
                        "{} is in the formulary: choose it from the Drug list so its checks run",
                        d.name
                    )));
                }
                let Some(unit) = self.other_unit.clone() else {
                    return text("Choose the unit");
                };
                (self.other_name.trim().to_owned(), unit)
            }
        };
        if let Some(d) = chosen
            && d.forms.len() > 1
            && self.form.is_empty()
        {
            return text("Choose the form");
        }
        let dose = parse_dose(&self.dose).map_err(|e| FormProblem::Text(e.to_string()))?;
        if self.route.trim().is_empty() {
            return text("Choose the route");
        }
        let at_utc = given_at(&self.time, now).map_err(FormProblem::Time)?;
        let by = if self.by.trim().is_empty() {
            giver.name.to_owned()
        } else {
            self.by.trim().to_owned()
        };
        let controlled = match chosen {
            Some(d) if d.controlled => Some(self.controlled_record(staff, &by, giver.staff_id)?),
            _ => None,
        };
        let mut overrides = Vec::new();
        // A drug not in the formulary has no ranges, but the allergies may still name it.
        let concerns = match chosen {
            Some(d) => dose_concerns(d, dose, at_utc, patient),
            None => other_drug_concerns(&name, patient),
        };
        if !concerns.is_empty() {
            if !confirm || concerns != self.concerns {
                return Err(FormProblem::Concerns(concerns));
            }
            if concerns.iter().any(|c| c.check.needs_reason())
                && self.override_reason.trim().is_empty()
            {
                return text("Give the reason for going on despite the allergy");
            }
            overrides = concerns
                .into_iter()
                .map(|c| DoseOverride {
                    check: c.check,
                    said: c.said,
                    reason: self.override_reason.trim().to_owned(),
                })
                .collect();
        }
        Ok(DrugGiven {
            drug: name,
            dose,
            unit,
            route: self.route.clone(),
            at_utc,
            by,
            formulary_id: chosen.map(|d| d.id.clone()),
            form: self.form.clone(),
            overrides,
            controlled,
        })
    }

    fn controlled_record(
        &self,
        staff: &[StaffMember],
        given_by: &str,
        giver_staff_id: Option<&str>,
    ) -> Result<ControlledDrugRecord, FormProblem> {
        let wasted = match self.wasted.trim() {
            "" => None,
            "0" => Some(0.0),
            t => Some(parse_dose(t).map_err(|e| {
                FormProblem::Text(format!("Amount wasted: {}", e.to_string().to_lowercase()))
            })?),
        };
        if let Some(problem) = controlled_missing(self.witness_id.as_deref(), &self.batch, wasted) {
            return Err(FormProblem::Text(problem.to_owned()));
        }
        let witness = self
            .witness_id
            .as_deref()
            .and_then(|id| staff.iter().find(|s| s.id == id));
        let Some(witness) = witness else {
            return Err(FormProblem::Text(
                "The witness is not in the staff list: choose them again".to_owned(),
            ));
        };
        if giver_staff_id == Some(witness.id.as_str())
            || witness.name.trim().eq_ignore_ascii_case(given_by.trim())
        {
            return Err(FormProblem::Text(
                "The witness must be someone other than the clinician giving it".to_owned(),
            ));
        }
        Ok(ControlledDrugRecord {
            witness_id: witness.id.clone(),
            witness_name: witness.name.clone(),
            batch: self.batch.trim().to_owned(),
            wasted: wasted.unwrap_or(0.0),
        })
    }
}

/// "oral", "sublingual", but "IV" and "IM" as written.
fn route_words(route: &str) -> String {
    if route.chars().all(|c| c.is_ascii_uppercase()) {
        route.to_owned()
    } else {
        route.to_lowercase()
    }
}

fn single(items: &[String]) -> String {
    match items {
        [only] => only.clone(),
        _ => String::new(),
    }
}

/// The drugs given and, when `editable`, the form to add one. True when the record changed.
pub fn drugs_ui(
    ui: &mut Ui,
    doc: &mut Encounter,
    forms: &mut Forms,
    editable: bool,
    user: &str,
) -> bool {
    let mut changed = false;
    ui.label(RichText::new("Drugs given").strong().size(22.0));
    let mut remove_drug = None;
    if doc.drugs.is_empty() {
        ui.label("None recorded.");
    }
    for (i, d) in doc.drugs.iter().enumerate() {
        ui.horizontal_wrapped(|ui| {
            ui.label(RichText::new(clock_local(d.at_utc)).strong());
            ui.label(d.summary());
            if !d.form.is_empty() {
                ui.label(RichText::new(format!("({})", d.form)).weak());
            }
            if !d.by.is_empty() {
                ui.label(format!("by {}", d.by));
            }
            if let Some(c) = &d.controlled {
                ui.label(format!(
                    "witness {}, batch {}, wasted {}",
                    c.witness_name,
                    c.batch,
                    d.unit.amount(c.wasted)
                ));
            }
            for o in &d.overrides {
                warning_text(ui, &format!("Given despite: {}", o.check.label()));
            }
            if editable {
                let r = ui.button("Remove");
                name_widget(&r, egui::Role::Button, &format!("Remove drug {}", i + 1));
                if r.clicked() {
                    remove_drug = Some(i);
                }
            }
        });
    }
    if let Some(d) = remove_drug.and_then(|i| doc.drugs.get(i)) {
        forms.removing = Some(Removal::Drug(d.clone()));
    }
    if let Some(Removal::Drug(d)) = &forms.removing {
        let question = format!(
            "Remove {} {} at {} from the record? The removal is audited.",
            d.drug,
            d.unit.amount(d.dose),
            clock_local(d.at_utc)
        );
        if let Some(removed) =
            super::sections::confirm_removal_ui(ui, &question, "Remove the drug", &mut doc.drugs, d)
        {
            if removed {
                forms.removed.push(Action::DrugRemoved);
                changed = true;
            }
            forms.removing = None;
        }
    }
    if editable {
        changed |= entry_ui(ui, doc, forms, user);
    }
    changed
}

/// The entry form. True when a drug was added.
fn entry_ui(ui: &mut Ui, doc: &mut Encounter, forms: &mut Forms, user: &str) -> bool {
    let reference = forms.reference.clone();
    let (formulary, staff, sample) = match reference.as_deref() {
        Some(r) => (
            r.data.formulary.as_slice(),
            r.data.staff.as_slice(),
            r.data.sample,
        ),
        None => (&[][..], &[][..], false),
    };
    match reference.as_deref() {
        None => {
            ui.label(RichText::new("Reading the trust's formulary...").weak());
        }
        Some(r) if r.source == crate::store::reference::ReferenceSource::None => {
            warning_text(
                ui,
                "No formulary on this tablet yet: the trust's reference data has not arrived. Record drugs as \"Other (not in formulary)\"; they are not checked.",
            );
        }
        Some(_) if sample => {
            warning_text(
                ui,
                "SAMPLE formulary (not clinical guidance): this tablet has not received its trust's reference data",
            );
        }
        Some(r) => {
            ui.label(
                RichText::new(format!(
                    "Formulary of {}, version {}",
                    r.data.trust, r.data.version
                ))
                .weak(),
            );
        }
    }
    let f = &mut forms.drug;
    let pad = &mut forms.pad;
    let chosen = f
        .formulary_id
        .as_deref()
        .and_then(|id| formulary.iter().find(|d| d.id == id));

    if quick_picks::adult_picks_allowed(doc.patient_age_years()) {
        let usual: Vec<&FormularyDrug> = formulary
            .iter()
            .filter(|d| d.usual_adult_dose.is_some())
            .collect();
        if !usual.is_empty() {
            ui.horizontal_wrapped(|ui| {
                ui.label(
                    RichText::new("Usual adult doses (fills the form: check it, then add):").weak(),
                );
                for d in usual {
                    let Some(dose) = d.usual_adult_dose else {
                        continue;
                    };
                    let route = d.routes.first().cloned().unwrap_or_default();
                    let label = format!(
                        "{} {} {} {}",
                        d.name,
                        amount_text(dose),
                        d.unit,
                        route_words(&route)
                    );
                    if quick_pick(ui, "Fill", &label).clicked() {
                        f.choose(d);
                        f.dose = amount_text(dose);
                        if f.route.is_empty() {
                            f.route = route;
                        }
                        if f.form.is_empty() {
                            f.form = d.forms.first().cloned().unwrap_or_default();
                        }
                    }
                }
            });
        }
    } else {
        ui.label(
            RichText::new(
                "A child: no doses are offered to fill in. The dose is checked per kilogram of the weight in the paediatric section.",
            )
            .weak(),
        );
    }

    ui.horizontal_wrapped(|ui| {
        ui.vertical(|ui| {
            let l = ui.label("Drug");
            let shown = match (chosen, f.other) {
                (Some(d), _) => d.name.as_str(),
                (None, true) => OTHER_DRUG,
                (None, false) => "Choose",
            };
            let mut pick: Option<Option<&FormularyDrug>> = None;
            egui::ComboBox::from_id_salt("drug-name")
                .selected_text(shown)
                .width(240.0)
                .height(420.0)
                .show_ui(ui, |ui| {
                    for d in formulary {
                        let label = if d.controlled {
                            format!("{} (controlled)", d.name)
                        } else {
                            d.name.clone()
                        };
                        if ui
                            .selectable_label(f.formulary_id.as_deref() == Some(&d.id), label)
                            .clicked()
                        {
                            pick = Some(Some(d));
                        }
                    }
                    ui.separator();
                    if ui.selectable_label(f.other, OTHER_DRUG).clicked() {
                        pick = Some(None);
                    }
                })
                .response
                .labelled_by(l.id);
            match pick {
                Some(Some(d)) => f.choose(d),
                Some(None) => f.choose_other(),
                None => {}
            }
        });
        if f.other {
            ui.vertical(|ui| {
                text_field(ui, "Drug name", &mut f.other_name, 180.0);
            });
        }
        if let Some(d) = chosen
            && !d.forms.is_empty()
        {
            ui.vertical(|ui| {
                let l = ui.label("Form");
                egui::ComboBox::from_id_salt("drug-form")
                    .selected_text(if f.form.is_empty() {
                        "Choose"
                    } else {
                        f.form.as_str()
                    })
                    .show_ui(ui, |ui| {
                        for form in &d.forms {
                            ui.selectable_value(&mut f.form, form.clone(), form);
                        }
                    })
                    .response
                    .labelled_by(l.id);
            });
        }
        ui.vertical(|ui| {
            let label = match chosen {
                Some(d) => format!("Dose ({})", d.unit),
                None => "Dose".to_owned(),
            };
            let r = text_field(ui, &label, &mut f.dose, 80.0);
            name_widget(&r, egui::Role::TextInput, "Dose");
            pad.offer(&r, "Dose");
        });
        if f.other {
            ui.vertical(|ui| {
                let l = ui.label("Unit");
                egui::ComboBox::from_id_salt("drug-unit")
                    .selected_text(f.other_unit.as_ref().map_or("Choose", DoseUnit::label))
                    .show_ui(ui, |ui| {
                        for u in DoseUnit::CHOICES {
                            let label = u.label().to_owned();
                            ui.selectable_value(&mut f.other_unit, Some(u), label);
                        }
                    })
                    .response
                    .labelled_by(l.id);
            });
        }
        ui.vertical(|ui| {
            let routes: Vec<String> = match chosen {
                Some(d) => d.routes.clone(),
                None => OTHER_ROUTES.iter().map(|r| (*r).to_owned()).collect(),
            };
            let l = ui.label("Route");
            egui::ComboBox::from_id_salt("drug-route")
                .selected_text(if f.route.is_empty() {
                    "Choose"
                } else {
                    f.route.as_str()
                })
                .show_ui(ui, |ui| {
                    for r in &routes {
                        ui.selectable_value(&mut f.route, r.clone(), r);
                    }
                })
                .response
                .labelled_by(l.id);
        });
    });
    if let Some(d) = chosen {
        ui.label(RichText::new(formulary_hint(d, doc)).weak());
    }
    ui.horizontal_wrapped(|ui| {
        ui.vertical(|ui| {
            text_field(ui, "Time given (blank = now)", &mut f.time, 90.0);
        });
        ui.vertical(|ui| {
            text_field(ui, "Given by", &mut f.by, 180.0);
        });
    });
    if let Some(d) = chosen
        && d.controlled
    {
        controlled_ui(ui, f, staff, d);
    }

    let mut added = false;
    // Given by the signed-in clinician, named as the staff list names them.
    let giver_staff = reference.as_deref().and_then(|r| r.staff_for_user(user));
    let giver = giver_staff.map_or(user, |s| s.name.as_str());
    let facts = PatientFacts::of(doc);
    let add = |f: &mut DrugForm, confirm: bool| -> Option<DrugGiven> {
        match f.entry(
            formulary,
            staff,
            &facts,
            now_utc(),
            Giver {
                name: giver,
                staff_id: giver_staff.map(|s| s.id.as_str()),
            },
            confirm,
        ) {
            Ok(drug) => Some(drug),
            Err(FormProblem::Text(t)) => {
                f.error = Some(t);
                f.time_error = None;
                None
            }
            Err(FormProblem::Time(e)) => {
                f.error = None;
                f.time_error = Some(e);
                None
            }
            Err(FormProblem::Concerns(c)) => {
                f.error = None;
                f.time_error = None;
                f.concerns = c;
                None
            }
        }
    };
    let mut new_drug = None;
    if !f.concerns.is_empty() {
        egui::Frame::group(ui.style()).show(ui, |ui| {
            warning_text(ui, "Check this before it is added:");
            for c in &f.concerns {
                if c.check.needs_reason() {
                    error_text(ui, &format!("ALLERGY: {}", c.said));
                } else {
                    ui.label(format!("- {}", c.said));
                }
            }
            if f.concerns.iter().any(|c| c.check.needs_reason()) {
                text_field(
                    ui,
                    "Reason for giving despite the allergy",
                    &mut f.override_reason,
                    360.0,
                );
            }
            ui.horizontal(|ui| {
                if ui.button("Give anyway").clicked() {
                    new_drug = add(f, true);
                }
                if ui.button("Change the entry").clicked() {
                    f.concerns.clear();
                    f.override_reason.clear();
                }
            });
        });
    }
    ui.horizontal(|ui| {
        super::number_pad::toggle_ui(ui, pad);
        if ui.button("Add drug").clicked() {
            f.concerns.clear();
            new_drug = add(f, false);
        }
        if let Some(e) = &f.error {
            error_text(ui, e);
        }
        if let Some(e) = f.time_error
            && super::sections::time_problem_ui(ui, &e, &mut f.time)
        {
            f.time_error = None;
        }
    });
    if let Some(drug) = new_drug {
        doc.drugs.push(drug);
        *f = DrugForm::default();
        added = true;
    }
    added
}

/// The formulary's limits for `d`, for this patient, in one line.
fn formulary_hint(d: &FormularyDrug, doc: &Encounter) -> String {
    let facts = PatientFacts::of(doc);
    let child = facts
        .age_years
        .is_some_and(|a| a < crate::model::formulary::CHILD_UNDER_YEARS);
    let mut parts = Vec::new();
    match (child, d.adult_dose, d.paediatric_dose_per_kg) {
        (false, Some(r), _) => parts.push(format!("adult dose {}", range_text(r, &d.unit))),
        (true, _, Some(r)) => {
            parts.push(format!("child's dose {} per kg", range_text(r, &d.unit)));
        }
        (true, _, None) => parts.push("no children's dose in the formulary".to_owned()),
        (false, None, _) => {}
    }
    if let Some(m) = d.max_cumulative {
        parts.push(format!("at most {} {} in all", amount_text(m), d.unit));
    }
    if let Some(m) = d.min_interval_minutes {
        parts.push(format!("at least {m} minutes apart"));
    }
    if d.controlled {
        parts.push("controlled drug: witness, batch and amount wasted".to_owned());
    }
    format!("Formulary: {}", parts.join("; "))
}

/// Witness, batch number and amount wasted for a controlled drug.
fn controlled_ui(ui: &mut Ui, f: &mut DrugForm, staff: &[StaffMember], d: &FormularyDrug) {
    ui.horizontal_wrapped(|ui| {
        ui.vertical(|ui| {
            let l = ui.label("Witness");
            let shown = f
                .witness_id
                .as_deref()
                .and_then(|id| staff.iter().find(|s| s.id == id))
                .map_or("Choose", |s| s.name.as_str());
            egui::ComboBox::from_id_salt("drug-witness")
                .selected_text(shown)
                .width(220.0)
                .show_ui(ui, |ui| {
                    for s in staff {
                        let label = format!("{} ({})", s.name, s.role);
                        ui.selectable_value(&mut f.witness_id, Some(s.id.clone()), label);
                    }
                })
                .response
                .labelled_by(l.id);
        });
        ui.vertical(|ui| {
            text_field(ui, "Batch number", &mut f.batch, 140.0);
        });
        ui.vertical(|ui| {
            let r = text_field(
                ui,
                &format!("Amount wasted ({})", d.unit),
                &mut f.wasted,
                80.0,
            );
            name_widget(&r, egui::Role::TextInput, "Amount wasted");
        });
    });
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::model::formulary::DoseCheck;
    use crate::model::reference::ReferenceData;
    use chrono::TimeZone;

    fn noon() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 3, 12, 0, 0).unwrap()
    }

    fn facts(given: &[DrugGiven]) -> PatientFacts<'_> {
        PatientFacts {
            age_years: Some(60),
            weight_kg: None,
            allergies_text: "NKDA",
            allergy_classes: &[],
            given,
            paediatric: false,
        }
    }

    fn problem(r: Result<DrugGiven, FormProblem>) -> String {
        match r {
            Err(FormProblem::Text(t)) => t,
            other => panic!("expected a problem, got {other:?}"),
        }
    }

    #[test]
    fn a_drug_form_refuses_a_comma_a_zero_and_a_missing_unit() {
        let data = ReferenceData::sample().unwrap();
        let (f, s) = (&data.formulary, &data.staff);
        let mut form = DrugForm::default();
        form.choose(f.iter().find(|d| d.id == "paracetamol").unwrap());
        form.route = "Oral".into();
        form.form = "500 mg tablet".into();
        form.dose = "1,000".into();
        let p = problem(form.entry(f, s, &facts(&[]), noon(), Giver::named("crew"), false));
        assert!(p.contains("1000, not 1,000"), "{p}");
        form.dose = "0".into();
        assert_eq!(
            problem(form.entry(f, s, &facts(&[]), noon(), Giver::named("crew"), false)),
            "A dose must be more than zero"
        );
        let mut other = DrugForm::default();
        other.choose_other();
        other.other_name = "Ondansetron".into();
        other.dose = "4".into();
        other.route = "IV".into();
        assert_eq!(
            problem(other.entry(f, s, &facts(&[]), noon(), Giver::named("crew"), false)),
            "Choose the unit"
        );
        other.other_unit = Some(DoseUnit::Milligrams);
        let drug = other
            .entry(f, s, &facts(&[]), noon(), Giver::named("crew"), false)
            .unwrap();
        assert_eq!(drug.formulary_id, None);
        assert!(drug.summary().ends_with("(not in formulary)"));
    }

    #[test]
    fn a_formulary_dose_takes_its_unit_and_out_of_range_is_asked_again() {
        let data = ReferenceData::sample().unwrap();
        let (f, s) = (&data.formulary, &data.staff);
        let mut form = DrugForm::default();
        form.choose(f.iter().find(|d| d.id == "aspirin").unwrap());
        form.dose = "300".into();
        let drug = form
            .entry(f, s, &facts(&[]), noon(), Giver::named("crew"), false)
            .unwrap();
        assert_eq!(drug.unit, DoseUnit::Milligrams);
        assert_eq!(drug.formulary_id.as_deref(), Some("aspirin"));
        assert_eq!(drug.route, "Oral", "its only route is chosen for the crew");
        assert!(drug.overrides.is_empty());

        form.dose = "3000".into();
        let Err(FormProblem::Concerns(c)) =
            form.entry(f, s, &facts(&[]), noon(), Giver::named("crew"), false)
        else {
            panic!("an out-of-range dose must be asked again");
        };
        assert!(c.iter().any(|c| c.check == DoseCheck::Range));
        // "Give anyway" on concerns not yet shown asks again.
        assert!(matches!(
            form.entry(f, s, &facts(&[]), noon(), Giver::named("crew"), true),
            Err(FormProblem::Concerns(_))
        ));
        form.concerns = c;
        let drug = form
            .entry(f, s, &facts(&[]), noon(), Giver::named("crew"), true)
            .unwrap();
        assert!(drug.overrides.iter().any(|o| o.check == DoseCheck::Range));
    }

    #[test]
    fn an_allergy_conflict_needs_a_reason_and_a_controlled_drug_its_witness() {
        let data = ReferenceData::sample().unwrap();
        let (f, s) = (&data.formulary, &data.staff);
        let mut form = DrugForm::default();
        form.choose(f.iter().find(|d| d.id == "morphine").unwrap());
        form.dose = "5".into();
        form.route = "IV".into();
        let p = problem(form.entry(f, s, &facts(&[]), noon(), Giver::named("crew"), false));
        assert!(p.contains("witness"), "{p}");
        form.witness_id = Some(s[0].id.clone());
        form.batch = "BX12".into();
        let p = problem(form.entry(f, s, &facts(&[]), noon(), Giver::named("crew"), false));
        assert!(p.contains("wasted"), "{p}");
        form.wasted = "0".into();
        let p = problem(form.entry(f, s, &facts(&[]), noon(), Giver::named(&s[0].name), false));
        assert!(p.contains("someone other"), "{p}");
        let drug = form
            .entry(f, s, &facts(&[]), noon(), Giver::named("crew"), false)
            .unwrap();
        let c = drug.controlled.unwrap();
        assert_eq!(
            (c.witness_id.as_str(), c.batch.as_str()),
            (s[0].id.as_str(), "BX12")
        );

        let classes = ["opioids".to_owned()];
        let allergic = PatientFacts {
            allergy_classes: &classes,
            ..facts(&[])
        };
        let Err(FormProblem::Concerns(c)) =
            form.entry(f, s, &allergic, noon(), Giver::named("crew"), false)
        else {
            panic!("an allergy conflict must be asked");
        };
        form.concerns = c;
        let p = problem(form.entry(f, s, &allergic, noon(), Giver::named("crew"), true));
        assert!(p.contains("reason"), "{p}");
        form.override_reason = "Reaction was nausea only; discussed with clinical lead".into();
        let drug = form
            .entry(f, s, &allergic, noon(), Giver::named("crew"), true)
            .unwrap();
        assert_eq!(drug.overrides[0].check, DoseCheck::Allergy);
        assert!(drug.overrides[0].reason.contains("clinical lead"));
    }
}
