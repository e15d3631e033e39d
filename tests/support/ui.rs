//! Driving the crew app headless through egui_kittest: the real `EprApp`, its store worker
//! and real stores; no window.
//!
//! Time is the test's: each test thread has a clock the harness gives to `logic_at`, and it
//! moves only when [`advance`] (or [`settle`], up to the app's next debounce timer) moves it.
//! Real waiting is left only for real background work (the store worker, servers).

use std::cell::{Cell, RefCell};
use std::path::Path;
use std::time::{Duration, Instant};

use ambulance_epr::ui::{AppConfig, EprApp};
use egui_kittest::Harness;

thread_local! {
    /// The time the app sees on this test thread.
    static CLOCK: Cell<Option<Instant>> = const { Cell::new(None) };
    /// How long each frame's app work took (logic and drawing), when a benchmark asks.
    static FRAME_TIMES: RefCell<Option<Vec<Duration>>> = const { RefCell::new(None) };
}

/// From now on, record how long each frame's app work (logic and drawing) takes on this
/// thread.
pub fn time_frames() {
    FRAME_TIMES.with(|f| *f.borrow_mut() = Some(Vec::new()));
}

/// The frame times recorded since [`time_frames`] or the last call.
pub fn take_frame_times() -> Vec<Duration> {
    FRAME_TIMES.with(|f| {
        f.borrow_mut()
            .as_mut()
            .map(std::mem::take)
            .unwrap_or_default()
    })
}

/// This thread's test clock (it starts at the first reading).
pub fn now() -> Instant {
    CLOCK.with(|c| {
        let t = c.get().unwrap_or_else(Instant::now);
        c.set(Some(t));
        t
    })
}

/// Moves this thread's test clock forward.
pub fn advance(by: Duration) {
    let t = now() + by;
    CLOCK.with(|c| c.set(Some(t)));
}

/// The app's settings for driving it in tests and benches: short autosave debounces and the
/// fast test key derivation.
pub fn fast_config() -> AppConfig {
    AppConfig {
        autosave_quiet: Duration::from_millis(40),
        autosave_max_wait: Duration::from_millis(120),
        kdf: ambulance_epr::crypto::KdfParams::FAST_FOR_TESTS,
        ..AppConfig::default()
    }
}

/// The app for `dir`, 1280×800 points, on this thread's test clock.
pub fn harness(dir: &Path, config: AppConfig) -> Harness<'static, EprApp> {
    let app = EprApp::new(dir.to_owned(), config);
    Harness::builder()
        .with_size([1280.0, 800.0])
        .build_ui_state(
            |ui, app: &mut EprApp| {
                let start = Instant::now();
                app.logic_at(ui.ctx(), now());
                app.draw(ui);
                let took = start.elapsed();
                FRAME_TIMES.with(|f| {
                    if let Some(times) = f.borrow_mut().as_mut() {
                        times.push(took);
                    }
                });
            },
            app,
        )
}

/// Steps until the app is idle (store worker answered, no edit waiting, no review request or
/// sync cycle in flight) and then settles. A pending debounce (autosave, NHS-number search)
/// is let run out by moving the test clock to it. The sync engine runs on its own; if its
/// status moves while the frames settle (a list reload, a spinner), keep waiting (bounded).
pub fn settle(h: &mut Harness<'_, EprApp>) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if let Some(due) = h.state().next_timer_due() {
            advance(due.saturating_duration_since(now()));
        }
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
