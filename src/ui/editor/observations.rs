//! The observations section: a quick-entry row with large numeric fields (Enter adds the
//! set), live NEWS2 with its risk colour and the parameters that scored, a table of every set
//! and a trend chart.
//!
//! Hard-limit errors appear beside their field and stop the set being added; soft-limit
//! values ask "confirm this value?" and are added once confirmed. Nothing typed is dropped.
//! A recorded set can be corrected: "Correct" loads it into the entry row, and saving replaces
//! it in place (its time kept unless changed). In a signed record that is an amendment.

use chrono::{DateTime, Utc};
use egui::{RichText, TextEdit, Ui};
use egui_extras::{Column, TableBuilder};
use egui_plot::{Legend, Line, Plot, PlotPoints};

use super::forms::{clock_local, now_utc, read_clock};
use super::number_pad::{self, NumberPad};
use super::sections::time_problem_ui;
use super::{jump_here, name_widget};
use crate::model::clock_time::{ClockTimeError, Expect};
use crate::model::ecg::EcgRhythm;
use crate::model::observations::{
    CapillaryRefillSeconds, Etco2Kpa, PeakFlowLitresPerMin, PupilMm, PupilReaction, Pupils,
};
use crate::model::{
    Acvpu, CurrentNews2, DiastolicMmHg, Encounter, Field, Gcs, GcsEyeResponse, GcsMotor,
    GcsVerbalResponse, GlucoseMmolPerL, Inspired, News2, ObservationSet, OxygenFlowLitresPerMin,
    PainScore, PulseBpm, RespRatePerMin, Scale2Choice, Spo2Percent, Spo2Scale, SystolicMmHg,
    TemperatureCelsius,
};
use crate::store::audit::Action;
use crate::ui::widgets::{choice, error_text, news2_badge, news2_colours, warning_text};

/// Size of the digits in the quick-entry fields, in points: readable at arm's length.
const ENTRY_FONT_POINTS: f32 = 26.0;

/// Which entry field an error belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EntryField {
    Time,
    RespRate,
    Spo2,
    Flow,
    Systolic,
    Diastolic,
    Pulse,
    Temperature,
    Gcs,
    Glucose,
    Pain,
    Scale,
    Pupils,
    CapillaryRefill,
    Etco2,
    PeakFlow,
}

/// The quick-entry row's typed text.
#[derive(Debug, Clone, Default)]
pub struct ObsEntry {
    /// HH:MM; empty means "now".
    pub time: String,
    pub resp_rate: String,
    pub spo2: String,
    /// `Some(true)` oxygen, `Some(false)` air, `None` not chosen yet.
    pub on_oxygen: Option<bool>,
    pub flow: String,
    pub systolic: String,
    pub diastolic: String,
    pub pulse: String,
    pub temperature: String,
    pub acvpu: Option<Acvpu>,
    pub gcs_eye: String,
    pub gcs_verbal: String,
    pub gcs_motor: String,
    pub glucose: String,
    pub pain: String,
    /// The observations beyond the vital signs, as typed or chosen.
    pub pupil_left: String,
    pub pupil_right: String,
    pub pupil_reaction: Option<PupilReaction>,
    pub capillary_refill: String,
    pub etco2: String,
    pub peak_flow: String,
    pub rhythm: Option<EcgRhythm>,
    /// The soft-limit questions are showing and need "Confirm and add".
    pub confirming: bool,
    /// Give the first field keyboard focus on the next frame (after adding a set).
    pub focus_first: bool,
    pub message: Option<String>,
    /// The set being corrected (loaded from the table), as it was: saving replaces it.
    pub correcting: Option<ObservationSet>,
    /// SpO2 scale 2 chosen for this set, and the clinician who chose it.
    pub scale2: bool,
    pub scale2_by: String,
    /// Set by "Same as last set": the time of the set the row's values were copied from.
    pub copied_from: Option<DateTime<Utc>>,
    /// The set the crew asked to remove, waiting for them to confirm.
    pub removing: Option<ObservationSet>,
    /// Removals confirmed this frame, for the editor to audit.
    pub removed: Vec<Action>,
}

/// What the row currently holds.
#[derive(Debug, Clone)]
pub struct ParsedEntry {
    pub set: ObservationSet,
    pub errors: Vec<(EntryField, String)>,
    /// Why the typed time was not taken, kept whole so a repeated hour can offer a choice.
    pub time_problem: Option<ClockTimeError>,
}

fn opt<T, E: std::fmt::Display>(
    text: &str,
    field: EntryField,
    parse: impl Fn(&str) -> Result<T, E>,
    errors: &mut Vec<(EntryField, String)>,
) -> Option<T> {
    if text.trim().is_empty() {
        return None;
    }
    match parse(text) {
        Ok(v) => Some(v),
        Err(e) => {
            errors.push((field, e.to_string()));
            None
        }
    }
}

