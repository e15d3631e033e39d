//! The encounter list: newest first, search, filter chips (drafts, signed, returned by a
//! supervisor, needing attention) and virtualised rows, so 10,000 records scroll smoothly.
//!
//! The list holds lightweight [`EncounterSummary`] rows read from indexed columns (no
//! documents are parsed) and draws only the rows on screen. Search goes to the store through
//! a command; the chips filter the rows already held.

use chrono::{DateTime, Utc};
use egui::{Color32, RichText, Sense, TextEdit, Ui, vec2};
use std::collections::HashMap;

use uuid::Uuid;

use super::Command;
use super::theme;
use super::widgets::{RecordRow, RowColumns, choice, error_text, paint_record_row};
use crate::model::{Decision, RecordStatus};
use crate::store::{EncounterSummary, StatusCounts, SyncState};

/// Height of one list row, in points: a comfortable touch target.
pub const ROW_HEIGHT_POINTS: f32 = 56.0;

/// The filter chips above the list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ListChip {
    #[default]
    All,
    Drafts,
    Signed,
    Returned,
    NeedsAttention,
}

impl ListChip {
    /// Every chip in display order.
    pub const ALL: [ListChip; 5] = [
        ListChip::All,
        ListChip::Drafts,
        ListChip::Signed,
        ListChip::Returned,
        ListChip::NeedsAttention,
    ];

    /// The chip's label without its count.
    pub fn label(self) -> &'static str {
        match self {
            ListChip::All => "All",
            ListChip::Drafts => "Drafts",
            ListChip::Signed => "Signed",
            ListChip::Returned => "Returned",
            ListChip::NeedsAttention => "Needs attention",
        }
    }

    /// True when `row` belongs under this chip.
    pub fn matches(self, row: &EncounterSummary) -> bool {
        match self {
            ListChip::All => true,
            ListChip::Drafts => row.status == RecordStatus::Draft,
            ListChip::Signed => row.status.is_signed(),
            ListChip::Returned => row.review_decision == Some(Decision::Returned),
            ListChip::NeedsAttention => row.sync_state == SyncState::NeedsAttention,
        }
    }
}

/// Rows in the first page asked for after unlock: enough to fill a tall screen, read
/// through the `updated_at` index without touching the rest of the table.
pub const FIRST_PAGE_ROWS: u32 = 60;

/// The list screen's state. It survives opening a record, and is emptied on lock.
///
/// The app holds every record's summary (about 200 bytes each; 10,000 records are a couple
/// of megabytes) so that searching names and incident numbers is an in-memory scan that
/// takes a few milliseconds. NHS numbers are not in the summaries: a search with three or
/// more digits also asks the store, and its matches are merged in when they arrive.
#[derive(Debug, Default)]
pub struct ListState {
    /// Retiring or retired: "New record" is refused with the reason.
    pub tablet_state: crate::store::TabletState,
    pub search: String,
    pub chip: ListChip,
    /// Every summary held, newest first.
    pub all: Vec<EncounterSummary>,
    /// Lower-case "incident name" per entry of `all`, for searching.
    keys: Vec<String>,
    index_of: HashMap<Uuid, usize>,
    /// `all` holds every record (not only the first page).
    pub complete: bool,
    /// Indexes into `all` matching the search.
    pub matches: Vec<usize>,
    /// Indexes into `all` matching the search and the chip, in display order.
    pub visible: Vec<usize>,
    /// Matches per chip, for the chip labels.
    pub chip_counts: [usize; 5],
    /// The generation of the newest list query sent; older answers are ignored.
    pub generation: u64,
    /// Waiting for the whole list.
    pub loading: bool,
    /// When to ask the store for NHS-number matches (debounced while typing).
    pub nhs_query_due: Option<std::time::Instant>,
    /// The generation of the NHS-number query in flight.
    pub nhs_generation: Option<u64>,
    /// Records whose NHS number matches the current search digits.
    nhs_matches: Vec<Uuid>,
    pub error: Option<String>,
    pub counts: Option<StatusCounts>,
    pub last_sync_utc: Option<DateTime<Utc>>,
    /// The crew on shift on this tablet.
    pub shift: super::shift::ShiftPanel,
}

