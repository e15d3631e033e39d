//! Crew app benchmark: a store of 10,000 encounters, the real app state and store worker,
//! headless (no window, no GPU).
//!
//! Run with `cargo bench --bench ui_frames`. Reports launch to the unlock screen, unlock
//! (after key derivation) to the list drawn, search, CPU time per frame on the list and on a
//! large encounter, and resident memory. The 10,000 records are made once by a child process
//! (so their creation does not count towards this process's memory) and kept in the temp
//! directory for later runs; delete `epr-ui-bench-10k-v1` there to rebuild them.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use ambulance_epr::crypto::KdfParams;
use ambulance_epr::demo::complete_encounter;
use ambulance_epr::model::{ObservationSet, PulseBpm, RespRatePerMin};
use ambulance_epr::store::{Store, migrate};
use ambulance_epr::ui::editor::Section;
use ambulance_epr::ui::{AppConfig, Command, EprApp};
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;

const RECORDS: u32 = 10_000;
const PIN: &str = "bench 2468";
const BIG_INCIDENT: &str = "INC-LARGE-01";
const FRAMES: usize = 400;

fn data_dir() -> PathBuf {
    std::env::temp_dir().join("epr-ui-bench-10k-v1")
}

/// Child process: make the store (fast KDF: key derivation is measured by `save_path`).
fn generate(dir: &Path) {
    let start = Instant::now();
    let mut store = Store::create_with(
        dir,
        "bench",
        PIN,
        KdfParams::FAST_FOR_TESTS,
        migrate::latest_version(),
    )
    .expect("create store");
    let s = ambulance_epr::demo::add_demo_data(&mut store, RECORDS - 1, 11).expect("demo data");
    // One large encounter: 60 observation sets, many drugs and interventions.
    let mut big = complete_encounter();
    big.id = uuid::Uuid::now_v7();
    big.incident.incident_number = BIG_INCIDENT.to_owned();
    big.sign_off = None;
    let base = big.observations[0].clone();
    let t0 = chrono::Utc::now() - chrono::Duration::hours(5);
    big.observations = (0..60)
        .map(|i| {
            let mut o: ObservationSet = base.clone();
            o.taken_at_utc = t0 + chrono::Duration::minutes(5 * i);
            o.pulse_bpm = PulseBpm::new(80 + (i % 40)).ok();
            o.resp_rate_per_min = RespRatePerMin::new(14 + (i % 12)).ok();
            o
        })
        .collect();
    for i in 0..20 {
        let mut d = big.drugs[0].clone();
        d.at_utc = t0 + chrono::Duration::minutes(7 * i);
        big.drugs.push(d);
        let mut it = big.interventions[0].clone();
        it.at_utc = t0 + chrono::Duration::minutes(9 * i);
        big.interventions.push(it);
    }
    big.notes = "Long note. ".repeat(400);
    store.save_draft(&big).expect("save large encounter");
    println!(
        "generated {} encounters ({} signed) + 1 large in {:.1} s",
        s.added,
        s.completed,
        start.elapsed().as_secs_f64()
    );
}

fn vm_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn harness(app: EprApp) -> Harness<'static, EprApp> {
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