impl ObsEntry {
    /// Parses every field; values that fail are listed in `errors` and left out of `set`.
    pub fn parse(&self, now: DateTime<Utc>) -> ParsedEntry {
        let mut errors = Vec::new();
        let mut time_problem = None;
        // A new set's typed time is its latest occurrence at or before now ("23:55" typed
        // just after midnight is yesterday's). A correction keeps its set's time unless the
        // time is changed, and a changed time is placed nearest the original (an amendment
        // may come days later).
        let (reference, expect) = match &self.correcting {
            Some(original) => (original.taken_at_utc, Expect::Nearest),
            None => (now, Expect::Past),
        };
        let unchanged_time = self
            .correcting
            .as_ref()
            .is_some_and(|o| self.time.trim() == clock_local(o.taken_at_utc));
        let taken_at = if self.time.trim().is_empty() || unchanged_time {
            reference
        } else {
            match read_clock(&self.time, reference, expect) {
                Ok(t) => t,
                Err(e) => {
                    errors.push((EntryField::Time, e.message().to_owned()));
                    time_problem = Some(e);
                    reference
                }
            }
        };
        let mut set = ObservationSet::empty(taken_at);
        if self.scale2 {
            if self.scale2_by.trim().is_empty() {
                errors.push((
                    EntryField::Scale,
                    "Name the clinician who chose SpO2 scale 2".to_owned(),
                ));
            } else {
                set.spo2_scale2 = Some(Scale2Choice::hypercapnic_failure(&self.scale2_by));
            }
        }
        set.resp_rate_per_min = opt(
            &self.resp_rate,
            EntryField::RespRate,
            RespRatePerMin::parse,
            &mut errors,
        );
        set.spo2_percent = opt(
            &self.spo2,
            EntryField::Spo2,
            Spo2Percent::parse,
            &mut errors,
        );
        set.inspired = match self.on_oxygen {
            Some(true) => Some(Inspired::Oxygen {
                flow_l_per_min: opt(
                    &self.flow,
                    EntryField::Flow,
                    OxygenFlowLitresPerMin::parse,
                    &mut errors,
                ),
            }),
            Some(false) => Some(Inspired::Air),
            None => None,
        };
        set.systolic_mmhg = opt(
            &self.systolic,
            EntryField::Systolic,
            SystolicMmHg::parse,
            &mut errors,
        );
        set.diastolic_mmhg = opt(
            &self.diastolic,
            EntryField::Diastolic,
            DiastolicMmHg::parse,
            &mut errors,
        );
        set.pulse_bpm = opt(&self.pulse, EntryField::Pulse, PulseBpm::parse, &mut errors);
        set.temperature_celsius = opt(
            &self.temperature,
            EntryField::Temperature,
            TemperatureCelsius::parse,
            &mut errors,
        );
        set.acvpu = self.acvpu;
        // Eye "C" (closed by swelling) and verbal "T" (intubated) are recorded as not
        // testable, never as 1.
        let e = opt(
            &self.gcs_eye,
            EntryField::Gcs,
            GcsEyeResponse::parse,
            &mut errors,
        );
        let v = opt(
            &self.gcs_verbal,
            EntryField::Gcs,
            GcsVerbalResponse::parse,
            &mut errors,
        );
        let m = opt(
            &self.gcs_motor,
            EntryField::Gcs,
            GcsMotor::parse,
            &mut errors,
        );
        let typed = [&self.gcs_eye, &self.gcs_verbal, &self.gcs_motor]
            .iter()
            .filter(|t| !t.trim().is_empty())
            .count();
        set.gcs = match (e, v, m) {
            (Some(eye), Some(verbal), Some(motor)) => Some(Gcs { eye, verbal, motor }),
            _ => {
                if typed > 0 && typed < 3 {
                    errors.push((
                        EntryField::Gcs,
                        "Enter all three GCS parts (eye, verbal, motor)".to_owned(),
                    ));
                }
                None
            }
        };
        set.glucose_mmol_per_l = opt(
            &self.glucose,
            EntryField::Glucose,
            GlucoseMmolPerL::parse,
            &mut errors,
        );
        set.pain_score = opt(&self.pain, EntryField::Pain, PainScore::parse, &mut errors);
        let pupils = Pupils {
            left_mm: opt(
                &self.pupil_left,
                EntryField::Pupils,
                PupilMm::parse,
                &mut errors,
            ),
            right_mm: opt(
                &self.pupil_right,
                EntryField::Pupils,
                PupilMm::parse,
                &mut errors,
            ),
            reaction: self.pupil_reaction,
        };
        set.pupils = pupils.text().map(|_| pupils);
        set.capillary_refill_s = opt(
            &self.capillary_refill,
            EntryField::CapillaryRefill,
            CapillaryRefillSeconds::parse,
            &mut errors,
        );
        set.etco2_kpa = opt(&self.etco2, EntryField::Etco2, Etco2Kpa::parse, &mut errors);
        set.peak_flow_l_per_min = opt(
            &self.peak_flow,
            EntryField::PeakFlow,
            PeakFlowLitresPerMin::parse,
            &mut errors,
        );
        set.rhythm = self.rhythm;
        ParsedEntry {
            set,
            errors,
            time_problem,
        }
    }

    /// The row filled from a recorded set, to correct it.
    pub fn for_correction(set: &ObservationSet) -> Self {
        fn text<T: ToString>(v: Option<T>) -> String {
            v.map(|v| v.to_string()).unwrap_or_default()
        }
        let (on_oxygen, flow) = match set.inspired {
            Some(Inspired::Air) => (Some(false), String::new()),
            Some(Inspired::Oxygen { flow_l_per_min }) => {
                (Some(true), text(flow_l_per_min.map(|f| f.get())))
            }
            None => (None, String::new()),
        };
        Self {
            time: clock_local(set.taken_at_utc),
            resp_rate: text(set.resp_rate_per_min.map(|v| v.get())),
            spo2: text(set.spo2_percent.map(|v| v.get())),
            on_oxygen,
            flow,
            systolic: text(set.systolic_mmhg.map(|v| v.get())),
            diastolic: text(set.diastolic_mmhg.map(|v| v.get())),
            pulse: text(set.pulse_bpm.map(|v| v.get())),
            temperature: text(set.temperature_celsius.map(|v| v.get())),
            acvpu: set.acvpu,
            gcs_eye: text(set.gcs.map(|g| g.eye)),
            gcs_verbal: text(set.gcs.map(|g| g.verbal)),
            gcs_motor: text(set.gcs.map(|g| g.motor.get())),
            glucose: text(set.glucose_mmol_per_l.map(|v| v.get())),
            pain: text(set.pain_score.map(|v| v.get())),
            pupil_left: text(set.pupils.and_then(|p| p.left_mm).map(|v| v.get())),
            pupil_right: text(set.pupils.and_then(|p| p.right_mm).map(|v| v.get())),
            pupil_reaction: set.pupils.and_then(|p| p.reaction),
            capillary_refill: text(set.capillary_refill_s.map(|v| v.get())),
            etco2: text(set.etco2_kpa.map(|v| v.get())),
            peak_flow: text(set.peak_flow_l_per_min.map(|v| v.get())),
            rhythm: set.rhythm,
            focus_first: true,
            scale2: set.spo2_scale2.is_some(),
            scale2_by: set
                .spo2_scale2
                .as_ref()
                .map(|c| c.chosen_by.clone())
                .unwrap_or_default(),
            correcting: Some(set.clone()),
            ..Self::default()
        }
    }

