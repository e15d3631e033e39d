//! Look and feel for a tablet in an ambulance: large text, 44 px touch targets, light and dark
//! themes with strong contrast, and the NEWS2 risk colours.
//!
//! Owns only styling; it knows nothing about records or the store.

use egui::{Color32, FontFamily, FontId, Stroke, TextStyle, Theme};

use crate::model::RiskBand;

/// The smallest touch target, in points (WCAG 2.5.5 and NHS guidance use 44 px).
pub const TOUCH_TARGET_POINTS: f32 = 44.0;

/// Which theme the crew chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThemeChoice {
    Light,
    Dark,
}

impl ThemeChoice {
    /// The other theme, for the switch.
    pub fn toggled(self) -> Self {
        match self {
            ThemeChoice::Light => ThemeChoice::Dark,
            ThemeChoice::Dark => ThemeChoice::Light,
        }
    }

    /// The label of the switch that selects the other theme.
    pub fn switch_label(self) -> &'static str {
        match self {
            ThemeChoice::Light => "Dark theme",
            ThemeChoice::Dark => "Light theme",
        }
    }

    fn egui(self) -> Theme {
        match self {
            ThemeChoice::Light => Theme::Light,
            ThemeChoice::Dark => Theme::Dark,
        }
    }
}

/// Installs sizes and both themes' visuals on `ctx`, then selects `choice`.
pub fn install(ctx: &egui::Context, choice: ThemeChoice) {
    ctx.all_styles_mut(|style| {
        style.text_styles = [
            (
                TextStyle::Small,
                FontId::new(15.0, FontFamily::Proportional),
            ),
            (TextStyle::Body, FontId::new(19.0, FontFamily::Proportional)),
            (
                TextStyle::Monospace,
                FontId::new(18.0, FontFamily::Monospace),
            ),
            (
                TextStyle::Button,
                FontId::new(19.0, FontFamily::Proportional),
            ),
            (
                TextStyle::Heading,
                FontId::new(26.0, FontFamily::Proportional),
            ),
        ]
        .into();
        let spacing = &mut style.spacing;
        spacing.interact_size = egui::vec2(TOUCH_TARGET_POINTS, TOUCH_TARGET_POINTS);
        spacing.button_padding = egui::vec2(14.0, 10.0);
        spacing.item_spacing = egui::vec2(10.0, 10.0);
        spacing.icon_width = 26.0;
        spacing.icon_width_inner = 16.0;
        spacing.icon_spacing = 8.0;
        spacing.text_edit_width = 260.0;
        spacing.combo_width = 200.0;
        spacing.scroll.bar_width = 14.0;
        // Labels never steal taps meant for the row or button underneath.
        style.interaction.selectable_labels = false;
        style.interaction.tooltip_delay = 0.3;
    });
    ctx.set_visuals_of(Theme::Light, light_visuals());
    ctx.set_visuals_of(Theme::Dark, dark_visuals());
    ctx.set_theme(choice.egui());
}

/// Switches theme without touching sizes.
pub fn select(ctx: &egui::Context, choice: ThemeChoice) {
    ctx.set_theme(choice.egui());
}

fn light_visuals() -> egui::Visuals {
    let mut v = egui::Visuals::light();
    // Signed records are shown with disabled widgets: keep their text readable.
    v.disabled_alpha = 0.6;
    v.override_text_color = Some(Color32::from_gray(10));
    v.panel_fill = Color32::from_gray(246);
    v.window_fill = Color32::WHITE;
    v.extreme_bg_color = Color32::WHITE;
    v.faint_bg_color = Color32::from_gray(232);
    v.error_fg_color = Color32::from_rgb(176, 0, 32);
    v.warn_fg_color = Color32::from_rgb(140, 70, 0);
    v.hyperlink_color = Color32::from_rgb(0, 70, 160);
    let edge = Stroke::new(1.5, Color32::from_gray(90));
    v.widgets.inactive.bg_stroke = edge;
    v.widgets.inactive.bg_fill = Color32::from_gray(225);
    v.widgets.inactive.weak_bg_fill = Color32::from_gray(225);
    v.widgets.hovered.bg_stroke = Stroke::new(2.0, Color32::from_gray(30));
    v.widgets.noninteractive.bg_stroke = Stroke::new(1.0, Color32::from_gray(170));
    // Selected items keep dark text (the text colour is fixed), so the fill is a light blue.
    v.selection.bg_fill = Color32::from_rgb(173, 208, 250);
    v.selection.stroke = Stroke::new(2.0, Color32::from_rgb(0, 60, 140));
    v
}

fn dark_visuals() -> egui::Visuals {
    let mut v = egui::Visuals::dark();
    v.disabled_alpha = 0.6;
    v.override_text_color = Some(Color32::from_gray(245));
    v.panel_fill = Color32::from_gray(18);
    v.window_fill = Color32::from_gray(28);
    v.extreme_bg_color = Color32::from_gray(6);
    v.faint_bg_color = Color32::from_gray(34);
    v.error_fg_color = Color32::from_rgb(255, 120, 120);
    v.warn_fg_color = Color32::from_rgb(255, 200, 90);
    v.hyperlink_color = Color32::from_rgb(130, 190, 255);
    let edge = Stroke::new(1.5, Color32::from_gray(170));
    v.widgets.inactive.bg_stroke = edge;
    v.widgets.inactive.bg_fill = Color32::from_gray(52);
    v.widgets.inactive.weak_bg_fill = Color32::from_gray(52);
    v.widgets.hovered.bg_stroke = Stroke::new(2.0, Color32::from_gray(235));
    v.widgets.noninteractive.bg_stroke = Stroke::new(1.0, Color32::from_gray(90));
    // Selected items keep light text, so the fill is a dark blue.
    v.selection.bg_fill = Color32::from_rgb(20, 70, 140);
    v.selection.stroke = Stroke::new(2.0, Color32::from_rgb(150, 200, 255));
    v
}

/// Background and text colour for a NEWS2 risk band (RCP Chart 2 colours, kept readable).
pub fn risk_colours(risk: RiskBand) -> (Color32, Color32) {
    match risk {
        RiskBand::Low => (Color32::from_rgb(46, 125, 50), Color32::WHITE),
        RiskBand::LowMedium => (Color32::from_rgb(255, 214, 0), Color32::BLACK),
        RiskBand::Medium => (Color32::from_rgb(239, 108, 0), Color32::BLACK),
        RiskBand::High => (Color32::from_rgb(183, 28, 28), Color32::WHITE),
    }
}

/// Colours for a badge that carries no clinical risk (incomplete NEWS2, statuses).
pub fn neutral_badge(dark_mode: bool) -> (Color32, Color32) {
    if dark_mode {
        (Color32::from_gray(60), Color32::from_gray(245))
    } else {
        (Color32::from_gray(210), Color32::from_gray(10))
    }
}

/// Colours for a badge that asks for attention (returned, needs attention).
pub fn alert_badge() -> (Color32, Color32) {
    (Color32::from_rgb(183, 28, 28), Color32::WHITE)
}

/// Colours for a badge that says all is well (synced, approved, signed).
pub fn good_badge() -> (Color32, Color32) {
    (Color32::from_rgb(27, 94, 32), Color32::WHITE)
}

/// Colours for a badge meaning "in progress" (draft, queued).
pub fn info_badge() -> (Color32, Color32) {
    (Color32::from_rgb(13, 71, 161), Color32::WHITE)
}
