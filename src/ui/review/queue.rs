//! The review queue: completed records newest first, a page at a time, with filters (date
//! range, decision, NEWS2 at or above, free text on incident number or patient name) and a
//! chip per decision carrying its count.
//!
//! Filters are edited in place; a change of chip or NEWS2 threshold loads page 1 at once,
//! typed filters load on Enter or "Search". The server does the filtering and counting.

use chrono::{DateTime, Local, NaiveDate, TimeZone, Utc};
use egui::{Color32, RichText, Sense, TextEdit, Ui, vec2};
use uuid::Uuid;

use super::ReviewCommand;
use crate::model::RiskBand;
use crate::protocol::{Decision, DecisionFilter, ReviewList, ReviewQuery, ReviewSummary};
use crate::ui::editor::forms::parse_date;
use crate::ui::theme;
use crate::ui::widgets::{RecordRow, RowColumns, choice, error_text, paint_record_row};

/// Rows per page.
pub const PAGE_SIZE: u32 = 25;

/// Height of one queue row, in points.
pub const ROW_HEIGHT_POINTS: f32 = 56.0;

/// The filters as typed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct QueueFilters {
    /// Completed on or after this local date (DD/MM/YYYY), empty for no limit.
    pub from_date: String,
    /// Completed on or before this local date, empty for no limit.
    pub to_date: String,
    pub decision: Option<DecisionFilter>,
    pub min_news2: Option<u8>,
    /// Incident number or patient name.
    pub text: String,
    /// Only records taken to the destination with this ODS code.
    pub destination: Option<String>,
}

impl QueueFilters {
    /// The server query for `page`, or why a typed date cannot be read.
    pub fn to_query(&self, page: u32) -> Result<ReviewQuery, String> {
        let date = |text: &str, what: &str| -> Result<Option<NaiveDate>, String> {
            if text.trim().is_empty() {
                Ok(None)
            } else {
                parse_date(text)
                    .map(Some)
                    .map_err(|e| format!("{what}: {e}"))
            }
        };
        let from = date(&self.from_date, "From")?;
        let to = date(&self.to_date, "To")?;
        if let (Some(f), Some(t)) = (from, to)
            && t < f
        {
            return Err("The \"to\" date is before the \"from\" date".to_owned());
        }
        let text = self.text.trim();
        Ok(ReviewQuery {
            from: from.and_then(local_midnight_utc),
            // Inclusive: up to the start of the next day.
            to: to.and_then(|d| d.succ_opt()).and_then(local_midnight_utc),
            decision: self.decision,
            min_news2: self.min_news2,
            q: (!text.is_empty()).then(|| text.to_owned()),
            destination: self.destination.clone(),
            page: Some(page.max(1)),
            page_size: Some(PAGE_SIZE),
        })
    }
}

fn local_midnight_utc(d: NaiveDate) -> Option<DateTime<Utc>> {
    let midnight = d.and_hms_opt(0, 0, 0)?;
    Local
        .from_local_datetime(&midnight)
        .earliest()
        .map(|t| t.with_timezone(&Utc))
}

/// The queue page's state.
#[derive(Debug, Default)]
pub struct QueueState {
    pub filters: QueueFilters,
    /// The page asked for, from 1.
    pub page: u32,
    /// The last page received.
    pub list: Option<ReviewList>,
    pub loading: bool,
    /// A filter that cannot be read, in words.
    pub filter_error: Option<String>,
    /// The record being opened.
    pub opening: Option<Uuid>,
}

/// The decision chips in display order (`None` = all).
const CHIPS: [Option<DecisionFilter>; 5] = [
    None,
    Some(DecisionFilter::Pending),
    Some(DecisionFilter::Approved),
    Some(DecisionFilter::Returned),
    Some(DecisionFilter::Flagged),
];

fn chip_label(chip: Option<DecisionFilter>) -> &'static str {
    match chip {
        None => "All",
        Some(DecisionFilter::Pending) => "Pending",
        Some(DecisionFilter::Approved) => "Approved",
        Some(DecisionFilter::Returned) => "Returned",
        Some(DecisionFilter::Flagged) => "Flagged",
    }
}

fn chip_count(list: &ReviewList, chip: Option<DecisionFilter>) -> u64 {
    let c = &list.counts;
    match chip {
        None => c.pending + c.approved + c.returned + c.flagged,
        Some(DecisionFilter::Pending) => c.pending,
        Some(DecisionFilter::Approved) => c.approved,
        Some(DecisionFilter::Returned) => c.returned,
        Some(DecisionFilter::Flagged) => c.flagged,
    }
}

/// Badge text and colours for a decision (`None` = pending).
pub fn decision_badge(
    decision: Option<Decision>,
    dark: bool,
) -> (&'static str, (Color32, Color32)) {
    match decision {
        None => ("Pending", theme::info_badge()),
        Some(Decision::Approved) => ("Approved", theme::good_badge()),
        Some(Decision::Returned) => ("Returned", theme::alert_badge()),
        Some(Decision::Flagged) => ("Flagged for audit", flagged_colours(dark)),
    }
}