/// The digits of a search that may be (part of) an NHS number, when there are at least three.
pub fn nhs_digits(search: &str) -> Option<String> {
    let t: String = search
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .collect();
    (t.len() >= 3 && t.chars().all(|c| c.is_ascii_digit())).then_some(t)
}

/// What the in-memory search matches: incident number, patient name and NHS number digits.
fn search_key(r: &EncounterSummary) -> String {
    format!(
        "{} {} {}",
        r.incident_number,
        r.patient_name,
        r.nhs_number.as_deref().unwrap_or("")
    )
    .to_lowercase()
}

impl ListState {
    /// Replaces every summary held (a first page or the whole list) and re-applies the search.
    pub fn set_all(&mut self, rows: Vec<EncounterSummary>, complete: bool) {
        self.keys = rows.iter().map(search_key).collect();
        self.index_of = rows.iter().enumerate().map(|(i, r)| (r.id, i)).collect();
        self.all = rows;
        self.complete = complete;
        self.apply_search();
    }

    /// Merges the store's NHS-number matches for the current search.
    pub fn set_nhs_matches(&mut self, rows: Vec<EncounterSummary>) {
        self.nhs_matches = rows.iter().map(|r| r.id).collect();
        let mut added = false;
        for r in rows {
            if !self.index_of.contains_key(&r.id) {
                self.index_of.insert(r.id, self.all.len());
                self.keys.push(search_key(&r));
                self.all.push(r);
                added = true;
            }
        }
        if added {
            // Keep newest first.
            let mut order: Vec<usize> = (0..self.all.len()).collect();
            order.sort_by(|a, b| {
                self.all[*b]
                    .updated_at_utc
                    .cmp(&self.all[*a].updated_at_utc)
            });
            let all = std::mem::take(&mut self.all);
            let keys = std::mem::take(&mut self.keys);
            let mut slots: Vec<Option<(EncounterSummary, String)>> =
                all.into_iter().zip(keys).map(Some).collect();
            let mut rows = Vec::with_capacity(slots.len());
            for i in order {
                if let Some(slot) = slots.get_mut(i).and_then(Option::take) {
                    rows.push(slot);
                }
            }
            let (all, keys): (Vec<_>, Vec<_>) = rows.into_iter().unzip();
            self.index_of = all.iter().enumerate().map(|(i, r)| (r.id, i)).collect();
            self.all = all;
            self.keys = keys;
        }
        self.apply_search();
    }

    /// Recomputes the matches for the search text (in memory) and then the chip filter.
    pub fn apply_search(&mut self) {
        let q = self.search.trim().to_lowercase();
        let digits = nhs_digits(&q);
        if digits.is_none() {
            self.nhs_matches.clear();
        }
        self.matches = if q.is_empty() {
            (0..self.all.len()).collect()
        } else {
            let nhs: std::collections::HashSet<usize> = self
                .nhs_matches
                .iter()
                .filter_map(|id| self.index_of.get(id).copied())
                .collect();
            self.keys
                .iter()
                .enumerate()
                .filter(|(i, k)| {
                    k.contains(&q)
                        || digits.as_deref().is_some_and(|d| k.contains(d))
                        || nhs.contains(i)
                })
                .map(|(i, _)| i)
                .collect()
        };
        for (i, chip) in ListChip::ALL.iter().enumerate() {
            self.chip_counts[i] = self
                .matches
                .iter()
                .filter(|m| self.all.get(**m).is_some_and(|r| chip.matches(r)))
                .count();
        }
        self.refilter();
    }

