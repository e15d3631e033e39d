//! The standard encounter (chest pain conveyed to a PPCI centre), written through the
//! accessibility tree as in the `ui_app` test, timing the app's work in every frame drawn
//! while it is written: logic and drawing on the UI thread, headless (no window, no GPU).
//!
//! Run with `cargo bench --bench standard_encounter`. Prints the interactions counted and the
//! frame times (median, 99th percentile, slowest) over several runs, each on a new store.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

#[path = "../tests/support/standard_encounter.rs"]
mod standard_encounter;
#[path = "../tests/support/ui.rs"]
#[allow(dead_code)]
mod ui;

use egui_kittest::kittest::Queryable;

const RUNS: usize = 5;

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

fn main() {
    let mut all = Vec::new();
    let mut slowest_per_run = Vec::new();
    let mut interactions = 0;
    for run in 0..RUNS {
        let dir = tempfile::tempdir().unwrap();
        standard_encounter::tablet_mid_shift(dir.path());
        let mut h = ui::harness(dir.path(), ui::fast_config());
        h.get_by_label("Passphrase").focus();
        h.get_by_label("Passphrase")
            .type_text(standard_encounter::PIN);
        ui::settle(&mut h);
        h.get_by_role_and_label(egui::accesskit::Role::Button, "Unlock")
            .click();
        ui::settle(&mut h);
        // Warm up: the first frames build fonts and layout caches.
        for _ in 0..30 {
            h.step();
        }
        ui::time_frames();
        let count = standard_encounter::write_and_sign(&mut h);
        ui::settle(&mut h);
        let mut times = ui::take_frame_times();
        assert!(
            h.state().editor().unwrap().doc.status.is_signed(),
            "the encounter was signed"
        );
        interactions = count.interactions();
        times.sort();
        let slowest = *times.last().unwrap();
        println!(
            "run {}: {} taps + {} keystrokes = {}; {} frames, median {}, p99 {}, slowest {}",
            run + 1,
            count.taps,
            count.keystrokes,
            count.interactions(),
            times.len(),
            ms(percentile(&times, 0.5)),
            ms(percentile(&times, 0.99)),
            ms(slowest)
        );
        slowest_per_run.push(slowest);
        all.extend(times);
    }
    all.sort();
    slowest_per_run.sort();
    println!(
        "all runs: {interactions} interactions (budget {}); {} frames, median {}, p99 {}, slowest {} (median of the runs' slowest {})",
        standard_encounter::INTERACTION_BUDGET,
        all.len(),
        ms(percentile(&all, 0.5)),
        ms(percentile(&all, 0.99)),
        ms(*all.last().unwrap()),
        ms(percentile(&slowest_per_run, 0.5)),
    );
}