fn flagged_colours(_dark: bool) -> (Color32, Color32) {
    (Color32::from_rgb(255, 214, 0), Color32::BLACK)
}

/// A NEWS2 total's colours. The queue has only the total, so a single parameter scoring 3
/// (low–medium) cannot be told apart here; the record view shows the full score.
pub fn news2_total_colours(total: Option<u8>, dark: bool) -> (Color32, Color32) {
    match total {
        Some(t) if t >= 7 => theme::risk_colours(RiskBand::High),
        Some(t) if t >= 5 => theme::risk_colours(RiskBand::Medium),
        Some(_) => theme::risk_colours(RiskBand::Low),
        None => theme::neutral_badge(dark),
    }
}

/// The queue page.
pub fn queue_ui(
    ui: &mut Ui,
    state: &mut QueueState,
    username: &str,
    error: Option<&str>,
    can_retry: bool,
    busy: bool,
    out: &mut Vec<ReviewCommand>,
) {
    ui.horizontal(|ui| {
        ui.heading("Review queue");
        ui.label(RichText::new(format!("Signed in as {username}")).weak());
        ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
            if ui
                .button("Sign out")
                .on_hover_text("Clears every record shown here from this computer")
                .clicked()
            {
                out.push(ReviewCommand::Leave);
            }
            if ui.button("Refresh").clicked() {
                out.push(ReviewCommand::GoToPage(state.page));
            }
            if ui
                .button("Tablets")
                .on_hover_text("What each tablet has not sent to the server yet")
                .clicked()
            {
                out.push(ReviewCommand::ShowTablets);
            }
            if busy {
                ui.spinner();
            }
        });
    });
    filters_ui(ui, state, out);
    if let Some(e) = &state.filter_error {
        error_text(ui, e);
    }
    super::error_with_retry(ui, error, can_retry, out);
    ui.separator();
    let Some(list) = &state.list else {
        super::not_loaded(
            ui,
            state.loading,
            "Loading the queue…",
            "The queue has not loaded.",
        );
        return;
    };
    paging_ui(ui, list, out);
    if list.items.is_empty() {
        ui.add_space(24.0);
        ui.label(RichText::new("No completed records match these filters.").size(22.0));
        return;
    }
    rows_ui(ui, &list.items, state.opening, out);
}

fn filters_ui(ui: &mut Ui, state: &mut QueueState, out: &mut Vec<ReviewCommand>) {
    let mut apply = false;
    ui.horizontal_wrapped(|ui| {
        for chip in CHIPS {
            let text = match &state.list {
                Some(list) => format!("{} ({})", chip_label(chip), chip_count(list, chip)),
                None => chip_label(chip).to_owned(),
            };
            let mut rich = RichText::new(text);
            if chip == Some(DecisionFilter::Pending) {
                rich = rich.strong();
            }
            let r = choice(ui, state.filters.decision == chip, rich);
            if r.clicked() && state.filters.decision != chip {
                state.filters.decision = chip;
                apply = true;
            }
        }
    });
    ui.horizontal_wrapped(|ui| {
        let enter = |r: &egui::Response, ui: &Ui| {
            r.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter))
        };
        let l = ui.label("Search");
        let r = ui
            .add(
                TextEdit::singleline(&mut state.filters.text)
                    .hint_text("Incident or patient name")
                    .desired_width(280.0),
            )
            .labelled_by(l.id);
        apply |= enter(&r, ui);
        let l = ui.label("From");
        let r = ui
            .add(
                TextEdit::singleline(&mut state.filters.from_date)
                    .hint_text("DD/MM/YYYY")
                    .desired_width(150.0),
            )
            .labelled_by(l.id);
        apply |= enter(&r, ui);
        let l = ui.label("To");
        let r = ui
            .add(
                TextEdit::singleline(&mut state.filters.to_date)
                    .hint_text("DD/MM/YYYY")
                    .desired_width(150.0),
            )
            .labelled_by(l.id);
        apply |= enter(&r, ui);
        let l = ui.label("NEWS2 at or above");
        let selected = state
            .filters
            .min_news2
            .map_or_else(|| "Any".to_owned(), |n| n.to_string());
        let before = state.filters.min_news2;
        egui::ComboBox::from_id_salt("review-min-news2")
            .selected_text(selected)
            .width(90.0)
            .show_ui(ui, |ui| {
                ui.selectable_value(&mut state.filters.min_news2, None, "Any");
                for n in [1u8, 3, 5, 7] {
                    ui.selectable_value(&mut state.filters.min_news2, Some(n), n.to_string());
                }
            })
            .response
            .labelled_by(l.id);
        apply |= before != state.filters.min_news2;
        let destinations = state
            .list
            .as_ref()
            .map(|l| l.destinations.clone())
            .unwrap_or_default();
        if !destinations.is_empty() || state.filters.destination.is_some() {
            let l = ui.label("Destination");
            let selected = match &state.filters.destination {
                None => "Any".to_owned(),
                Some(code) => destinations
                    .iter()
                    .find(|d| &d.ods_code == code)
                    .map_or_else(|| code.clone(), |d| format!("{} ({})", d.name, d.ods_code)),
            };
            let before = state.filters.destination.clone();
            egui::ComboBox::from_id_salt("review-destination")
                .selected_text(selected)
                .width(240.0)
                .show_ui(ui, |ui| {
                    ui.selectable_value(&mut state.filters.destination, None, "Any");
                    for d in &destinations {
                        ui.selectable_value(
                            &mut state.filters.destination,
                            Some(d.ods_code.clone()),
                            format!("{} ({})", d.name, d.ods_code),
                        );
                    }
                })
                .response
                .labelled_by(l.id);
            apply |= before != state.filters.destination;
        }
        if ui.button("Apply filters").clicked() {
            apply = true;
        }
        let any = state.filters != QueueFilters::default();
        if any && ui.button("Clear filters").clicked() {
            state.filters = QueueFilters::default();
            apply = true;
        }
    });
    if apply {
        out.push(ReviewCommand::ApplyFilters);
    }
}