    /// Recomputes `visible` for the current chip.
    pub fn refilter(&mut self) {
        let chip = self.chip;
        self.visible = self
            .matches
            .iter()
            .copied()
            .filter(|i| self.all.get(*i).is_some_and(|r| chip.matches(r)))
            .collect();
    }

    /// Forgets every row (on lock: no patient data may stay in memory for the screen).
    pub fn clear(&mut self) {
        *self = Self {
            generation: self.generation,
            ..Self::default()
        };
    }
}

fn status_badge(status: RecordStatus) -> (&'static str, (Color32, Color32)) {
    match status {
        RecordStatus::Draft => ("Draft", theme::info_badge()),
        RecordStatus::Completed => ("Signed", theme::good_badge()),
        RecordStatus::Amended => ("Amended", theme::good_badge()),
    }
}

fn sync_badge(state: SyncState, dark: bool) -> (&'static str, (Color32, Color32)) {
    match state {
        SyncState::Queued => ("Queued", theme::neutral_badge(dark)),
        SyncState::Sending => ("Sending", theme::info_badge()),
        SyncState::Synced => ("Synced", theme::good_badge()),
        SyncState::NeedsAttention => ("Needs attention", theme::alert_badge()),
    }
}

/// Badge text and colours for a supervisor decision.
pub fn decision_badge(decision: Decision) -> (String, (Color32, Color32)) {
    let colours = match decision {
        Decision::Approved => theme::good_badge(),
        Decision::Returned => theme::alert_badge(),
        Decision::Flagged => (Color32::from_rgb(255, 214, 0), Color32::BLACK),
    };
    (super::widgets::sentence(decision.as_str()), colours)
}

fn news_colours(row: &EncounterSummary, dark: bool) -> (Color32, Color32) {
    // The list holds the total and its text; the band is derived from the total like Chart 2
    // (a single 3 shows in the text as "low–medium").
    match row.latest_news2 {
        Some(_) if row.latest_news2_text.contains("(high)") => {
            theme::risk_colours(crate::model::RiskBand::High)
        }
        Some(_) if row.latest_news2_text.contains("(medium)") => {
            theme::risk_colours(crate::model::RiskBand::Medium)
        }
        Some(_) if row.latest_news2_text.contains("(low–medium)") => {
            theme::risk_colours(crate::model::RiskBand::LowMedium)
        }
        Some(_) => theme::risk_colours(crate::model::RiskBand::Low),
        None => theme::neutral_badge(dark),
    }
}