    /// A new row holding the vital signs of `set` (the seven NEWS2 inputs and the GCS), to be
    /// checked against the patient: taken now, marked as copied from `set`. Glucose, pain and
    /// SpO2 scale 2 are not copied: each is measured or chosen afresh.
    pub fn same_as(set: &ObservationSet) -> Self {
        let mut row = Self::for_correction(set);
        row.time = String::new();
        row.glucose = String::new();
        row.pain = String::new();
        row.pupil_left = String::new();
        row.pupil_right = String::new();
        row.pupil_reaction = None;
        row.capillary_refill = String::new();
        row.etco2 = String::new();
        row.peak_flow = String::new();
        row.rhythm = None;
        row.scale2 = false;
        row.scale2_by = String::new();
        row.correcting = None;
        row.copied_from = Some(set.taken_at_utc);
        row
    }

    /// True when something has been typed or chosen for a new set (not yet added).
    pub fn has_typed(&self) -> bool {
        let texts = [
            &self.time,
            &self.resp_rate,
            &self.spo2,
            &self.systolic,
            &self.diastolic,
            &self.pulse,
            &self.temperature,
            &self.gcs_eye,
            &self.gcs_verbal,
            &self.gcs_motor,
            &self.glucose,
            &self.pain,
            &self.pupil_left,
            &self.pupil_right,
            &self.capillary_refill,
            &self.etco2,
            &self.peak_flow,
        ];
        texts.iter().any(|t| !t.trim().is_empty())
            || self.acvpu.is_some()
            || self.scale2
            || self.pupil_reaction.is_some()
            || self.rhythm.is_some()
    }

    /// Empties the row for the next set; keeps air/oxygen and the flow, which rarely change.
    /// Empties the row for the next set. Nothing is carried forward, air or oxygen and its
    /// flow included: a change of oxygen between sets must be entered, never assumed.
    pub fn clear_for_next(&mut self) {
        *self = Self {
            focus_first: true,
            removed: std::mem::take(&mut self.removed),
            ..Self::default()
        };
    }
}

/// Why a set was not added (shown under the entry row).
pub const NOTHING_ENTERED: &str = "Enter at least one value before adding the set";
/// Shown when hard-limit errors block adding.
pub const FIX_ERRORS_FIRST: &str = "Correct the values marked in red, then add the set";

/// Tries to add the entry row's set to `doc`. Returns true when the record changed.
pub fn try_add(doc: &mut Encounter, entry: &mut ObsEntry, confirmed: bool) -> bool {
    let parsed = entry.parse(now_utc());
    if !parsed.errors.is_empty() {
        entry.message = Some(FIX_ERRORS_FIRST.to_owned());
        return false;
    }
    let mut set = parsed.set;
    // A copied set stays marked, also when corrected later.
    set.copied_from_utc = entry
        .copied_from
        .or_else(|| entry.correcting.as_ref().and_then(|o| o.copied_from_utc));
    if set.is_empty() {
        entry.message = Some(NOTHING_ENTERED.to_owned());
        return false;
    }
    if !set.soft_limit_warnings().is_empty() {
        if !confirmed {
            entry.confirming = true;
            entry.message = None;
            return false;
        }
        set.unusual_values_confirmed = true;
    }
    // Replace the set being corrected where it is; if it has gone meanwhile, keep the values.
    let slot = entry
        .correcting
        .as_ref()
        .and_then(|original| doc.observations.iter_mut().find(|o| *o == original));
    match slot {
        Some(slot) => *slot = set,
        None => doc.observations.push(set),
    }
    entry.clear_for_next();
    true
}

/// Why a set could not be loaded for correction.
pub const FINISH_NEW_SET_FIRST: &str =
    "Add or clear the new set first, then choose the set to correct";

fn error_for(errors: &[(EntryField, String)], field: EntryField) -> Option<&str> {
    errors
        .iter()
        .find(|(f, _)| *f == field)
        .map(|(_, m)| m.as_str())
}

/// One large numeric field with its label above and its error below.
/// The verbal and motor descriptors for a child under 5, under the GCS fields.
fn paediatric_gcs_key(ui: &mut Ui) {
    ui.scope(|ui| {
        ui.set_max_width(320.0);
        ui.label(RichText::new("Child under 5: paediatric GCS").strong());
        for (i, text) in Gcs::PAEDIATRIC_VERBAL.iter().enumerate() {
            ui.label(RichText::new(format!("V{} {text}", 5 - i)).size(14.0));
        }
        for (i, text) in Gcs::PAEDIATRIC_MOTOR.iter().enumerate() {
            ui.label(RichText::new(format!("M{} {text}", 6 - i)).size(14.0));
        }
    });
}

