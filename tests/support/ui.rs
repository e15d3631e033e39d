//! Driving the crew app headless through egui_kittest: the real `EprApp`, its store worker
//! and real stores; no window.

use std::path::Path;
use std::time::{Duration, Instant};

use ambulance_epr::ui::{AppConfig, EprApp};
use egui_kittest::Harness;

/// The app for `dir`, 1280×800 points.
pub fn harness(dir: &Path, config: AppConfig) -> Harness<'static, EprApp> {
    let app = EprApp::new(dir.to_owned(), config);
    Harness::builder()
        .with_size([1280.0, 800.0])
        .build_ui_state(
            |ui, app: &mut EprApp| {
                app.logic_at(ui.ctx(), Instant::now());
                app.draw(ui);
            },
            app,
        )
}

/// Steps until the app is idle (store worker answered, no edit waiting, no review request or
/// sync cycle in flight) and then settles. The sync engine runs on its own; if its status
/// moves while the frames settle (a list reload, a spinner), keep waiting (bounded).
pub fn settle(h: &mut Harness<'_, EprApp>) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        h.step();
        if h.state().is_idle() && h.try_run().is_ok() && h.state().is_idle() {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no answer from the store worker, the server or the sync engine"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Steps until `done` holds (bounded); for work on other threads (network, servers).
pub fn wait_until(h: &mut Harness<'_, EprApp>, what: &str, done: impl Fn(&EprApp) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done(h.state()) {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        h.step();
        std::thread::sleep(Duration::from_millis(10));
    }
    h.step();
}
