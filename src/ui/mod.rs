//! The eframe app: screens, widgets and theme.
//!
//! A thin [`eframe::App`]: per-frame non-UI work (receiving results of background work) runs
//! in `logic`, drawing in `ui`. Screens are functions named `*_ui` that edit only the state
//! they are given and return [`Command`]s, applied in one place ([`EprApp::apply`]). Anything
//! slow (key derivation, disk scans, the network) runs on a worker thread and reports back
//! over a channel, then asks for a repaint: the window never freezes.
//! This room never runs SQL; it reaches the store only through [`crate::store::Store`]'s
//! typed functions.

use std::path::PathBuf;
use std::sync::mpsc;

use crate::store::{EncounterSummary, ListFilter, Store, StoreError};

/// Opens the window and runs until it is closed.
pub fn run_app(data_dir: PathBuf) -> Result<(), String> {
    let options = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("Ambulance ePR")
            .with_inner_size([1180.0, 820.0])
            .with_min_inner_size([640.0, 480.0]),
        ..Default::default()
    };
    eframe::run_native(
        "Ambulance ePR",
        options,
        Box::new(move |cc| Ok(Box::new(EprApp::new(cc.egui_ctx.clone(), data_dir)))),
    )
    .map_err(|e| e.to_string())
}

/// What the current screen is.
enum Screen {
    /// No store yet: create the first user.
    FirstRun {
        user: String,
        pass: String,
        confirm: String,
    },
    /// A store exists: pick a user and enter the PIN.
    Unlock {
        users: Vec<String>,
        user: String,
        pass: String,
    },
    /// Waiting for key derivation on the worker thread.
    Working(&'static str),
    /// The store could not be opened; the file was left as it is.
    Failed(String),
    /// Unlocked: the encounter list.
    Records,
}

/// Things the screens ask for; applied in [`EprApp::apply`].
pub enum Command {
    Create { user: String, pass: String },
    Unlock { user: String, pass: String },
    Lock,
    Search(String),
}

/// A result from the worker thread.
enum Outcome {
    Opened(Result<Store, StoreError>),
}

/// The app state.
pub struct EprApp {
    ctx: egui::Context,
    data_dir: PathBuf,
    screen: Screen,
    store: Option<Store>,
    rows: Vec<EncounterSummary>,
    search: String,
    message: Option<String>,
    tx: mpsc::Sender<Outcome>,
    rx: mpsc::Receiver<Outcome>,
}

impl EprApp {
    /// The app for `data_dir`; decides between first run and unlock from the keyring alone.
    pub fn new(ctx: egui::Context, data_dir: PathBuf) -> Self {
        let (tx, rx) = mpsc::channel();
        let screen = Self::entry_screen(&data_dir);
        Self {
            ctx,
            data_dir,
            screen,
            store: None,
            rows: Vec::new(),
            search: String::new(),
            message: None,
            tx,
            rx,
        }
    }

    fn entry_screen(data_dir: &std::path::Path) -> Screen {
        match crate::store::user_names(data_dir) {
            Ok(users) => Screen::Unlock {
                user: users.first().cloned().unwrap_or_default(),
                users,
                pass: String::new(),
            },
            Err(StoreError::NotInitialised(_)) => Screen::FirstRun {
                user: String::new(),
                pass: String::new(),
                confirm: String::new(),
            },
            Err(e) => Screen::Failed(e.to_string()),
        }
    }

    fn spawn_open(
        &mut self,
        label: &'static str,
        job: impl FnOnce() -> Result<Store, StoreError> + Send + 'static,
    ) {
        let tx = self.tx.clone();
        let ctx = self.ctx.clone();
        self.screen = Screen::Working(label);
        std::thread::spawn(move || {
            let _ = tx.send(Outcome::Opened(job()));
            ctx.request_repaint();
        });
    }

    fn refresh(&mut self) {
        if let Some(store) = &self.store {
            let filter = ListFilter {
                text: Some(self.search.clone()),
                limit: Some(500),
                ..ListFilter::default()
            };
            match store.list(&filter) {
                Ok(rows) => self.rows = rows,
                Err(e) => self.message = Some(e.to_string()),
            }
        }
    }

