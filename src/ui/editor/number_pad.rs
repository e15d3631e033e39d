//! The number pad: big number keys for a touch screen, whose own keyboard opens with letters
//! (egui and winit can ask the system for a password or terminal keyboard, not a numeric one).
//!
//! A number field offers itself with [`NumberPad::offer`] each frame. While the pad is on and
//! an offered field holds focus, the pad shows at the lower right, names the field and types
//! into it: a key becomes a keyboard event given to the field at the start of the next frame
//! ([`NumberPad::inject`]), with the field's focus given back, so the field edits exactly as
//! it would for a typed key (a selected value is replaced, Enter ends the entry).

use egui::{Event, Id, Key, Modifiers, RichText};

/// The pad's state, kept with the editor's typed text.
#[derive(Debug, Clone, Default)]
pub struct NumberPad {
    /// The crew turned it on (off by default: it covers the lower right of the screen).
    pub on: bool,
    /// The field it types into: the number field last focused, kept while the crew taps the
    /// pad (which takes focus from the field).
    target: Option<(Id, String)>,
    /// The fields offered this frame, in the order drawn, for "Next".
    fields: Vec<(Id, String)>,
    /// Keys pressed, for the field at the start of the next frame.
    pending: Vec<Event>,
    /// Whether "on" has been taken from the app (the last record's choice) yet.
    carried: bool,
}

impl NumberPad {
    /// Carries "on" between records: a new editor takes the app's choice once; after that
    /// the app follows the crew's choice here.
    pub fn carry(&mut self, app_on: &mut bool) {
        if self.carried {
            *app_on = self.on;
        } else {
            self.on = *app_on;
            self.carried = true;
        }
    }

    /// Start of a frame: gives the keys pressed last frame to the field.
    pub fn inject(&mut self, ctx: &egui::Context) {
        if self.pending.is_empty() {
            return;
        }
        let events = std::mem::take(&mut self.pending);
        ctx.input_mut(|i| i.events.extend(events));
    }

    /// A number field labelled `label` offers itself to the pad.
    pub fn offer(&mut self, response: &egui::Response, label: &str) {
        self.offer_id(response.id, label, response.has_focus());
    }

    /// As [`Self::offer`], for a field known by its id and whether it holds focus.
    pub fn offer_id(&mut self, id: Id, label: &str, focused: bool) {
        self.fields.push((id, label.to_owned()));
        if self.on && focused {
            self.target = Some((id, label.to_owned()));
        }
    }

    /// End of a frame: draws the pad while it has a field, and takes its keys.
    pub fn ui(&mut self, ctx: &egui::Context) {
        let fields = std::mem::take(&mut self.fields);
        if !self.on {
            self.target = None;
            return;
        }
        if let Some(focused) = ctx.memory(|m| m.focused())
            && !fields.iter().any(|(id, _)| *id == focused)
        {
            // Typing elsewhere (a name, a note): the pad goes.
            self.target = None;
        }
        let Some((target, label)) = self.target.clone() else {
            return;
        };
        let Some(position) = fields.iter().position(|(id, _)| *id == target) else {
            // The field is no longer drawn (another section, oxygen switched to air).
            self.target = None;
            return;
        };
        let mut pressed = None;
        egui::Area::new(Id::unique("number-pad"))
            .order(egui::Order::Foreground)
            // Above the status bar; "Hide" puts it away.
            .anchor(egui::Align2::RIGHT_BOTTOM, egui::vec2(-16.0, -64.0))
            .show(ctx, |ui| {
                egui::Frame::popup(ui.style()).show(ui, |ui| {
                    ui.label(RichText::new(format!("Number pad: {label}")).strong());
                    pressed = keys_ui(ui);
                });
            });
        let Some(key) = pressed else {
            return;
        };
        let mut focus = Some(target);
        match key {
            PadKey::Char(c) => self.pending.push(Event::Text(c.to_string())),
            PadKey::Backspace => self.pending.push(key_event(Key::Backspace)),
            PadKey::Enter => {
                // The field takes Enter (ending its entry; in the observation row, adding the
                // set) and the pad goes until a number field is chosen again.
                self.pending.push(key_event(Key::Enter));
                self.target = None;
            }
            PadKey::Next => {
                let (id, next) = fields[(position + 1) % fields.len()].clone();
                self.target = Some((id, next));
                focus = Some(id);
            }
            PadKey::Hide => {
                self.target = None;
                focus = None;
            }
        }
        if let Some(id) = focus {
            ctx.memory_mut(|m| m.request_focus(id));
        }
    }
}

/// "Number pad", on or off, where number fields are typed.
pub fn toggle_ui(ui: &mut egui::Ui, pad: &mut NumberPad) {
    let r = crate::ui::widgets::choice(ui, pad.on, "Number pad")
        .on_hover_text("Number fields open with a pad of big number keys");
    if r.clicked() {
        pad.on = !pad.on;
        pad.target = None;
    }
}

fn key_event(key: Key) -> Event {
    Event::Key {
        key,
        physical_key: None,
        pressed: true,
        repeat: false,
        modifiers: Modifiers::NONE,
    }
}

/// A key of the pad.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PadKey {
    Char(char),
    Backspace,
    Enter,
    Next,
    Hide,
}

/// The keys, 64×52 points; returns the one tapped.
fn keys_ui(ui: &mut egui::Ui) -> Option<PadKey> {
    let mut pressed = None;
    let size = egui::vec2(64.0, 52.0);
    let font = egui::FontId::proportional(24.0);
    egui::Grid::new("number-pad-keys")
        .spacing([6.0, 6.0])
        .show(ui, |ui| {
            let rows: [[(&str, &str, PadKey); 3]; 4] = [
                [
                    ("1", "Pad 1", PadKey::Char('1')),
                    ("2", "Pad 2", PadKey::Char('2')),
                    ("3", "Pad 3", PadKey::Char('3')),
                ],
                [
                    ("4", "Pad 4", PadKey::Char('4')),
                    ("5", "Pad 5", PadKey::Char('5')),
                    ("6", "Pad 6", PadKey::Char('6')),
                ],
                [
                    ("7", "Pad 7", PadKey::Char('7')),
                    ("8", "Pad 8", PadKey::Char('8')),
                    ("9", "Pad 9", PadKey::Char('9')),
                ],
                [
                    (".", "Pad point", PadKey::Char('.')),
                    ("0", "Pad 0", PadKey::Char('0')),
                    ("Del", "Pad delete", PadKey::Backspace),
                ],
            ];
            for row in rows {
                for (text, name, key) in row {
                    let r = ui.add(
                        egui::Button::new(RichText::new(text).font(font.clone())).min_size(size),
                    );
                    super::name_widget(&r, egui::Role::Button, name);
                    if r.clicked() {
                        pressed = Some(key);
                    }
                }
                ui.end_row();
            }
        });
    ui.horizontal(|ui| {
        for (text, key) in [
            ("Next field", PadKey::Next),
            ("Enter", PadKey::Enter),
            ("Hide", PadKey::Hide),
        ] {
            let r = ui.add(egui::Button::new(text).min_size(egui::vec2(0.0, 44.0)));
            super::name_widget(
                &r,
                egui::Role::Button,
                &format!("Pad {}", text.to_lowercase()),
            );
            if r.clicked() {
                pressed = Some(key);
            }
        }
    });
    pressed
}
