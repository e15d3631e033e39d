//! Small widgets shared by the screens: labelled fields, messages beside fields, badges.
//!
//! Every input made here carries an accessible name (its visible label, tied with
//! `labelled_by`), which is what screen readers and the kittest tests use to find it.

use egui::{Color32, Response, RichText, TextEdit, Ui};

use super::theme;
use crate::model::News2;

/// A visible label followed by a single-line text field tied to it.
pub fn text_field(ui: &mut Ui, label: &str, text: &mut String, width: f32) -> Response {
    let label_response = ui.label(label);
    ui.add(
        TextEdit::singleline(text)
            .desired_width(width)
            .min_size(egui::vec2(width.min(ui.available_width()), 0.0)),
    )
    .labelled_by(label_response.id)
}

/// A label above a multi-line field, for notes and history.
pub fn text_area(ui: &mut Ui, label: &str, text: &mut String, rows: usize) -> Response {
    let label_response = ui.label(label);
    ui.add(
        TextEdit::multiline(text)
            .desired_rows(rows)
            .desired_width(f32::INFINITY),
    )
    .labelled_by(label_response.id)
}

/// A framed pick-list button (one of several choices): visibly tappable whether or not it is
/// the selected one.
pub fn choice(ui: &mut Ui, selected: bool, text: impl Into<egui::WidgetText>) -> Response {
    ui.add(
        egui::Button::new(text)
            .selected(selected)
            .min_size(egui::vec2(
                super::theme::TOUCH_TARGET_POINTS,
                super::theme::TOUCH_TARGET_POINTS,
            )),
    )
}

/// Gives a widget an accessible name other than its visible text (for several "Now"
/// buttons, each needs its own name).
pub fn name_widget(response: &Response, kind: egui::Role, name: &str) {
    let enabled = response.enabled();
    response.widget_info(|| egui::WidgetInfo::labeled(kind, enabled, name));
}

/// A one-tap answer: a small button showing `text`, named "`field`: `text`" for screen
/// readers (and tests), so the same answer offered for two fields is told apart.
pub fn quick_pick(ui: &mut Ui, field: &str, text: &str) -> Response {
    let r = ui.add(egui::Button::new(text).min_size(egui::vec2(0.0, 36.0)));
    name_widget(&r, egui::Role::Button, &format!("{field}: {text}"));
    r
}

/// A problem with the field just before it, in the theme's error colour.
pub fn error_text(ui: &mut Ui, message: &str) -> Response {
    ui.label(
        RichText::new(message)
            .color(ui.visuals().error_fg_color)
            .strong(),
    )
}

/// A caution that does not block anything (out-of-order times, unusual values).
pub fn warning_text(ui: &mut Ui, message: &str) -> Response {
    ui.label(
        RichText::new(message)
            .color(ui.visuals().warn_fg_color)
            .strong(),
    )
}

/// A short text on a coloured background. Its text is its accessible name.
pub fn badge(ui: &mut Ui, text: &str, colours: (Color32, Color32)) -> Response {
    let (bg, fg) = colours;
    egui::Frame::new()
        .fill(bg)
        .corner_radius(6.0)
        .inner_margin(egui::Margin::symmetric(8, 3))
        .show(ui, |ui| ui.label(RichText::new(text).color(fg).strong()))
        .inner
}

/// Badge colours for a NEWS2 result: the risk colour when complete, neutral otherwise.
pub fn news2_colours(news: &News2, dark_mode: bool) -> (Color32, Color32) {
    match news {
        News2::Complete(s) => theme::risk_colours(s.risk),
        _ => theme::neutral_badge(dark_mode),
    }
}

/// The NEWS2 result as a badge ("NEWS2 5 (medium)"), in its risk colour.
pub fn news2_badge(ui: &mut Ui, news: &News2, size_points: f32) -> Response {
    let (bg, fg) = news2_colours(news, ui.visuals().dark_mode);
    egui::Frame::new()
        .fill(bg)
        .corner_radius(8.0)
        .inner_margin(egui::Margin::symmetric(12, 6))
        .show(ui, |ui| {
            ui.label(
                RichText::new(news.display())
                    .color(fg)
                    .strong()
                    .size(size_points),
            )
        })
        .inner
}

/// The patient's current NEWS2 (from the latest complete set) as a badge, with the time of
/// that set and a note of newer partial sets beside it; nothing when nothing was measured.
pub fn current_news2_badge(ui: &mut Ui, e: &crate::model::Encounter, size_points: f32) {
    let current = e.current_news2();
    let Some(news) = current.news2() else {
        return;
    };
    news2_badge(ui, &news, size_points);
    let crate::model::CurrentNews2::Scored(l) = current else {
        return;
    };
    let second: Vec<String> = l
        .newer_partial_text()
        .into_iter()
        .chain(e.news2_caveat().map(str::to_owned))
        .collect();
    // Two short lines, so the note fits a crowded bar.
    ui.scope(|ui| {
        ui.spacing_mut().item_spacing.y = 0.0;
        ui.vertical(|ui| {
            let at = format!("at {}", crate::ui::forms::clock_local(l.taken_at_utc));
            ui.label(RichText::new(at).size(13.0));
            if !second.is_empty() {
                ui.label(RichText::new(second.join(" · ")).size(13.0).weak());
            }
        });
    });
}

/// A section heading.
pub fn section_heading(ui: &mut Ui, text: &str) {
    ui.add_space(4.0);
    ui.heading(text);
    ui.add_space(2.0);
}