/// What the entry row's number fields report each frame, for Enter-to-add and the number pad.
#[derive(Default)]
struct RowInput {
    /// Enter was pressed in one of the fields.
    enter: bool,
    /// Each number field drawn this frame, in order: its label, widget id and whether it
    /// holds keyboard focus (for the number pad).
    fields: Vec<(&'static str, egui::Id, bool)>,
}

/// The entry row's time field: typed as HH:MM, so the number pad (no colon) leaves it alone.
const TIME_FIELD: &str = "Time (blank = now)";

fn number_field(
    ui: &mut Ui,
    label: &'static str,
    text: &mut String,
    width: f32,
    error: Option<&str>,
    input: &mut RowInput,
) -> egui::Response {
    ui.vertical(|ui| {
        let l = ui.add(egui::Label::new(RichText::new(label).strong()).extend());
        let r = ui
            .add(
                TextEdit::singleline(text)
                    .font(egui::FontId::proportional(ENTRY_FONT_POINTS))
                    .desired_width(width)
                    .align(egui::Align2::CENTER_CENTER),
            )
            .labelled_by(l.id);
        if r.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter)) {
            input.enter = true;
        }
        // Tapped or tabbed into with a value in it (a copied or corrected set): the value is
        // selected, so typing replaces it. (The number pad gives focus back without this.)
        if r.gained_focus() && !text.is_empty() {
            let mut state =
                egui::text_edit::TextEditState::load(ui.ctx(), r.id).unwrap_or_default();
            state
                .cursor
                .set_char_range(Some(egui::text::CCursorRange::two(
                    egui::text::CCursor::new(0),
                    egui::text::CCursor::new(text.chars().count()),
                )));
            state.store(ui.ctx(), r.id);
        }
        if label != TIME_FIELD {
            input.fields.push((label, r.id, r.has_focus()));
        }
        if let Some(e) = error {
            // Wrap under the field instead of widening the column and pushing the row apart.
            ui.scope(|ui| {
                ui.set_max_width((width + 60.0).max(150.0));
                ui.add(
                    egui::Label::new(
                        RichText::new(e)
                            .color(ui.visuals().error_fg_color)
                            .strong()
                            .size(16.0),
                    )
                    .wrap(),
                );
            });
        }
        r
    })
    .inner
}

/// The soft-limit question for one measure, if the set raises it.
fn soft_for(
    warnings: &[crate::model::SoftLimitWarning],
    measure: crate::model::Measure,
) -> Option<&str> {
    warnings
        .iter()
        .find(|w| w.measure == measure)
        .map(|w| w.message.as_str())
}