/// The list screen.
pub fn records_ui(ui: &mut Ui, state: &mut ListState, user: &str, out: &mut Vec<Command>) {
    ui.horizontal(|ui| {
        ui.heading("Patient records");
        ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
            let may_start = !state.tablet_state.refuses_new_records();
            if ui
                .add_enabled(
                    may_start,
                    egui::Button::new(RichText::new("New record").strong().size(21.0)),
                )
                .clicked()
            {
                out.push(Command::NewRecord);
            }
        });
    });
    super::shift::shift_ui(ui, &mut state.shift, user, out);
    match state.tablet_state {
        crate::store::TabletState::Active => {}
        crate::store::TabletState::Retiring => {
            error_text(
                ui,
                "This tablet is being retired. It is sending the records it holds and takes no \
                 new records: start new records on another tablet. Records already open can \
                 still be finished.",
            );
        }
        crate::store::TabletState::Retired => {
            error_text(
                ui,
                "This tablet has been retired and no longer syncs. Start new records on another \
                 tablet and hand this one in.",
            );
        }
    }
    ui.horizontal(|ui| {
        let label = ui.label("Search");
        let field = ui
            .add(
                TextEdit::singleline(&mut state.search)
                    .hint_text("Name, NHS number or incident number")
                    .desired_width((ui.available_width() - 120.0).clamp(200.0, 520.0)),
            )
            .labelled_by(label.id);
        if field.changed() {
            out.push(Command::Search(state.search.clone()));
        }
        if !state.search.is_empty() && ui.button("Clear search").clicked() {
            state.search.clear();
            out.push(Command::Search(String::new()));
        }
        if state.loading || state.nhs_generation.is_some() || state.nhs_query_due.is_some() {
            ui.spinner();
        }
    });
    ui.horizontal_wrapped(|ui| {
        for (i, chip) in ListChip::ALL.iter().enumerate() {
            let text = format!("{} ({})", chip.label(), state.chip_counts[i]);
            let mut rich = RichText::new(text);
            if *chip == ListChip::Returned && state.chip_counts[i] > 0 {
                rich = rich.color(ui.visuals().error_fg_color).strong();
            }
            if choice(ui, state.chip == *chip, rich).clicked() {
                state.chip = *chip;
                state.refilter();
            }
        }
    });
    if let Some(e) = &state.error {
        error_text(ui, e);
    }
    ui.separator();
    if state.visible.is_empty() {
        ui.add_space(24.0);
        let text = if state.loading || state.nhs_generation.is_some() {
            "Searching…"
        } else if state.all.is_empty() && state.search.trim().is_empty() {
            "No records on this tablet yet. Tap \"New record\" to start one."
        } else {
            "No records match."
        };
        ui.label(RichText::new(text).size(22.0));
        return;
    }
    let dark = ui.visuals().dark_mode;
    let rows = &state.all;
    let visible = &state.visible;
    let mut opened: Option<Uuid> = None;
    let columns = RowColumns {
        when: 130.0,
        incident: 140.0,
        badges_max: 470.0,
        badges_share: 0.5,
    };
    egui::ScrollArea::vertical()
        .auto_shrink([false, false])
        .show_rows(ui, ROW_HEIGHT_POINTS, visible.len(), |ui, range| {
            let width = ui.available_width();
            for (slot, index) in visible[range.clone()].iter().enumerate() {
                let Some(row) = rows.get(*index) else {
                    continue;
                };
                let (rect, response) =
                    ui.allocate_exact_size(vec2(width, ROW_HEIGHT_POINTS), Sense::click());
                let name = if row.patient_name.is_empty() {
                    "Name not recorded"
                } else {
                    row.patient_name.as_str()
                };
                let incident = if row.incident_number.is_empty() {
                    "No incident number"
                } else {
                    row.incident_number.as_str()
                };
                let (status_text, status_colours) = status_badge(row.status);
                let (sync_text, sync_colours) = sync_badge(row.sync_state, dark);
                let news_text = if row.latest_news2_text.is_empty() {
                    "No observations"
                } else {
                    row.latest_news2_text.as_str()
                };
                response.widget_info(|| {
                    egui::WidgetInfo::labeled(
                        egui::Role::Button,
                        true,
                        format!(
                            "{incident} {name} {status_text} {news_text} {sync_text}{}",
                            row.review_decision
                                .map(|d| format!(" {}", d.as_str()))
                                .unwrap_or_default()
                        ),
                    )
                });
                if response.clicked() {
                    opened = Some(row.id);
                }
                if !ui.is_rect_visible(rect) {
                    continue;
                }
                let decision = row.review_decision.map(decision_badge);
                let mut badges = vec![
                    (status_text, status_colours),
                    (news_text, news_colours(row, dark)),
                    (sync_text, sync_colours),
                ];
                if let Some((text, colours)) = &decision {
                    badges.push((text.as_str(), *colours));
                }
                let returned = row.review_decision == Some(Decision::Returned);
                paint_record_row(
                    ui,
                    rect,
                    columns,
                    &RecordRow {
                        odd: (range.start + slot) % 2 == 1,
                        highlighted: response.hovered() || response.has_focus(),
                        marker: returned.then(|| theme::alert_badge().0),
                        when: crate::ui::widgets::when(row.updated_at_utc, false),
                        incident,
                        name,
                        badges: &badges,
                    },
                );
            }
        });
    if let Some(id) = opened {
        out.push(Command::OpenRecord(id));
    }
}