fn step_until(h: &mut Harness<'_, EprApp>, what: &str, done: impl Fn(&EprApp) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !done(h.state()) {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        h.step();
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// CPU time of `frames` bare egui frames (layout + tessellation) of the app on this thread,
/// optionally scrolling a little each frame so different rows are drawn.
fn measure_frames(app: &mut EprApp, frames: usize, scroll: bool) -> (Vec<Duration>, usize) {
    let ctx = egui::Context::default();
    let mut out = Vec::with_capacity(frames);
    let mut shapes = 0;
    let screen = egui::Rect::from_min_size(egui::Pos2::ZERO, egui::vec2(1280.0, 800.0));
    for i in 0..(frames + 30) {
        let mut input = egui::RawInput {
            screen_rect: Some(screen),
            ..Default::default()
        };
        if scroll {
            input
                .events
                .push(egui::Event::PointerMoved(egui::pos2(640.0, 500.0)));
            input.events.push(egui::Event::MouseWheel {
                unit: egui::MouseWheelUnit::Point,
                delta: egui::vec2(0.0, if (i / 100) % 2 == 0 { -90.0 } else { 90.0 }),
                modifiers: egui::Modifiers::NONE,
                phase: egui::TouchPhase::Move,
                source: egui::MouseWheelSource::Wheel,
            });
        }
        let start = Instant::now();
        let output = ctx.run_ui(input, |ui| {
            app.logic_at(ui.ctx(), Instant::now());
            app.draw(ui);
        });
        shapes = output.shapes.len();
        let primitives = ctx.tessellate(output.shapes, output.pixels_per_point);
        std::hint::black_box(primitives);
        if i >= 30 {
            out.push(start.elapsed());
        }
    }
    out.sort();
    (out, shapes)
}

fn report_frames(name: &str, (frames, shapes): &(Vec<Duration>, usize)) {
    println!(
        "{name:<48} median {:>6.3} ms  p95 {:>6.3} ms  max {:>6.3} ms  ({shapes} shapes)",
        ms(percentile(frames, 0.5)),
        ms(percentile(frames, 0.95)),
        ms(percentile(frames, 1.0))
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if let Some(i) = args.iter().position(|a| a == "--generate") {
        let dir = PathBuf::from(args.get(i + 1).expect("--generate DIR"));
        generate(&dir);
        return;
    }
    // `cargo bench` passes `--bench`; `cargo test --benches` passes nothing and must stay quick.
    if !args.iter().any(|a| a == "--bench") {
        println!("ui_frames: run with `cargo bench --bench ui_frames`");
        return;
    }
    let dir = data_dir();
    if !ambulance_epr::store::exists(&dir) {
        let _ = std::fs::remove_dir_all(&dir);
        let status = std::process::Command::new(std::env::current_exe().expect("exe"))
            .arg("--generate")
            .arg(&dir)
            .status()
            .expect("run generator");
        assert!(status.success(), "generating the store failed");
    }
    println!("store: {} ({RECORDS} encounters)", dir.display());
    let rss_start = vm_kib("VmRSS:").unwrap_or(0);

    // Launch to the unlock screen: app state, store worker, first frames (fonts, layout).
    let launch = Instant::now();
    let app = EprApp::new(
        dir.clone(),
        AppConfig {
            idle_lock_after: Duration::from_secs(3600),
            ..AppConfig::default()
        },
    );
    let mut h = harness(app);
    let launch_to_unlock = launch.elapsed();
    assert_eq!(h.state().screen().name(), "unlock");
    h.get_by_label("Passphrase");

    // Unlock: key derivation on the worker, then the list query and the first list frame.
    let pass = h.get_by_label("Passphrase");
    pass.focus();
    pass.type_text(PIN);
    h.run();
    h.get_by_role_and_label(egui::accesskit::Role::Button, "Unlock")
        .click();
    let unlock_start = Instant::now();
    step_until(&mut h, "the list", |a| a.timings().list_drawn_at.is_some());
    let t = h.state().timings().clone();
    let unlocked_at = t.unlocked_at.expect("unlocked");
    let list_drawn = t.list_drawn_at.expect("list drawn");
    let unlock_to_list = list_drawn.duration_since(unlocked_at);
    let first_query = t.last_list_query.unwrap_or_default();
    let first_rows = h.state().list().all.len();
    let unlock_total = unlock_start.elapsed();

    // The whole list arrives after the first page.
    step_until(&mut h, "the whole list", |a| a.list().complete);
    let full_list = h
        .state()
        .timings()
        .full_list_at
        .expect("full list")
        .duration_since(unlocked_at);
    let full_query = h.state().timings().last_list_query.unwrap_or_default();
    let rows = h.state().list().all.len();

    // Search by name or incident: in memory, from the command to the frame that shows it.
    let mut search_wall = Vec::new();
    for text in [
        "INC-1003",
        "sample",
        "alex test",
        "zzz-no-match",
        "o'synth",
        "",
    ] {
        let start = Instant::now();
        h.state_mut().apply(Command::Search(text.to_owned()));
        h.step();
        search_wall.push(start.elapsed());
    }
    search_wall.sort();
    // Search by NHS number digits: with every summary held, in memory too (NHS numbers are in
    // the summaries); from the command to the frame that shows it.
    let mut nhs_wall = Vec::new();
    for text in ["999 000 0018", "9990001", "12345"] {
        let start = Instant::now();
        h.state_mut().apply(Command::Search(text.to_owned()));
        h.step();
        nhs_wall.push(start.elapsed());
        assert!(
            h.state().list().nhs_query_due.is_none(),
            "no store query once the list is complete"
        );
    }
    nhs_wall.sort();
    h.state_mut().apply(Command::Search(String::new()));
    h.step();

    // Frames on the list (10,000 rows held, only visible ones drawn), still and scrolling.
    let mut app = h.into_state();
    let list_still = measure_frames(&mut app, FRAMES, false);
    let list_scroll = measure_frames(&mut app, FRAMES, true);
    let rss_list = vm_kib("VmRSS:").unwrap_or(0);

    // A large encounter: open it through the worker, then draw its heaviest sections.
    let big_id = app
        .list()
        .all
        .iter()
        .find(|r| r.incident_number == BIG_INCIDENT)
        .map(|r| r.id)
        .expect("large encounter in the list");
    app.apply(Command::OpenRecord(big_id));
    let mut h = harness(app);
    step_until(&mut h, "the large encounter", |a| a.editor().is_some());
    let mut app = h.into_state();
    let mut section_frames = Vec::new();
    for section in [
        Section::Observations,
        Section::Handover,
        Section::Treatment,
        Section::Incident,
    ] {
        if let Some(ed) = app.editor_mut() {
            ed.section = section;
        }
        section_frames.push((section, measure_frames(&mut app, FRAMES / 2, false)));
    }
    let rss_end = vm_kib("VmRSS:").unwrap_or(0);
    let hwm = vm_kib("VmHWM:").unwrap_or(0);

    println!();
    println!(
        "launch to unlock screen (headless, first frames)   {:>8.1} ms",
        ms(launch_to_unlock)
    );
    println!(
        "unlock on the worker (fast test KDF)                {:>8.1} ms",
        ms(t.unlock_duration.unwrap_or_default())
    );
    println!(
        "unlocked to list drawn (first {first_rows} rows)          {:>8.1} ms (query {:.1} ms)",
        ms(unlock_to_list),
        ms(first_query)
    );
    println!(
        "click Unlock to list drawn                          {:>8.1} ms",
        ms(unlock_total)
    );
    println!(
        "unlocked to all {rows} summaries held              {:>8.1} ms (query {:.1} ms)",
        ms(full_list),
        ms(full_query)
    );
    println!(
        "search name/incident, command to frame drawn       median {:.2} ms, max {:.2} ms",
        ms(percentile(&search_wall, 0.5)),
        ms(percentile(&search_wall, 1.0)),
    );
    println!(
        "search NHS number digits, command to frame drawn   median {:.2} ms, max {:.2} ms",
        ms(percentile(&nhs_wall, 0.5)),
        ms(percentile(&nhs_wall, 1.0)),
    );
    report_frames("frame: list, still", &list_still);
    report_frames("frame: list, scrolling", &list_scroll);
    for (section, frames) in &section_frames {
        report_frames(
            &format!("frame: large encounter, {}", section.label()),
            frames,
        );
    }
    println!(
        "resident memory: start {:.1} MiB, list loaded {:.1} MiB, end {:.1} MiB, peak {:.1} MiB",
        rss_start as f64 / 1024.0,
        rss_list as f64 / 1024.0,
        rss_end as f64 / 1024.0,
        hwm as f64 / 1024.0
    );
}