/// The whole section. Returns true when the record changed.
pub fn observations_ui(
    ui: &mut Ui,
    doc: &mut Encounter,
    entry: &mut ObsEntry,
    pad: &mut NumberPad,
    jump: &mut Option<Field>,
    editable: bool,
    user: &str,
) -> bool {
    let mut changed = false;
    let parsed = entry.parse(now_utc());
    let warnings = parsed.set.soft_limit_warnings();
    if warnings.is_empty() {
        entry.confirming = false;
    }

    // The current NEWS2, large, with what scored: from the latest complete set, so a later
    // glucose-only or pain-only recheck never hides it, with any newer partial sets named.
    let sets = doc.observations_by_time();
    if let Some(latest) = sets.last() {
        let current = doc.current_news2();
        let news = current.news2().unwrap_or_else(|| doc.news2_for(latest));
        let taken = match &current {
            CurrentNews2::Scored(l) => l.taken_at_utc,
            _ => latest.taken_at_utc,
        };
        ui.horizontal_wrapped(|ui| {
            let heading = match &current {
                CurrentNews2::Scored(_) => "Latest complete set",
                _ => "Latest set",
            };
            ui.label(RichText::new(format!("{heading} {}", clock_local(taken))).strong());
            news2_badge(ui, &news, 30.0);
            if let News2::Complete(score) = &news {
                ui.label(
                    RichText::new(crate::ui::widgets::sentence(score.risk.response())).strong(),
                );
            }
        });
        if let (News2::Complete(_), Some(caveat)) = (&news, doc.news2_caveat()) {
            warning_text(ui, &crate::ui::widgets::sentence(caveat));
        }
        if let CurrentNews2::Scored(l) = &current
            && let Some(newer) = l.newer_partial_text()
        {
            let later: Vec<String> = doc
                .sets_after_latest_complete()
                .iter()
                .map(|o| clock_local(o.taken_at_utc))
                .collect();
            let them = if l.newer_partial_sets == 1 {
                "it"
            } else {
                "them"
            };
            warning_text(
                ui,
                &format!("{newer} ({}): no NEWS2 from {them}", later.join(", ")),
            );
        }
        if let News2::Complete(score) = &news {
            let scored: Vec<String> = score
                .parameters
                .named()
                .iter()
                .filter(|(_, s)| *s > 0)
                .map(|(n, s)| format!("{n} {s}"))
                .collect();
            ui.label(if scored.is_empty() {
                "No parameter scored".to_owned()
            } else {
                format!("Scored: {}", scored.join(" · "))
            });
        }
    } else {
        ui.label("No observations yet.");
    }

    if editable {
        ui.separator();
        let heading = match &entry.correcting {
            Some(o) => format!("Correcting the set taken {}", clock_local(o.taken_at_utc)),
            None => "New set".to_owned(),
        };
        ui.label(RichText::new(heading).strong().size(22.0));
        let mut input = RowInput::default();
        let e = &parsed.errors;
        ui.horizontal_top(|ui| {
            let rr = number_field(
                ui,
                "Resp rate /min",
                &mut entry.resp_rate,
                90.0,
                error_for(e, EntryField::RespRate).or(soft_for(&warnings, RespRatePerMin::MEASURE)),
                &mut input,
            );
            if entry.focus_first {
                rr.request_focus();
                if entry.correcting.is_some() {
                    // "Correct" is pressed in the table below: bring the row into view.
                    rr.scroll_to_me(Some(egui::Align::Center));
                }
                entry.focus_first = false;
            }
            jump_here(&rr, jump, Field::Observations);
            number_field(
                ui,
                "SpO2 %",
                &mut entry.spo2,
                90.0,
                error_for(e, EntryField::Spo2).or(soft_for(&warnings, Spo2Percent::MEASURE)),
                &mut input,
            );
            ui.vertical(|ui| {
                ui.label(RichText::new("Air or oxygen").strong());
                ui.horizontal(|ui| {
                    if choice(ui, entry.on_oxygen == Some(false), "Air").clicked() {
                        entry.on_oxygen = Some(false);
                    }
                    if choice(ui, entry.on_oxygen == Some(true), "Oxygen").clicked() {
                        entry.on_oxygen = Some(true);
                    }
                });
            });
            if entry.on_oxygen == Some(true) {
                number_field(
                    ui,
                    "O2 L/min",
                    &mut entry.flow,
                    80.0,
                    error_for(e, EntryField::Flow),
                    &mut input,
                );
            }
            number_field(
                ui,
                "Pulse /min",
                &mut entry.pulse,
                90.0,
                error_for(e, EntryField::Pulse).or(soft_for(&warnings, PulseBpm::MEASURE)),
                &mut input,
            );
        });
        ui.horizontal_top(|ui| {
            number_field(
                ui,
                "BP systolic",
                &mut entry.systolic,
                90.0,
                error_for(e, EntryField::Systolic).or(soft_for(&warnings, SystolicMmHg::MEASURE)),
                &mut input,
            );
            number_field(
                ui,
                "BP diastolic",
                &mut entry.diastolic,
                90.0,
                error_for(e, EntryField::Diastolic).or(soft_for(&warnings, DiastolicMmHg::MEASURE)),
                &mut input,
            );
            number_field(
                ui,
                "Temp °C",
                &mut entry.temperature,
                90.0,
                error_for(e, EntryField::Temperature)
                    .or(soft_for(&warnings, TemperatureCelsius::MEASURE)),
                &mut input,
            );
            ui.vertical(|ui| {
                ui.label(RichText::new("ACVPU").strong());
                ui.horizontal(|ui| {
                    for level in Acvpu::ALL {
                        let r = choice(ui, entry.acvpu == Some(level), level.letter())
                            .on_hover_text(level.label());
                        let selected = entry.acvpu == Some(level);
                        r.widget_info(|| {
                            egui::WidgetInfo::selected(
                                egui::Role::Button,
                                true,
                                selected,
                                format!("ACVPU {}", level.label()),
                            )
                        });
                        if r.clicked() {
                            entry.acvpu = if entry.acvpu == Some(level) {
                                None
                            } else {
                                Some(level)
                            };
                        }
                    }
                });
            });
        });
        ui.horizontal_top(|ui| {
            ui.vertical(|ui| {
                ui.label(RichText::new("GCS").strong());
                ui.horizontal(|ui| {
                    number_field(ui, "Eye", &mut entry.gcs_eye, 60.0, None, &mut input);
                    number_field(ui, "Verbal", &mut entry.gcs_verbal, 60.0, None, &mut input);
                    number_field(ui, "Motor", &mut entry.gcs_motor, 60.0, None, &mut input);
                });
                if let Some(err) = error_for(e, EntryField::Gcs) {
                    error_text(ui, err);
                }
                if Gcs::paediatric_scale_applies(doc.patient_age_years()) {
                    paediatric_gcs_key(ui);
                }
            });
            number_field(
                ui,
                "Glucose mmol/L",
                &mut entry.glucose,
                100.0,
                error_for(e, EntryField::Glucose).or(soft_for(&warnings, GlucoseMmolPerL::MEASURE)),
                &mut input,
            );
            number_field(
                ui,
                "Pain 0–10",
                &mut entry.pain,
                80.0,
                error_for(e, EntryField::Pain),
                &mut input,
            );
            number_field(
                ui,
                "Time (blank = now)",
                &mut entry.time,
                100.0,
                None,
                &mut input,
            );
        });
        if let Some(problem) = &parsed.time_problem {
            ui.horizontal_wrapped(|ui| {
                ui.label("Time:");
                time_problem_ui(ui, problem, &mut entry.time);
            });
        }
        // The NEWS2 this set would score, before it is added.
        let preview = doc.news2_for(&parsed.set);
        ui.horizontal_wrapped(|ui| {
            ui.label("This set:");
            let (bg, fg) = news2_colours(&preview, ui.visuals().dark_mode);
            egui::Frame::new()
                .fill(bg)
                .corner_radius(6.0)
                .inner_margin(egui::Margin::symmetric(8, 3))
                .show(ui, |ui| {
                    ui.label(RichText::new(format!("Preview: {}", preview.display())).color(fg))
                });
            ui.add_space(16.0);
            // The SpO2 scale, chosen for this set only, with the clinician who chose it: choosing
            // scale 2 never rescores a set already taken, and nothing carries it to the next set.
            let r = choice(ui, entry.scale2, "Scale 2 for this set")
                .on_hover_text("SpO2 scale 2: confirmed hypercapnic respiratory failure only");
            if r.clicked() {
                entry.scale2 = !entry.scale2;
                if entry.scale2 && entry.scale2_by.trim().is_empty() {
                    entry.scale2_by = user.to_owned();
                }
            }
            if entry.scale2 {
                let l = ui.label("Chosen by");
                ui.add(TextEdit::singleline(&mut entry.scale2_by).desired_width(200.0))
                    .labelled_by(l.id);
                if let Some(m) = error_for(e, EntryField::Scale) {
                    error_text(ui, m);
                }
            }
        });
        let mut add = false;
        let mut confirmed = false;
        if entry.confirming && !warnings.is_empty() {
            egui::Frame::group(ui.style()).show(ui, |ui| {
                for w in &warnings {
                    warning_text(ui, &w.message);
                }
                ui.horizontal(|ui| {
                    if ui.button("Confirm and add").clicked() {
                        add = true;
                        confirmed = true;
                    }
                    if ui.button("Change values").clicked() {
                        entry.confirming = false;
                    }
                });
            });
        }
        if let Some(from) = entry.copied_from {
            warning_text(
                ui,
                &format!(
                    "Copied from the {} set: check every value against the patient now and change what differs. The set will say it was copied.",
                    clock_local(from)
                ),
            );
        }
        ui.horizontal(|ui| {
            let label = if entry.correcting.is_some() {
                "Save corrected set"
            } else {
                "Add observation set"
            };
            if ui
                .add(egui::Button::new(RichText::new(label).strong()))
                .on_hover_text("Or press Enter in any field")
                .clicked()
                || input.enter
            {
                add = true;
            }
            if entry.correcting.is_some() && ui.button("Cancel correction").clicked() {
                entry.clear_for_next();
            }
            if !doc.observations.is_empty()
                && entry.correcting.is_none()
                && !entry.has_typed()
                && ui
                    .button("Same as last set")
                    .on_hover_text("Fills the vital signs from the latest set, to check and change")
                    .clicked()
            {
                // The latest complete set when there is one: a glucose-only recheck after it
                // has no vital signs to copy.
                let latest = match doc.current_news2() {
                    CurrentNews2::Scored(l) => Some(l.set),
                    _ => doc.observations_by_time().last().map(|o| (*o).clone()),
                };
                if let Some(latest) = latest {
                    *entry = ObsEntry {
                        removed: std::mem::take(&mut entry.removed),
                        ..ObsEntry::same_as(&latest)
                    };
                }
            }
            number_pad::toggle_ui(ui, pad);
            if entry.copied_from.is_some() && ui.button("Clear copied values").clicked() {
                entry.clear_for_next();
            }
            if let Some(m) = &entry.message {
                error_text(ui, m);
            }
        });
        // Below the button, so the everyday row and "Add" stay where crews expect them.
        more_observations_ui(ui, entry, &parsed.errors, &mut input);
        for (label, id, focused) in &input.fields {
            pad.offer_id(*id, label, *focused);
        }
        if add || input.enter {
            changed |= try_add(doc, entry, confirmed);
        }
    }
    // Records made before the scale was chosen per set may have chosen scale 2 for all.
    if doc.spo2_scale == Spo2Scale::Scale2 {
        warning_text(
            ui,
            "Every set in this record is scored on SpO2 scale 2 (chosen for the whole record)",
        );
    }
    if entry.scale2 {
        warning_text(
            ui,
            "SpO2 scale 2 is for confirmed hypercapnic respiratory failure only",
        );
    }

    ui.separator();
    ui.label(RichText::new("All sets").strong().size(22.0));
    changed |= table_ui(ui, doc, entry, editable);
    // Pupils, capillary refill, ETCO2, peak flow and rhythm, under the table (a column for
    // them would make the table wider than most screens).
    for o in doc.observations_by_time() {
        let more = o.more_text();
        if !more.is_empty() {
            ui.label(format!(
                "{}: {}",
                clock_local(o.taken_at_utc),
                more.join(", ")
            ));
        }
    }
    ui.separator();
    ui.label(RichText::new("Trend").strong().size(22.0));
    trend_ui(ui, doc);
    changed
}