fn paging_ui(ui: &mut Ui, list: &ReviewList, out: &mut Vec<ReviewCommand>) {
    let pages = list.total.div_ceil(u64::from(list.page_size.max(1))).max(1);
    ui.horizontal(|ui| {
        ui.label(format!(
            "{} record{} · page {} of {pages} · newest first",
            list.total,
            if list.total == 1 { "" } else { "s" },
            list.page
        ));
        if ui
            .add_enabled(list.page > 1, egui::Button::new("Previous page"))
            .clicked()
        {
            out.push(ReviewCommand::GoToPage(list.page - 1));
        }
        if ui
            .add_enabled(u64::from(list.page) < pages, egui::Button::new("Next page"))
            .clicked()
        {
            out.push(ReviewCommand::GoToPage(list.page + 1));
        }
    });
}

fn rows_ui(
    ui: &mut Ui,
    items: &[ReviewSummary],
    opening: Option<Uuid>,
    out: &mut Vec<ReviewCommand>,
) {
    let dark = ui.visuals().dark_mode;
    let columns = RowColumns {
        when: 170.0,
        incident: 150.0,
        badges_max: 430.0,
        badges_share: 0.45,
    };
    egui::ScrollArea::vertical()
        .auto_shrink([false, false])
        .show(ui, |ui| {
            let width = ui.available_width();
            for (i, row) in items.iter().enumerate() {
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
                let news = row
                    .latest_news2
                    .map_or_else(|| "No NEWS2".to_owned(), |n| format!("NEWS2 {n}"));
                let (decision, decision_colours) = decision_badge(row.decision, dark);
                let version = format!("Version {}", row.revision);
                response.widget_info(|| {
                    egui::WidgetInfo::labeled(
                        egui::Role::Button,
                        true,
                        format!("{incident} {name} {news} {version} {decision}"),
                    )
                });
                if response.clicked() {
                    out.push(ReviewCommand::OpenRecord(row.record_id));
                }
                if !ui.is_rect_visible(rect) {
                    continue;
                }
                paint_record_row(
                    ui,
                    rect,
                    columns,
                    &RecordRow {
                        odd: i % 2 == 1,
                        highlighted: response.hovered()
                            || response.has_focus()
                            || opening == Some(row.record_id),
                        marker: row.decision.is_none().then(|| theme::info_badge().0),
                        when: crate::ui::widgets::when(row.saved_at_utc, true),
                        incident,
                        name: &format!("{name} · {}", row.device_name),
                        badges: &[
                            (&news, news2_total_colours(row.latest_news2, dark)),
                            (&version, theme::neutral_badge(dark)),
                            (decision, decision_colours),
                        ],
                    },
                );
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_are_whole_local_days_and_bad_ones_are_named() {
        let f = QueueFilters {
            from_date: "01/03/2026".into(),
            to_date: "01/03/2026".into(),
            min_news2: Some(5),
            text: "  INC-1 ".into(),
            ..QueueFilters::default()
        };
        let q = f.to_query(2).unwrap();
        let (from, to) = (q.from.unwrap(), q.to.unwrap());
        assert_eq!(
            (to - from).num_hours(),
            24,
            "one whole day (no DST change then)"
        );
        assert_eq!(q.q.as_deref(), Some("INC-1"));
        assert_eq!(q.page, Some(2));
        let bad = QueueFilters {
            from_date: "31/02/2026".into(),
            ..QueueFilters::default()
        };
        assert!(bad.to_query(1).unwrap_err().starts_with("From:"));
        let backwards = QueueFilters {
            from_date: "02/03/2026".into(),
            to_date: "01/03/2026".into(),
            ..QueueFilters::default()
        };
        assert!(backwards.to_query(1).is_err());
    }
}