    /// Applies one command from a screen.
    pub fn apply(&mut self, command: Command) {
        match command {
            Command::Create { user, pass } => {
                let dir = self.data_dir.clone();
                self.spawn_open("Creating the encrypted store…", move || {
                    Store::create(&dir, &user, &pass)
                });
            }
            Command::Unlock { user, pass } => {
                let dir = self.data_dir.clone();
                self.spawn_open("Unlocking…", move || {
                    Store::unlock(&dir, Some(&user), &pass)
                });
            }
            Command::Lock => {
                self.store = None;
                self.rows.clear();
                self.screen = Self::entry_screen(&self.data_dir);
            }
            Command::Search(text) => {
                self.search = text;
                self.refresh();
            }
        }
    }
}

impl eframe::App for EprApp {
    fn logic(&mut self, _ctx: &egui::Context, _frame: &mut eframe::Frame) {
        while let Ok(outcome) = self.rx.try_recv() {
            match outcome {
                Outcome::Opened(Ok(store)) => {
                    self.store = Some(store);
                    self.screen = Screen::Records;
                    self.message = None;
                    self.refresh();
                }
                Outcome::Opened(Err(e)) => {
                    self.message = Some(e.to_string());
                    self.screen = Self::entry_screen(&self.data_dir);
                }
            }
        }
    }

    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        let mut commands = Vec::new();
        egui::CentralPanel::default_margins().show(ui, |ui| {
            if let Some(m) = &self.message {
                ui.colored_label(ui.visuals().error_fg_color, m);
            }
            match &mut self.screen {
                Screen::FirstRun {
                    user,
                    pass,
                    confirm,
                } => first_run_ui(ui, user, pass, confirm, &mut commands),
                Screen::Unlock { users, user, pass } => {
                    unlock_ui(ui, users, user, pass, &mut commands)
                }
                Screen::Working(label) => {
                    ui.horizontal(|ui| {
                        ui.spinner();
                        ui.label(*label);
                    });
                }
                Screen::Failed(msg) => {
                    ui.heading("The record store could not be opened");
                    ui.label(msg.as_str());
                    ui.label(
                        "The file has been left exactly as it was. Contact your IT service desk.",
                    );
                }
                Screen::Records => records_ui(ui, &self.rows, &mut self.search, &mut commands),
            }
        });
        for c in commands {
            self.apply(c);
        }
    }
}

fn first_run_ui(
    ui: &mut egui::Ui,
    user: &mut String,
    pass: &mut String,
    confirm: &mut String,
    out: &mut Vec<Command>,
) {
    ui.heading("Set up this tablet");
    ui.label("Create the first user. The records on this tablet are encrypted with a key only your passphrase or PIN can unlock.");
    ui.add(egui::TextEdit::singleline(user).hint_text("Your name"));
    ui.add(
        egui::TextEdit::singleline(pass)
            .password(true)
            .hint_text("Passphrase or PIN"),
    );
    ui.add(
        egui::TextEdit::singleline(confirm)
            .password(true)
            .hint_text("Repeat passphrase or PIN"),
    );
    let ready = !user.trim().is_empty() && pass.chars().count() >= 4 && pass == confirm;
    if ui
        .add_enabled(ready, egui::Button::new("Create store"))
        .clicked()
    {
        out.push(Command::Create {
            user: user.trim().to_owned(),
            pass: std::mem::take(pass),
        });
        confirm.clear();
    }
}

fn unlock_ui(
    ui: &mut egui::Ui,
    users: &[String],
    user: &mut String,
    pass: &mut String,
    out: &mut Vec<Command>,
) {
    ui.heading("Unlock");
    egui::ComboBox::from_label("User")
        .selected_text(user.as_str())
        .show_ui(ui, |ui| {
            for u in users {
                ui.selectable_value(user, u.clone(), u);
            }
        });
    let response = ui.add(
        egui::TextEdit::singleline(pass)
            .password(true)
            .hint_text("Passphrase or PIN"),
    );
    let enter = response.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter));
    if ui.button("Unlock").clicked() || enter {
        out.push(Command::Unlock {
            user: user.clone(),
            pass: std::mem::take(pass),
        });
    }
}

fn records_ui(
    ui: &mut egui::Ui,
    rows: &[EncounterSummary],
    search: &mut String,
    out: &mut Vec<Command>,
) {
    ui.horizontal(|ui| {
        ui.heading("Patient records");
        if ui.button("Lock").clicked() {
            out.push(Command::Lock);
        }
    });
    let r =
        ui.add(egui::TextEdit::singleline(search).hint_text("Search name, NHS number or incident"));
    if r.changed() {
        out.push(Command::Search(search.clone()));
    }
    egui::ScrollArea::vertical().show_rows(ui, 24.0, rows.len(), |ui, range| {
        for row in rows.get(range).unwrap_or_default() {
            ui.horizontal(|ui| {
                ui.label(&row.incident_number);
                ui.label(&row.patient_name);
                ui.label(row.status.as_str());
                ui.label(&row.latest_news2_text);
                ui.label(row.sync_state.label());
            });
        }
    });
}