/// Pupils, capillary refill, ETCO2, peak flow and the monitor's rhythm: folded away until
/// wanted, open when a value is typed or a correction holds one.
fn more_observations_ui(
    ui: &mut Ui,
    entry: &mut ObsEntry,
    errors: &[(EntryField, String)],
    input: &mut RowInput,
) {
    let any = [
        &entry.pupil_left,
        &entry.pupil_right,
        &entry.capillary_refill,
        &entry.etco2,
        &entry.peak_flow,
    ]
    .iter()
    .any(|t| !t.trim().is_empty())
        || entry.pupil_reaction.is_some()
        || entry.rhythm.is_some();
    let header = egui::CollapsingHeader::new(
        RichText::new("More: pupils, capillary refill, ETCO2, peak flow, rhythm").strong(),
    )
    .id_salt("more-observations");
    let header = if any { header.open(Some(true)) } else { header };
    header.show(ui, |ui| {
        ui.horizontal_wrapped(|ui| {
            number_field(
                ui,
                "Pupil left mm",
                &mut entry.pupil_left,
                70.0,
                None,
                input,
            );
            number_field(
                ui,
                "Pupil right mm",
                &mut entry.pupil_right,
                70.0,
                None,
                input,
            );
            number_field(
                ui,
                "Capillary refill s",
                &mut entry.capillary_refill,
                70.0,
                error_for(errors, EntryField::CapillaryRefill),
                input,
            );
            number_field(
                ui,
                "ETCO2 kPa",
                &mut entry.etco2,
                80.0,
                error_for(errors, EntryField::Etco2),
                input,
            );
            number_field(
                ui,
                "Peak flow L/min",
                &mut entry.peak_flow,
                90.0,
                error_for(errors, EntryField::PeakFlow),
                input,
            );
        });
        if let Some(err) = error_for(errors, EntryField::Pupils) {
            error_text(ui, err);
        }
        ui.label("Pupils");
        ui.horizontal_wrapped(|ui| {
            for r in PupilReaction::ALL {
                let chosen = entry.pupil_reaction == Some(r);
                let b = choice(ui, chosen, r.label());
                name_widget(
                    &b,
                    egui::Role::Button,
                    &format!("Pupils: {}", r.label().to_lowercase()),
                );
                if b.clicked() {
                    entry.pupil_reaction = if chosen { None } else { Some(r) };
                }
            }
        });
        ui.label("Rhythm on the monitor");
        ui.horizontal_wrapped(|ui| {
            for r in EcgRhythm::ALL {
                let chosen = entry.rhythm == Some(r);
                let b = choice(ui, chosen, r.label());
                name_widget(
                    &b,
                    egui::Role::Button,
                    &format!("Monitor rhythm: {}", r.label().to_lowercase()),
                );
                if b.clicked() {
                    entry.rhythm = if chosen { None } else { Some(r) };
                }
            }
        });
    });
}

fn cell(v: Option<String>) -> String {
    v.unwrap_or_else(|| "–".to_owned())
}