/// Makes a message crew-readable: first letter capitalised.
pub fn sentence(message: &str) -> String {
    let mut chars = message.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// A record time in the tablet's local time: "Today 13:06", else "26 Nov 13:06" (with the
/// year when `with_year`, for lists that reach back further).
pub fn when(at: chrono::DateTime<chrono::Utc>, with_year: bool) -> String {
    let local = at.with_timezone(&chrono::Local);
    if local.date_naive() == chrono::Local::now().date_naive() {
        format!("Today {}", local.format("%H:%M"))
    } else if with_year {
        local.format("%d %b %Y %H:%M").to_string()
    } else {
        local.format("%d %b %H:%M").to_string()
    }
}

/// Paints a badge inside a virtualised row at `left`, returning its right edge (rows are
/// painted directly, not laid out as widgets, so long lists stay cheap).
pub fn paint_badge(
    painter: &egui::Painter,
    left: f32,
    centre_y: f32,
    text: &str,
    colours: (egui::Color32, egui::Color32),
    font: &egui::FontId,
) -> f32 {
    let galley = painter.layout_no_wrap(text.to_owned(), font.clone(), colours.1);
    let size = galley.size() + egui::vec2(16.0, 8.0);
    let rect = egui::Rect::from_min_size(egui::pos2(left, centre_y - size.y / 2.0), size);
    painter.rect_filled(rect, 6.0, colours.0);
    painter.galley(rect.min + egui::vec2(8.0, 4.0), galley, colours.1);
    rect.right()
}

/// A readable column in the middle of the window, scrolling when the window is short.
pub fn centred_column<R>(ui: &mut Ui, add: impl FnOnce(&mut Ui) -> R) -> R {
    egui::ScrollArea::vertical()
        .auto_shrink([false, false])
        .show(ui, |ui| {
            let width = ui.available_width().min(560.0);
            let margin = ((ui.available_width() - width) / 2.0).max(0.0);
            ui.horizontal_top(|ui| {
                ui.add_space(margin);
                ui.vertical(|ui| {
                    ui.set_max_width(width);
                    add(ui)
                })
                .inner
            })
            .inner
        })
        .inner
}

/// Column widths of a painted record row, in points.
#[derive(Debug, Clone, Copy)]
pub struct RowColumns {
    pub when: f32,
    pub incident: f32,
    /// The badges take this much on the right at most...
    pub badges_max: f32,
    /// ...and never more than this share of the row.
    pub badges_share: f32,
}

/// What one record row shows (crew record list, supervisor queue).
#[derive(Debug)]
pub struct RecordRow<'a> {
    /// Odd rows get the faint stripe.
    pub odd: bool,
    /// Hovered, focused or being opened.
    pub highlighted: bool,
    /// A coloured bar down the left edge (returned to the crew, awaiting a decision).
    pub marker: Option<Color32>,
    pub when: String,
    /// Cut short with "…" to its column, like the name.
    pub incident: &'a str,
    /// Cut short with "…" rather than wrapped.
    pub name: &'a str,
    pub badges: &'a [(&'a str, (Color32, Color32))],
}

/// Paints a record row into `rect`. Rows are painted, not laid out as widgets, so a list of
/// 10,000 scrolls smoothly; the caller gives the row's response its accessible name.
pub fn paint_record_row(ui: &Ui, rect: egui::Rect, columns: RowColumns, row: &RecordRow<'_>) {
    use egui::{Align2, FontId, pos2, vec2};
    let body_font = FontId::proportional(19.0);
    let small_font = FontId::proportional(16.0);
    let visuals = ui.visuals();
    let text_colour = visuals.text_color();
    let painter = ui.painter_at(rect);
    if row.odd {
        painter.rect_filled(rect, 0.0, visuals.faint_bg_color);
    }
    if row.highlighted {
        painter.rect_stroke(
            rect.shrink(1.0),
            4.0,
            visuals.selection.stroke,
            egui::StrokeKind::Inside,
        );
    }
    if let Some(colour) = row.marker {
        painter.rect_filled(
            egui::Rect::from_min_size(rect.min, vec2(6.0, rect.height())),
            0.0,
            colour,
        );
    }
    let y = rect.center().y;
    let mut x = rect.left() + 14.0;
    painter.text(
        pos2(x, y),
        Align2::LEFT_CENTER,
        &row.when,
        small_font.clone(),
        visuals.weak_text_color(),
    );
    x += columns.when;
    // Cut short like the name, so a long incident number never runs into it.
    let mut job = egui::text::LayoutJob::single_section(
        row.incident.to_owned(),
        egui::TextFormat::simple(body_font.clone(), text_colour),
    );
    job.wrap = egui::text::TextWrapping::truncate_at_width((columns.incident - 12.0).max(40.0));
    let galley = painter.layout_job(job);
    painter.galley(pos2(x, y - galley.size().y / 2.0), galley, text_colour);
    x += columns.incident;
    let badges_width = columns.badges_max.min(rect.width() * columns.badges_share);
    let name_right = rect.right() - badges_width - 10.0;
    let mut job = egui::text::LayoutJob::single_section(
        row.name.to_owned(),
        egui::TextFormat::simple(body_font, text_colour),
    );
    job.wrap = egui::text::TextWrapping::truncate_at_width((name_right - x).max(40.0));
    let galley = painter.layout_job(job);
    painter.galley(pos2(x, y - galley.size().y / 2.0), galley, text_colour);
    let mut left = name_right + 10.0;
    for (text, colours) in row.badges {
        left = paint_badge(&painter, left, y, text, *colours, &small_font) + 8.0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentence_capitalises_the_first_letter_only() {
        assert_eq!(
            sentence("wrong passphrase or PIN"),
            "Wrong passphrase or PIN"
        );
        assert_eq!(sentence(""), "");
    }
}