/// Removing a set asks first, and is audited: the question sits above the table until the
/// crew answers. Returns true when the set was removed.
fn confirm_set_removal_ui(ui: &mut Ui, doc: &mut Encounter, entry: &mut ObsEntry) -> bool {
    let mut confirmed = false;
    if let Some(set) = &entry.removing {
        let taken = clock_local(set.taken_at_utc);
        egui::Frame::group(ui.style()).show(ui, |ui| {
            warning_text(
                ui,
                &format!("Remove the set taken {taken} from the record? The removal is audited."),
            );
            ui.horizontal(|ui| {
                let yes = ui.button("Remove the set");
                name_widget(
                    &yes,
                    egui::Role::Button,
                    &format!("Confirm removing the set taken {taken}"),
                );
                if yes.clicked() {
                    confirmed = true;
                }
                if ui.button("Keep it").clicked() {
                    entry.removing = None;
                }
            });
        });
    }
    if confirmed && let Some(set) = entry.removing.take() {
        let at = doc.observations.iter().position(|o| *o == set);
        if let Some(i) = at {
            let removed = doc.observations.remove(i);
            entry.removed.push(Action::ObservationSetRemoved);
            if entry.correcting.as_ref() == Some(&removed) {
                entry.clear_for_next();
            }
            return true;
        }
    }
    false
}

fn table_ui(ui: &mut Ui, doc: &mut Encounter, entry: &mut ObsEntry, editable: bool) -> bool {
    if editable && confirm_set_removal_ui(ui, doc, entry) {
        return true;
    }
    let mut order: Vec<usize> = (0..doc.observations.len()).collect();
    order.sort_by_key(|i| doc.observations.get(*i).map(|o| o.taken_at_utc));
    let mut remove: Option<usize> = None;
    let mut correct: Option<usize> = None;
    let headers = [
        "Time", "RR", "SpO2", "Air/O2", "BP", "Pulse", "Temp", "ACVPU", "GCS", "BM", "Pain",
        "NEWS2",
    ];
    let doc_ref: &Encounter = doc;
    // Sideways scrolling on narrow screens keeps "Correct" and "Remove" reachable.
    egui::ScrollArea::horizontal()
        .id_salt("observation-table")
        .show(ui, |ui| {
            let mut table = TableBuilder::new(ui)
                .striped(true)
                // Its own scroll area, newest set in view: only the visible rows are laid out.
                .vscroll(true)
                .max_scroll_height(360.0)
                .stick_to_bottom(true)
                .cell_layout(egui::Layout::left_to_right(egui::Align::Center))
                .columns(Column::auto().at_least(48.0), headers.len() - 1)
                .column(Column::auto().at_least(100.0));
            if editable {
                table = table.column(Column::auto());
            }
            table
                .header(30.0, |mut header| {
                    for h in headers {
                        header.col(|ui| {
                            ui.strong(h);
                        });
                    }
                    if editable {
                        header.col(|ui| {
                            ui.strong("");
                        });
                    }
                })
                .body(|body| {
                    body.rows(40.0, order.len(), |mut row| {
                        let Some(i) = order.get(row.index()) else {
                            return;
                        };
                        let Some(o) = doc_ref.observations.get(*i) else {
                            return;
                        };
                        let news = doc_ref.news2_for(o);
                        {
                            let time = if o.copied_from_utc.is_some() {
                                format!("{} (copied)", clock_local(o.taken_at_utc))
                            } else {
                                clock_local(o.taken_at_utc)
                            };
                            let values = [
                                time,
                                cell(o.resp_rate_per_min.map(|v| v.get().to_string())),
                                cell(o.spo2_percent.map(|v| v.get().to_string())),
                                cell(o.inspired.map(|v| match v {
                                    Inspired::Air => "Air".to_owned(),
                                    Inspired::Oxygen {
                                        flow_l_per_min: Some(f),
                                    } => format!("O2 {} L", f.get()),
                                    Inspired::Oxygen {
                                        flow_l_per_min: None,
                                    } => "O2".to_owned(),
                                })),
                                match (o.systolic_mmhg, o.diastolic_mmhg) {
                                    (Some(s), Some(d)) => format!("{}/{}", s.get(), d.get()),
                                    (Some(s), None) => s.get().to_string(),
                                    _ => "–".to_owned(),
                                },
                                cell(o.pulse_bpm.map(|v| v.get().to_string())),
                                cell(o.temperature_celsius.map(|v| format!("{:.1}", v.get()))),
                                cell(o.acvpu.map(|v| v.letter().to_owned())),
                                cell(o.gcs.map(|g| {
                                    g.total().map_or_else(|| g.components(), |t| t.to_string())
                                })),
                                cell(o.glucose_mmol_per_l.map(|v| format!("{:.1}", v.get()))),
                                cell(o.pain_score.map(|v| v.get().to_string())),
                            ];
                            for v in values {
                                row.col(|ui| {
                                    ui.label(v);
                                });
                            }
                            row.col(|ui| {
                                let (bg, fg) = news2_colours(&news, ui.visuals().dark_mode);
                                let text = match news {
                                    News2::Complete(s) => {
                                        format!("{} {}", s.total, s.risk_and_scale())
                                    }
                                    News2::Incomplete { present } => format!("{present}/7"),
                                    News2::NotApplicable => "n/a".to_owned(),
                                };
                                egui::Frame::new()
                                    .fill(bg)
                                    .corner_radius(4.0)
                                    .inner_margin(egui::Margin::symmetric(6, 2))
                                    .show(ui, |ui| ui.label(RichText::new(text).color(fg)));
                            });

                            if editable {
                                row.col(|ui| {
                                    let taken = clock_local(o.taken_at_utc);
                                    let c = ui.button("Correct");
                                    name_widget(
                                        &c,
                                        egui::Role::Button,
                                        &format!("Correct set taken {taken}"),
                                    );
                                    if c.clicked() {
                                        correct = Some(*i);
                                    }
                                    let r = ui.button("Remove");
                                    name_widget(
                                        &r,
                                        egui::Role::Button,
                                        &format!(
                                            "Remove set taken {}",
                                            clock_local(o.taken_at_utc)
                                        ),
                                    );
                                    if r.clicked() {
                                        remove = Some(*i);
                                    }
                                });
                            }
                        }
                    });
                });
        });
    if let Some(i) = correct
        && let Some(set) = doc.observations.get(i)
    {
        // Never overwrite values typed for a new set that has not been added yet.
        if entry.has_typed() && entry.correcting.is_none() {
            entry.message = Some(FINISH_NEW_SET_FIRST.to_owned());
        } else {
            *entry = ObsEntry::for_correction(set);
        }
    }
    if let Some(set) = remove.and_then(|i| doc.observations.get(i)) {
        entry.removing = Some(set.clone());
    }
    false
}

fn trend_ui(ui: &mut Ui, doc: &Encounter) {
    let sets = doc.observations_by_time();
    let Some(first) = sets.first() else {
        ui.label("The trend appears once observations are added.");
        return;
    };
    let t0 = first.taken_at_utc;
    let minutes = |o: &ObservationSet| (o.taken_at_utc - t0).num_seconds() as f64 / 60.0;
    let series = |f: &dyn Fn(&ObservationSet) -> Option<f64>| -> Vec<[f64; 2]> {
        sets.iter()
            .filter_map(|o| f(o).map(|v| [minutes(o), v]))
            .collect()
    };
    let news: Vec<[f64; 2]> = sets
        .iter()
        .filter_map(|o| doc.news2_for(o).total().map(|t| [minutes(o), f64::from(t)]))
        .collect();
    let pulse = series(&|o| o.pulse_bpm.map(|v| f64::from(v.get())));
    let rr = series(&|o| o.resp_rate_per_min.map(|v| f64::from(v.get())));
    let spo2 = series(&|o| o.spo2_percent.map(|v| f64::from(v.get())));
    let sbp = series(&|o| o.systolic_mmhg.map(|v| f64::from(v.get())));
    let width = ui.available_width();
    ui.label(format!("Minutes since the first set ({})", clock_local(t0)));
    Plot::new("news2-trend")
        .height(150.0)
        .width(width)
        .allow_drag(false)
        .allow_zoom(false)
        .allow_scroll(false)
        .allow_boxed_zoom(false)
        .include_y(0.0)
        .include_y(10.0)
        .y_axis_label("NEWS2")
        .legend(Legend::default())
        .show(ui, |plot| {
            plot.line(
                Line::new("NEWS2", PlotPoints::from(news))
                    .width(3.0)
                    .color(egui::Color32::from_rgb(183, 28, 28)),
            );
        });
    Plot::new("vitals-trend")
        .height(220.0)
        .width(width)
        .allow_drag(false)
        .allow_zoom(false)
        .allow_scroll(false)
        .allow_boxed_zoom(false)
        .include_y(0.0)
        .legend(Legend::default())
        .show(ui, |plot| {
            plot.line(Line::new("Pulse /min", PlotPoints::from(pulse)).width(2.5));
            plot.line(Line::new("Resp rate /min", PlotPoints::from(rr)).width(2.5));
            plot.line(Line::new("SpO2 %", PlotPoints::from(spo2)).width(2.5));
            plot.line(Line::new("BP systolic", PlotPoints::from(sbp)).width(2.5));
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> ObsEntry {
        ObsEntry {
            resp_rate: "22".into(),
            spo2: "95".into(),
            on_oxygen: Some(false),
            systolic: "150".into(),
            diastolic: "90".into(),
            pulse: "104".into(),
            temperature: "37.1".into(),
            acvpu: Some(Acvpu::Alert),
            ..ObsEntry::default()
        }
    }

    #[test]
    fn a_full_row_adds_a_scoreable_set_and_clears() {
        let mut doc = Encounter::new_draft(Utc::now());
        let mut e = entry();
        assert!(try_add(&mut doc, &mut e, false));
        assert_eq!(doc.observations.len(), 1);
        // RR 22 scores 2, SpO2 95 scores 1, pulse 104 scores 1: total 4, low.
        assert_eq!(
            doc.news2_for(&doc.observations[0]).display(),
            "NEWS2 4 (low)"
        );
        assert!(e.resp_rate.is_empty());
        assert_eq!(e.on_oxygen, None, "air or oxygen is never carried forward");
        assert!(e.flow.is_empty(), "nor is the oxygen flow");
    }

    #[test]
    fn a_hard_limit_error_blocks_and_keeps_the_text() {
        let mut doc = Encounter::new_draft(Utc::now());
        let mut e = entry();
        e.pulse = "600".into();
        assert!(!try_add(&mut doc, &mut e, false));
        assert!(doc.observations.is_empty());
        assert_eq!(e.pulse, "600");
        let parsed = e.parse(Utc::now());
        assert_eq!(
            error_for(&parsed.errors, EntryField::Pulse),
            Some("Heart rate must be between 0 and 500 /min")
        );
    }

    #[test]
    fn an_unusual_value_asks_first_then_records_the_confirmation() {
        let mut doc = Encounter::new_draft(Utc::now());
        let mut e = entry();
        e.pulse = "240".into();
        assert!(!try_add(&mut doc, &mut e, false));
        assert!(e.confirming);
        assert!(try_add(&mut doc, &mut e, true));
        assert!(doc.observations[0].unusual_values_confirmed);
    }

    #[test]
    fn partial_gcs_is_an_error_and_an_empty_row_is_refused() {
        let mut e = ObsEntry {
            gcs_eye: "4".into(),
            ..ObsEntry::default()
        };
        let parsed = e.parse(Utc::now());
        assert!(error_for(&parsed.errors, EntryField::Gcs).is_some());
        e.gcs_eye.clear();
        let mut doc = Encounter::new_draft(Utc::now());
        assert!(!try_add(&mut doc, &mut e, false));
        assert_eq!(e.message.as_deref(), Some(NOTHING_ENTERED));
    }
}
