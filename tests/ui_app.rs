//! The crew app driven through its accessibility tree, as a crew member would: with the real
//! app state, a real encrypted store and the store worker thread. No window is opened.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod support;

use std::path::Path;
use std::time::{Duration, Instant};

use ambulance_epr::crypto::KdfParams;
use ambulance_epr::demo::complete_encounter;
use ambulance_epr::model::non_conveyance::{AdviceGivenTo, Consent, NonConveyanceDecision};
use ambulance_epr::model::{Decision, Milestone, RecordStatus};
use ambulance_epr::store::{FeedbackEntry, Store, migrate, store_path};
use ambulance_epr::sync::{SyncCommand, SyncHandle, SyncStatus};
use ambulance_epr::ui::editor::{EditMode, Section};
use ambulance_epr::ui::{AppConfig, EprApp};
use egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::{NodeT, Queryable};
use support::ui::{settle, wait_until};

const USER: &str = "alex";
const PIN: &str = "2468";
/// A passphrase the first-run screen accepts.
const STRONG: &str = "heron pebble maple drift";

fn fast_store(dir: &Path) -> Store {
    Store::create_with(
        dir,
        USER,
        PIN,
        KdfParams::FAST_FOR_TESTS,
        migrate::latest_version(),
    )
    .unwrap()
}

fn config() -> AppConfig {
    support::ui::fast_config()
}

fn harness_with(dir: &Path, config: AppConfig) -> Harness<'static, EprApp> {
    support::ui::harness(dir, config)
}

fn harness(dir: &Path) -> Harness<'static, EprApp> {
    harness_with(dir, config())
}

/// A new store holding `e` as a draft, unlocked, with `e` open in the editor (`e` is the
/// reference record or one made from it: its incident number opens it). The directory is
/// returned to live as long as the harness.
fn open_draft(
    e: &ambulance_epr::model::Encounter,
) -> (tempfile::TempDir, Harness<'static, EprApp>) {
    let dir = tempfile::tempdir().unwrap();
    let mut store = fast_store(dir.path());
    store.save_draft(e).unwrap();
    drop(store);
    let mut h = harness(dir.path());
    unlock(&mut h);
    h.get_by_label_contains(&e.incident.incident_number).click();
    settle(&mut h);
    (dir, h)
}

fn type_into(h: &mut Harness<'_, EprApp>, label: &str, text: &str) {
    let node = h.get_by_label(label);
    node.focus();
    node.type_text(text);
    settle(h);
}

fn click(h: &mut Harness<'_, EprApp>, label: &str) {
    h.get_by_label(label).click();
    settle(h);
}

fn click_button(h: &mut Harness<'_, EprApp>, label: &str) {
    h.get_by_role_and_label(Role::Button, label).click();
    settle(h);
}

fn unlock(h: &mut Harness<'_, EprApp>) {
    type_into(h, "Passphrase", PIN);
    click_button(h, "Unlock");
    settle(h);
    assert_eq!(h.state().screen().name(), "records");
}

fn screen(h: &Harness<'_, EprApp>) -> &'static str {
    h.state().screen().name()
}

#[test]
fn first_run_creates_the_store_then_offers_a_server_or_offline() {
    let dir = tempfile::tempdir().unwrap();
    let mut h = harness(dir.path());
    assert_eq!(screen(&h), "first run");
    type_into(&mut h, "Your name", "Sam");
    // A PIN-length or guessable passphrase is refused, saying why, and cannot be submitted.
    type_into(&mut h, "Passphrase", "1357");
    type_into(&mut h, "Repeat passphrase", "1357");
    h.get_by_label_contains("not strong enough: it must be at least 12 characters");
    assert!(
        h.get_by_role_and_label(Role::Button, "Create encrypted store")
            .accesskit_node()
            .is_disabled()
    );
    let retype = |h: &mut Harness<'_, EprApp>, label: &str, text: &str| {
        h.get_by_label(label).focus();
        h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
        h.get_by_label(label).type_text(text);
        h.run();
    };
    retype(&mut h, "Passphrase", "Password1234");
    retype(&mut h, "Repeat passphrase", "Password1234");
    h.get_by_label_contains("not strong enough: it is too easy to guess");
    assert!(
        h.get_by_role_and_label(Role::Button, "Create encrypted store")
            .accesskit_node()
            .is_disabled()
    );
    retype(&mut h, "Passphrase", STRONG);
    retype(&mut h, "Repeat passphrase", "heron pebble maple drif");
    h.get_by_label("The two entries do not match");
    assert!(h.query_by_label_contains("not strong enough").is_none());
    // Fix the repeat: select all and retype.
    retype(&mut h, "Repeat passphrase", STRONG);
    click_button(&mut h, "Create encrypted store");
    settle(&mut h);
    assert_eq!(screen(&h), "connect");
    assert!(store_path(dir.path()).exists());

    click(&mut h, "Enrol with a trust server…");
    h.get_by_label("Server address");
    h.get_by_label("Enrolment code");
    click(&mut h, "Work offline for now");
    settle(&mut h);
    assert_eq!(screen(&h), "records");
    h.get_by_label_contains("No records on this tablet yet");
}

#[test]
fn create_a_record_stamp_times_and_enter_observations() {
    let dir = tempfile::tempdir().unwrap();
    drop(fast_store(dir.path()));
    let mut h = harness(dir.path());
    unlock(&mut h);
    click(&mut h, "New record");
    assert_eq!(screen(&h), "editor");
    type_into(&mut h, "Incident number", "INC-555001");
    click(&mut h, "On scene now");
    let ed = h.state().editor().unwrap();
    let on_scene = ed.doc.incident.times.get(Milestone::OnScene).unwrap();
    assert!((chrono::Utc::now() - on_scene).num_seconds().abs() < 5);
    let shown = h.get_by_label("On scene").value().unwrap();
    assert_eq!(
        shown,
        ambulance_epr::ui::forms::clock_local(on_scene),
        "the stamped time shows in its field"
    );
    settle(&mut h);
    assert!(
        !h.state().editor().unwrap().is_new,
        "the draft was autosaved"
    );

    click(&mut h, "Observations");
    type_into(&mut h, "Resp rate /min", "22");
    type_into(&mut h, "SpO2 %", "95");
    click(&mut h, "Air");
    type_into(&mut h, "BP systolic", "120");
    type_into(&mut h, "BP diastolic", "80");
    type_into(&mut h, "Pulse /min", "95");
    click(&mut h, "ACVPU Alert");
    type_into(&mut h, "Temp °C", "38.5");
    h.key_press(egui::Key::Enter);
    h.run();
    // RR 22 → 2, SpO2 95 → 1, pulse 95 → 1, temperature 38.5 → 1: 5, medium.
    // In the section and in the editor's top bar.
    assert_eq!(h.get_all_by_label("NEWS2 5 (medium)").count(), 2);
    h.get_by_label("Urgent response threshold");
    h.get_by_label_contains("Scored: Respiration rate 2");
    assert_eq!(h.state().editor().unwrap().doc.observations.len(), 1);
    settle(&mut h);

    // Back to the list: the record is there with its NEWS2.
    click(&mut h, "Back to records");
    settle(&mut h);
    h.get_by_label_contains("INC-555001");
    h.get_by_label_contains("NEWS2 5 (medium)");
}

/// Today at `h:m` on the tablet's clock, as UTC.
fn today_at(h: u32, m: u32) -> chrono::DateTime<chrono::Utc> {
    use chrono::TimeZone;
    let today = chrono::Local::now().date_naive();
    chrono::Local
        .from_local_datetime(&today.and_hms_opt(h, m, 0).unwrap())
        .earliest()
        .unwrap()
        .with_timezone(&chrono::Utc)
}

/// Fixes the editor's wall clock on this (the UI's) thread for the rest of the test.
fn wall_clock_at(at: chrono::DateTime<chrono::Utc>) {
    ambulance_epr::ui::forms::set_wall_clock_for_this_thread(Some(at));
}

fn full_set(h: &mut Harness<'_, EprApp>) {
    type_into(h, "Resp rate /min", "22");
    type_into(h, "SpO2 %", "95");
    click(h, "Air");
    type_into(h, "BP systolic", "120");
    type_into(h, "BP diastolic", "80");
    type_into(h, "Pulse /min", "95");
    click(h, "ACVPU Alert");
    type_into(h, "Temp °C", "38.5");
}

#[test]
fn a_time_typed_just_after_midnight_is_yesterdays_and_a_future_time_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    drop(fast_store(dir.path()));
    let mut h = harness(dir.path());
    let now = today_at(0, 5);
    wall_clock_at(now);
    unlock(&mut h);
    click(&mut h, "New record");
    type_into(&mut h, "On scene", "23:55");
    let on_scene = h
        .state()
        .editor()
        .unwrap()
        .doc
        .incident
        .times
        .get(Milestone::OnScene)
        .unwrap();
    assert_eq!(
        now - on_scene,
        chrono::Duration::minutes(10),
        "yesterday 23:55"
    );

    type_into(&mut h, "At patient", "00:30");
    h.get_by_label_contains("a time cannot be in the future");
    assert!(
        h.state()
            .editor()
            .unwrap()
            .doc
            .incident
            .times
            .get(Milestone::AtPatient)
            .is_none()
    );

    // An observation set typed "23:58" is yesterday's, and stays before a later set.
    click(&mut h, "Observations");
    full_set(&mut h);
    type_into(&mut h, "Time (blank = now)", "23:58");
    click_button(&mut h, "Add observation set");
    let sets = &h.state().editor().unwrap().doc.observations;
    assert_eq!(sets.len(), 1);
    assert_eq!(now - sets[0].taken_at_utc, chrono::Duration::minutes(7));
    settle(&mut h);
}

#[test]
fn a_partial_recheck_keeps_the_latest_complete_score_in_view() {
    let dir = tempfile::tempdir().unwrap();
    drop(fast_store(dir.path()));
    let mut h = harness(dir.path());
    wall_clock_at(today_at(12, 0));
    unlock(&mut h);
    click(&mut h, "New record");
    click(&mut h, "Observations");
    full_set(&mut h);
    type_into(&mut h, "Time (blank = now)", "11:40");
    click_button(&mut h, "Add observation set");
    assert_eq!(h.get_all_by_label("NEWS2 5 (medium)").count(), 2);

    // A glucose-only recheck: no score of its own, and it hides nothing.
    type_into(&mut h, "Glucose mmol/L", "5.4");
    click_button(&mut h, "Add observation set");
    assert_eq!(h.state().editor().unwrap().doc.observations.len(), 2);
    assert_eq!(
        h.get_all_by_label("NEWS2 5 (medium)").count(),
        2,
        "the section and the top bar still show the latest complete score"
    );
    h.get_by_label_contains("Latest complete set 11:40");
    h.get_by_label_contains("1 newer partial set (12:00)");
    h.get_by_label("at 11:40");
    // No age was entered, so the top bar also says which chart scored it.
    h.get_by_label("1 newer partial set · adult chart assumed: no age recorded");
    // Air or oxygen was not carried into the recheck.
    assert_eq!(
        h.state().editor().unwrap().doc.observations[1].inspired,
        None
    );
    settle(&mut h);
}

#[test]
fn pregnancy_and_an_unknown_age_are_said_beside_the_score() {
    let dir = tempfile::tempdir().unwrap();
    drop(fast_store(dir.path()));
    let mut h = harness(dir.path());
    wall_clock_at(today_at(12, 0));
    unlock(&mut h);
    click(&mut h, "New record");
    click(&mut h, "Observations");
    full_set(&mut h);
    click_button(&mut h, "Add observation set");
    // No age yet: scored on the adult chart, and saying so (section and top bar).
    h.get_by_label("Adult chart assumed: no age recorded");
    h.get_by_label("adult chart assumed: no age recorded");

    click(&mut h, "Patient");
    type_into(&mut h, "Estimated age (years)", "29");
    click(&mut h, "Pregnant");
    type_into(&mut h, "Weeks", "32");
    let p = h.state().editor().unwrap().doc.patient.pregnancy;
    assert_eq!(
        p,
        Some(ambulance_epr::model::Pregnancy::Pregnant {
            gestation_weeks: Some(32)
        })
    );
    click(&mut h, "Observations");
    assert_eq!(
        h.get_all_by_label("NEWS2 not validated in pregnancy")
            .count(),
        2,
        "beside the score in the section and in the top bar"
    );
    assert!(
        h.query_by_label("Adult chart assumed: no age recorded")
            .is_none()
    );
    settle(&mut h);
}

#[test]
fn scale_2_is_chosen_for_one_set_with_its_clinician_and_never_rescores_earlier_sets() {
    let dir = tempfile::tempdir().unwrap();
    drop(fast_store(dir.path()));
    let mut h = harness(dir.path());
    wall_clock_at(today_at(12, 0));
    unlock(&mut h);
    click(&mut h, "New record");
    click(&mut h, "Observations");
    full_set(&mut h);
    type_into(&mut h, "Time (blank = now)", "11:40");
    click_button(&mut h, "Add observation set");
    assert_eq!(h.get_all_by_label("NEWS2 5 (medium)").count(), 2);

    // The trend chart now names the measures too: type into the entry row (first in order).
    for (label, text) in [
        ("Resp rate /min", "22"),
        ("SpO2 %", "95"),
        ("BP systolic", "120"),
        ("BP diastolic", "80"),
        ("Pulse /min", "95"),
        ("Temp °C", "38.5"),
    ] {
        let node = h.get_all_by_label(label).next().unwrap();
        node.focus();
        node.type_text(text);
        settle(&mut h);
    }
    for label in ["Air", "ACVPU Alert", "Scale 2 for this set"] {
        h.get_all_by_label(label).next().unwrap().click();
        settle(&mut h);
    }
    assert_eq!(h.get_by_label("Chosen by").value().as_deref(), Some(USER));
    click_button(&mut h, "Add observation set");
    let doc = &h.state().editor().unwrap().doc;
    let chosen = doc.observations[1].spo2_scale2.as_ref().unwrap();
    assert_eq!(chosen.chosen_by, USER);
    assert_eq!(chosen.reason, "confirmed hypercapnic respiratory failure");
    // The earlier set keeps its scale 1 score; SpO2 95 on air scores 0 on scale 2.
    assert_eq!(
        doc.news2_for(&doc.observations[0]).display(),
        "NEWS2 5 (medium)"
    );
    assert_eq!(
        h.get_all_by_label("NEWS2 4 (low, SpO2 scale 2)").count(),
        2,
        "the section and the top bar say which scale"
    );
    // Nothing carries scale 2 into the next set.
    assert!(!h.state().editor().unwrap().obs.scale2);
    settle(&mut h);
}

#[test]
fn an_intubated_patient_is_recorded_as_verbal_t_not_v1() {
    let dir = tempfile::tempdir().unwrap();
    drop(fast_store(dir.path()));
    let mut h = harness(dir.path());
    unlock(&mut h);
    click(&mut h, "New record");
    click(&mut h, "Observations");
    type_into(&mut h, "Eye", "2");
    type_into(&mut h, "Verbal", "T");
    type_into(&mut h, "Motor", "5");
    click_button(&mut h, "Add observation set");
    let gcs = h.state().editor().unwrap().doc.observations[0].gcs.unwrap();
    assert_eq!(
        gcs.verbal,
        ambulance_epr::model::GcsVerbalResponse::Intubated
    );
    assert_eq!(gcs.total(), None, "no total when a part is not testable");
    h.get_by_label("E2 VT M5");
    settle(&mut h);
}

#[test]
fn bad_input_is_shown_beside_its_field_in_plain_words() {
    let dir = tempfile::tempdir().unwrap();
    drop(fast_store(dir.path()));
    let mut h = harness(dir.path());
    wall_clock_at(today_at(12, 0));
    unlock(&mut h);
    click(&mut h, "New record");
    type_into(&mut h, "On scene", "10:12");
    type_into(&mut h, "At patient", "10:10");
    h.get_by_label("At patient is earlier than on scene: check the time");
    type_into(&mut h, "Left scene", "10:7x");
    h.get_by_label("Enter the time as HH:MM (24-hour clock)");

    click(&mut h, "Patient");
    type_into(&mut h, "NHS number", "485 777 3456");
    h.get_by_label_contains("check digit does not match");
    assert!(h.state().editor().unwrap().doc.patient.nhs_number.is_none());
    let tomorrow = (chrono::Local::now() + chrono::Duration::days(1))
        .format("%d/%m/%Y")
        .to_string();
    type_into(&mut h, "Date of birth (DD/MM/YYYY)", &tomorrow);
    h.get_by_label("Date of birth is in the future");

    click(&mut h, "Observations");
    type_into(&mut h, "Pulse /min", "600");
    h.get_by_label("Heart rate must be between 0 and 500 /min");
    click_button(&mut h, "Add observation set");
    h.get_by_label("Correct the values marked in red, then add the set");
    assert!(h.state().editor().unwrap().doc.observations.is_empty());
    settle(&mut h);
}

#[test]
fn completing_with_something_missing_jumps_to_it_then_signs() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = fast_store(dir.path());
    let mut e = complete_encounter();
    e.patient.given_name.clear();
    e.patient.family_name.clear();
    store.save_draft(&e).unwrap();
    drop(store);

    let (sync_tx, mut sync_rx) = tokio::sync::mpsc::unbounded_channel();
    let (_status_tx, status_rx) = tokio::sync::watch::channel(SyncStatus::default());
    let mut h = harness(dir.path());
    h.state_mut()
        .attach_sync(SyncHandle::new(sync_tx, status_rx));
    unlock(&mut h);
    h.get_by_label_contains("INC-000123").click();
    settle(&mut h);
    assert_eq!(screen(&h), "editor");

    click(&mut h, "Complete and sign…");
    h.get_by_label("Not ready to sign");
    click_button(&mut h, "Patient name");
    let ed = h.state().editor().unwrap();
    assert_eq!(ed.section, Section::Patient);
    assert!(ed.dialog.is_none());
    assert!(
        h.get_by_label("Given name").is_focused(),
        "the missing field has the keyboard focus"
    );
    h.get_by_label("Given name").type_text("Testy");
    h.run();
    settle(&mut h);

    click(&mut h, "Complete and sign…");
    h.get_by_label("Complete and sign");
    assert_eq!(
        h.get_by_label("Clinician name").value().as_deref(),
        Some(USER),
        "with no trust staff list, the signing clinician defaults to the unlocked user"
    );
    type_into(&mut h, "Registration (HCPC or staff number)", "PA123456");
    click_button(&mut h, "Sign record");
    settle(&mut h);
    let ed = h.state().editor().unwrap();
    assert_eq!(ed.mode, EditMode::Signed);
    assert_eq!(ed.doc.status, RecordStatus::Completed);
    assert_eq!(ed.doc.patient.given_name, "Testy");
    h.get_by_label("Signed and locked. Later changes need an amendment with a reason.");
    assert_eq!(sync_rx.try_recv().ok(), Some(SyncCommand::RecordCompleted));
    // Read-only now (still on the same section): the field cannot be edited.
    assert_eq!(h.state().editor().unwrap().section, Section::Patient);
    assert!(h.get_by_label("Given name").accesskit_node().is_disabled());
}

#[test]
fn a_non_conveyance_is_signed_only_with_its_capacity_assessment_and_the_rest_of_its_section() {
    let (_dir, mut h) = open_draft(&complete_encounter());
    click(&mut h, "Outcome and destination");
    click_button(&mut h, "Declined conveyance");
    // A refusal starts as one; the rest waits for the crew.
    let section = h
        .state()
        .editor()
        .unwrap()
        .doc
        .non_conveyance
        .clone()
        .unwrap();
    assert_eq!(
        section.decision,
        Some(NonConveyanceDecision::RefusedAgainstAdvice)
    );

    click(&mut h, "Complete and sign…");
    h.get_by_label("Not ready to sign");
    for missing in [
        "Mental capacity assessment",
        "Consent",
        "Risks explained",
        "Worsening advice and to whom",
        "Patient's or witness's signature and name, or why none",
    ] {
        h.get_by_role_and_label(Role::Button, missing);
    }
    click_button(&mut h, "Mental capacity assessment");
    assert!(
        h.get_by_label("Impairment of mind or brain: yes")
            .is_focused(),
        "the assessment's first question has the focus"
    );
    // An impairment, and unable to weigh the information: lacks capacity, so cannot refuse.
    tap_in_view(&mut h, "Impairment of mind or brain: yes");
    tap_in_view(
        &mut h,
        "Can understand the information about the decision: yes",
    );
    tap_in_view(&mut h, "Can retain that information: yes");
    tap_in_view(&mut h, "Can use or weigh it to make the decision: no");
    h.get_by_label("Lacks capacity for this decision");
    tap_in_view(&mut h, "Consent: refused advice");
    let labels: Vec<&str> = ambulance_epr::model::missing_items(&h.state().editor().unwrap().doc)
        .iter()
        .map(|m| m.label)
        .collect();
    assert!(
        labels.contains(
            &"A patient who lacks capacity cannot refuse: decide in their best interests"
        ) && labels.contains(&"Consent cannot be given or refused by a patient who lacks capacity")
            && labels.contains(&"Best-interests decision (patient lacks capacity)"),
        "{labels:?}"
    );
    // On reflection she can weigh it: capacity, and her refusal stands.
    tap_in_view(&mut h, "Can use or weigh it to make the decision: yes");
    tap_in_view(&mut h, "Can communicate the decision: yes");
    h.get_by_label("Has capacity for this decision");
    tap_in_view(&mut h, "+ Risk of deterioration");
    tap_in_view(&mut h, "Worsening advice given to: relative");
    tap_in_view(&mut h, "+ Call 999 if symptoms return or worsen");
    h.get_by_label("No signature because").scroll_to_me();
    settle(&mut h);
    type_into(&mut h, "No signature because", "Declined to sign");
    settle(&mut h);

    click(&mut h, "Complete and sign…");
    h.get_by_label("Complete and sign");
    type_into(&mut h, "Registration (HCPC or staff number)", "PA123456");
    click_button(&mut h, "Sign record");
    settle(&mut h);
    let ed = h.state().editor().unwrap();
    assert_eq!(ed.mode, EditMode::Signed);
    let section = ed.doc.non_conveyance.clone().unwrap();
    assert_eq!(section.capacity.can_weigh, Some(true));
    assert_eq!(section.consent, Some(Consent::Refused));
    assert_eq!(section.risks_explained, "Risk of deterioration");
    assert_eq!(section.worsening_advice_to, Some(AdviceGivenTo::Relative));
    assert_eq!(section.no_signature_reason, "Declined to sign");
    // Signed: the section is read-only.
    assert!(
        h.get_by_label("Impairment of mind or brain: yes")
            .accesskit_node()
            .is_disabled()
    );
}

#[test]
fn an_advance_decision_seen_asks_for_its_details_and_reaches_the_handover() {
    let (_dir, mut h) = open_draft(&complete_encounter());
    click(&mut h, "Complaint and history");
    tap_in_view(&mut h, "Advance decision document: seen");
    click(&mut h, "Complete and sign…");
    h.get_by_label("Not ready to sign");
    click_button(&mut h, "Advance decision: CPR recommendation");
    assert_eq!(h.state().editor().unwrap().section, Section::History);
    tap_in_view(&mut h, "Document type: respect");
    tap_in_view(&mut h, "CPR: not for cpr");
    h.get_by_label("Where it is kept").scroll_to_me();
    settle(&mut h);
    type_into(&mut h, "Where it is kept", "Kitchen drawer");
    h.get_by_label("Its recommendation").scroll_to_me();
    settle(&mut h);
    type_into(&mut h, "Its recommendation", "Symptom control at home");
    settle(&mut h);
    let doc = &h.state().editor().unwrap().doc;
    let missing = ambulance_epr::model::missing_items(doc);
    assert!(
        missing
            .iter()
            .all(|m| m.field != ambulance_epr::model::Field::AdvanceDecisions),
        "{missing:?}"
    );
    click(&mut h, "Handover (ATMIST)");
    h.get_by_label_contains("ReSPECT seen (Kitchen drawer): NOT for CPR; Symptom control at home");
}

#[test]
fn switching_outcome_away_and_back_keeps_what_was_typed_in_the_section() {
    let (_dir, mut h) = open_draft(&complete_encounter());
    click(&mut h, "Outcome and destination");
    click_button(&mut h, "Not conveyed");
    tap_in_view(&mut h, "Decision: see and treat");
    tap_in_view(&mut h, "Impairment of mind or brain: no");
    h.get_by_label("Conveyed to hospital").scroll_to_me();
    settle(&mut h);
    click_button(&mut h, "Conveyed to hospital");
    assert!(h.state().editor().unwrap().doc.non_conveyance.is_none());
    assert!(
        h.query_by_label("Impairment of mind or brain: no")
            .is_none()
    );
    click_button(&mut h, "Not conveyed");
    let section = h
        .state()
        .editor()
        .unwrap()
        .doc
        .non_conveyance
        .clone()
        .unwrap();
    assert_eq!(section.decision, Some(NonConveyanceDecision::SeeAndTreat));
    assert_eq!(section.capacity.impairment, Some(false));
}

#[test]
fn amend_a_signed_record_with_a_reason_and_view_the_earlier_version() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = fast_store(dir.path());
    store
        .complete_and_sign(&complete_encounter(), "Dr Test", "PA000001")
        .unwrap();
    drop(store);
    let mut h = harness(dir.path());
    unlock(&mut h);
    h.get_by_label_contains("INC-000123").click();
    settle(&mut h);
    assert_eq!(h.state().editor().unwrap().mode, EditMode::Signed);

    click(&mut h, "Amend…");
    assert_eq!(h.state().editor().unwrap().mode, EditMode::Amending);
    click(&mut h, "Notes");
    type_into(&mut h, "Clinical notes", "Corrected: pain began at 09:20.");
    settle(&mut h);

    click(&mut h, "Sign amendment…");
    assert!(
        h.get_by_role_and_label(Role::Button, "Sign amendment")
            .accesskit_node()
            .is_disabled(),
        "an amendment cannot be signed without a reason"
    );
    type_into(&mut h, "Reason for amendment", "Time of onset corrected");
    click_button(&mut h, "Sign amendment");
    settle(&mut h);
    let ed = h.state().editor().unwrap();
    assert_eq!(ed.doc.status, RecordStatus::Amended);
    assert_eq!(
        ed.doc.amendment_reason.as_deref(),
        Some("Time of onset corrected")
    );
    assert!(ed.doc.notes.contains("Corrected"));
    assert_eq!(ed.versions.len(), 2);

    click(&mut h, "Sign-off and versions");
    click(&mut h, "View version 1");
    settle(&mut h);
    let ed = h.state().editor().unwrap();
    let v = ed.viewing_version.as_ref().unwrap();
    assert_eq!(v.revision.get(), 1);
    assert_eq!(v.encounter.status, RecordStatus::Completed);
    assert!(!v.encounter.notes.contains("Corrected"));
    h.get_by_label("Viewing version 1 (read-only)");
}

#[test]
fn lock_hides_patient_data_and_unlock_returns_to_the_record() {
    let (_dir, mut h) = open_draft(&complete_encounter());
    h.get_by_label_contains("McTestface");

    click(&mut h, "Lock");
    settle(&mut h);
    assert_eq!(screen(&h), "unlock");
    assert!(h.query_by_label_contains("McTestface").is_none());
    assert!(h.query_by_label_contains("INC-000123").is_none());

    type_into(&mut h, "Passphrase", "0000");
    click_button(&mut h, "Unlock");
    settle(&mut h);
    h.get_by_label("Wrong passphrase or PIN");
    assert_eq!(screen(&h), "unlock");

    unlock_to_editor(&mut h);
    h.get_by_label_contains("McTestface");
}

fn unlock_to_editor(h: &mut Harness<'_, EprApp>) {
    type_into(h, "Passphrase", PIN);
    click_button(h, "Unlock");
    settle(h);
    assert_eq!(
        screen(h),
        "editor",
        "unlock reopens the record that was open"
    );
}

#[test]
fn idle_lock_after_the_configured_time_keeps_sync_attached() {
    let dir = tempfile::tempdir().unwrap();
    drop(fast_store(dir.path()));
    let mut h = harness_with(
        dir.path(),
        AppConfig {
            idle_lock_after: Duration::from_millis(300),
            ..config()
        },
    );
    let (sync_tx, _sync_rx) = tokio::sync::mpsc::unbounded_channel();
    let (_status_tx, status_rx) = tokio::sync::watch::channel(SyncStatus::default());
    h.state_mut()
        .attach_sync(SyncHandle::new(sync_tx, status_rx));
    unlock(&mut h);
    support::ui::advance(Duration::from_millis(299));
    h.run();
    assert_eq!(
        screen(&h),
        "records",
        "not locked before the idle time is up"
    );
    support::ui::advance(Duration::from_millis(1));
    h.run();
    assert_eq!(screen(&h), "unlock", "locked once the idle time is up");
    h.get_by_label_contains("without use");
    assert!(h.state().sync_handle().is_some(), "sync keeps running");
    assert!(h.state().is_unlocked().eq(&false));
}

#[test]
fn unlock_runs_key_derivation_off_the_ui_thread() {
    let dir = tempfile::tempdir().unwrap();
    // The real interactive cost (64 MiB Argon2id), so derivation takes a noticeable time.
    drop(
        Store::create_with(
            dir.path(),
            USER,
            PIN,
            KdfParams::INTERACTIVE,
            migrate::latest_version(),
        )
        .unwrap(),
    );
    let mut h = harness(dir.path());
    type_into(&mut h, "Passphrase", PIN);
    h.get_by_role_and_label(Role::Button, "Unlock").click();
    let start = Instant::now();
    let mut slowest = Duration::ZERO;
    let mut frames = 0;
    while !h.state().is_unlocked() {
        let frame = Instant::now();
        h.step();
        slowest = slowest.max(frame.elapsed());
        frames += 1;
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "unlock never finished"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    let total = start.elapsed();
    let derivation = h.state().timings().unlock_duration.unwrap();
    assert!(frames > 3, "frames kept coming while unlocking ({frames})");
    assert!(
        slowest * 4 < derivation,
        "a frame took {slowest:?} while key derivation took {derivation:?} (total {total:?})"
    );
}

#[test]
fn a_store_that_cannot_be_read_gets_a_clear_screen_and_is_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    drop(fast_store(dir.path()));
    let path = store_path(dir.path());
    let garbage: Vec<u8> = (0..8192u32).map(|i| (i * 7 % 251) as u8).collect();
    std::fs::write(&path, &garbage).unwrap();
    let mut h = harness(dir.path());
    type_into(&mut h, "Passphrase", PIN);
    click_button(&mut h, "Unlock");
    settle(&mut h);
    assert_eq!(screen(&h), "failed");
    h.get_by_label("The record store could not be opened");
    h.get_by_label_contains("left exactly as it was");
    assert_eq!(std::fs::read(&path).unwrap(), garbage);
}

#[test]
fn returned_records_are_easy_to_find_and_show_the_comment() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = fast_store(dir.path());
    ambulance_epr::demo::add_demo_data(&mut store, 12, 3).unwrap();
    let receipt = store
        .complete_and_sign(&complete_encounter(), "Dr Test", "PA000001")
        .unwrap();
    store
        .apply_feedback(
            &[FeedbackEntry {
                cursor: 1,
                record_id: receipt.record_id,
                revision: receipt.revision,
                decision: Decision::Returned,
                comment: "Please add the time of the second set of observations".into(),
                decided_by: "Supervisor Test".into(),
                decided_at_utc: chrono::Utc::now(),
            }],
            1,
        )
        .unwrap();
    drop(store);
    let mut h = harness(dir.path());
    unlock(&mut h);
    assert_eq!(h.state().list().matches.len(), 13);
    click(&mut h, "Returned (1)");
    assert_eq!(h.state().list().visible.len(), 1);
    h.get_by_label_contains("INC-000123").click();
    settle(&mut h);
    h.get_by_label("Returned by a supervisor");
    // In the banner and in the feedback history.
    assert_eq!(
        h.get_all_by_label_contains("Please add the time of the second set")
            .count(),
        2
    );

    // Search by NHS number with spaces.
    click(&mut h, "Back to records");
    settle(&mut h);
    click(&mut h, "All (13)");
    type_into(&mut h, "Search", "mctest");
    assert_eq!(
        h.state().list().visible.len(),
        1,
        "name search is immediate"
    );
    let node = h.get_by_label("Search");
    node.focus();
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
    h.get_by_label("Search").type_text("999 000 0018");
    settle(&mut h);
    assert_eq!(
        h.state().list().visible.len(),
        1,
        "NHS number found by the store"
    );
    h.get_by_label_contains("INC-000123");
}

/// The UI room reaches the store only through the worker's typed calls: no SQL, no rusqlite,
/// and key derivation (create/unlock) only on the worker.
#[test]
fn the_ui_room_runs_no_sql_and_derives_keys_only_on_the_worker() {
    fn files(dir: &Path, out: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).unwrap() {
            let p = entry.unwrap().path();
            if p.is_dir() {
                files(&p, out);
            } else if p.extension().is_some_and(|e| e == "rs") {
                out.push(p);
            }
        }
    }
    let mut all = Vec::new();
    files(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src/ui"),
        &mut all,
    );
    assert!(all.len() > 5);
    for p in all {
        let text = std::fs::read_to_string(&p).unwrap();
        let name = p.display().to_string();
        assert!(!text.contains("rusqlite::"), "{name} uses rusqlite");
        assert!(!text.contains("use rusqlite"), "{name} imports rusqlite");
        for sql in ["SELECT ", "INSERT ", "UPDATE ", "DELETE FROM", "PRAGMA "] {
            assert!(!text.contains(sql), "{name} contains SQL ({sql})");
        }
        if !name.ends_with("worker.rs") {
            for call in ["Store::unlock", "Store::create"] {
                assert!(
                    !text.contains(call),
                    "{name} calls {call} outside the worker"
                );
            }
        }
    }
}

#[test]
fn an_amendment_started_by_mistake_can_be_discarded() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = fast_store(dir.path());
    let e = complete_encounter();
    store.complete_and_sign(&e, "Dr Test", "PA000001").unwrap();
    drop(store);
    let mut h = harness(dir.path());
    unlock(&mut h);
    h.get_by_label_contains("INC-000123").click();
    settle(&mut h);
    click(&mut h, "Amend…");
    click(&mut h, "Notes");
    type_into(&mut h, "Clinical notes", " Typed on the wrong record.");
    settle(&mut h);
    click(&mut h, "Discard amendment…");
    click(&mut h, "Discard changes");
    settle(&mut h);
    let ed = h.state().editor().unwrap();
    assert_eq!(ed.mode, EditMode::Signed);
    assert_eq!(
        ed.doc.notes, e.notes,
        "the signed record is shown unchanged"
    );
    assert!(ed.amendment_draft.is_none());
    drop(h);
    let store = Store::unlock(dir.path(), None, PIN).unwrap();
    assert_eq!(store.amendment_draft(e.id).unwrap(), None);
    assert_eq!(store.versions(e.id).unwrap().len(), 1);
    let actions: Vec<String> = store
        .audit_for(e.id)
        .unwrap()
        .into_iter()
        .map(|a| a.action)
        .collect();
    assert!(
        actions.contains(&"amendment_discarded".to_owned()),
        "{actions:?}"
    );
}

/// Scrolls a widget into view, then taps it (a tap lands only on what is on screen).
fn click_in_view(h: &mut Harness<'_, EprApp>, label: &str) {
    h.get_by_label(label).scroll_to_me();
    settle(h);
    h.get_by_label(label).click_accesskit();
    settle(h);
}

#[test]
fn removing_a_set_or_a_drug_asks_first_and_is_audited() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = fast_store(dir.path());
    let e = complete_encounter();
    store.save_draft(&e).unwrap();
    drop(store);
    let mut h = harness(dir.path());
    unlock(&mut h);
    h.get_by_label_contains("INC-000123").click();
    settle(&mut h);
    let sets = e.observations.len();
    let first = ambulance_epr::ui::forms::clock_local(e.observations_by_time()[0].taken_at_utc);

    click(&mut h, "Observations");
    click_in_view(&mut h, &format!("Remove set taken {first}"));
    // Nothing is removed by one tap: the crew is asked, and "Keep it" keeps it.
    assert_eq!(h.state().editor().unwrap().doc.observations.len(), sets);
    assert!(h.state().editor().unwrap().obs.removing.is_some(), "asked");
    h.get_by_label_contains(&format!("Remove the set taken {first} from the record?"));
    click_in_view(&mut h, "Keep it");
    assert_eq!(h.state().editor().unwrap().doc.observations.len(), sets);
    assert!(h.state().editor().unwrap().obs.removing.is_none());
    click_in_view(&mut h, &format!("Remove set taken {first}"));
    click_in_view(&mut h, &format!("Confirm removing the set taken {first}"));
    assert_eq!(h.state().editor().unwrap().doc.observations.len(), sets - 1);

    click(&mut h, "Interventions and drugs");
    click_in_view(&mut h, "Remove drug 1");
    assert_eq!(h.state().editor().unwrap().doc.drugs.len(), e.drugs.len());
    click_in_view(&mut h, "Remove the drug");
    assert_eq!(
        h.state().editor().unwrap().doc.drugs.len(),
        e.drugs.len() - 1
    );
    settle(&mut h);
    drop(h);

    let store = Store::unlock(dir.path(), None, PIN).unwrap();
    let saved = store.get(e.id).unwrap();
    assert_eq!(saved.observations.len(), sets - 1);
    assert_eq!(saved.drugs.len(), e.drugs.len() - 1);
    let actions: Vec<String> = store
        .audit_for(e.id)
        .unwrap()
        .into_iter()
        .map(|a| a.action)
        .collect();
    for removed in ["observation_set_removed", "drug_removed"] {
        assert!(actions.contains(&removed.to_owned()), "{actions:?}");
    }
}

#[test]
fn values_typed_but_not_added_survive_leaving_the_record_and_the_lock() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = fast_store(dir.path());
    let e = complete_encounter();
    store.save_draft(&e).unwrap();
    drop(store);
    let mut h = harness(dir.path());
    unlock(&mut h);
    h.get_by_label_contains("INC-000123").click();
    settle(&mut h);
    click(&mut h, "Observations");
    type_into(&mut h, "BP diastolic", "88");
    click(&mut h, "Interventions and drugs");
    type_into(&mut h, "Dose", "7.5");

    // Back to the list and in again: still there, and the crew is told.
    click(&mut h, "Back to records");
    h.get_by_label_contains("INC-000123").click();
    settle(&mut h);
    h.get_by_label("What you typed but had not added yet is still here.");
    assert_eq!(h.state().editor().unwrap().obs.diastolic, "88");
    assert_eq!(h.state().editor().unwrap().forms.drug.dose, "7.5");

    // Locked (as the idle lock does) and unlocked: the record comes back with them.
    click_button(&mut h, "Lock");
    assert_eq!(screen(&h), "unlock");
    type_into(&mut h, "Passphrase", PIN);
    click_button(&mut h, "Unlock");
    settle(&mut h);
    assert_eq!(screen(&h), "editor");
    assert_eq!(h.state().editor().unwrap().obs.diastolic, "88");
    assert_eq!(h.state().editor().unwrap().forms.drug.dose, "7.5");
    // Nothing was added to the record by keeping them.
    assert_eq!(
        h.state().editor().unwrap().doc.observations.len(),
        e.observations.len()
    );
}

#[test]
fn the_theme_and_idle_time_chosen_are_remembered() {
    use ambulance_epr::ui::theme::ThemeChoice;
    let dir = tempfile::tempdir().unwrap();
    drop(fast_store(dir.path()));
    let mut h = harness_with(dir.path(), AppConfig::default());
    assert_eq!(h.state().theme(), ThemeChoice::Light);
    click_button(&mut h, "Dark theme");
    assert_eq!(h.state().theme(), ThemeChoice::Dark);
    unlock(&mut h);
    h.state_mut().apply(ambulance_epr::ui::Command::SetIdleLock(
        Duration::from_secs(600),
    ));
    settle(&mut h);
    drop(h);
    let h = harness_with(dir.path(), AppConfig::default());
    assert_eq!(
        h.state().theme(),
        ThemeChoice::Dark,
        "the night-shift choice survives a restart"
    );
    assert_eq!(h.state().idle_lock_after(), Duration::from_secs(600));
}

/// Scrolls a control into view (the editor scrolls on a 800-point screen), then taps it.
fn tap_in_view(h: &mut Harness<'_, EprApp>, label: &str) {
    h.get_by_label(label).scroll_to_me();
    settle(h);
    click(h, label);
}

#[test]
fn a_recorded_observation_set_is_corrected_in_place_keeping_its_time() {
    let dir = tempfile::tempdir().unwrap();
    drop(fast_store(dir.path()));
    let mut h = harness(dir.path());
    unlock(&mut h);
    click(&mut h, "New record");
    click(&mut h, "Observations");
    type_into(&mut h, "Resp rate /min", "16");
    type_into(&mut h, "Pulse /min", "18");
    tap_in_view(&mut h, "Add observation set");
    // 18 /min is unusual: asked, confirmed (the crew meant 81).
    tap_in_view(&mut h, "Confirm and add");
    let first = h.state().editor().unwrap().doc.observations[0].clone();
    let taken = ambulance_epr::ui::forms::clock_local(first.taken_at_utc);
    let correct = format!("Correct set taken {taken}");

    // Something typed for a new set is never overwritten by loading a set to correct.
    type_into(&mut h, "SpO2 %", "97");
    tap_in_view(&mut h, &correct);
    h.get_by_label("Add or clear the new set first, then choose the set to correct");
    assert_eq!(
        h.get_by_role_and_label(Role::TextInput, "SpO2 %")
            .value()
            .unwrap(),
        "97"
    );
    h.get_by_role_and_label(Role::TextInput, "SpO2 %")
        .scroll_to_me();
    settle(&mut h);
    h.get_by_role_and_label(Role::TextInput, "SpO2 %").focus();
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
    h.key_press(egui::Key::Backspace);
    settle(&mut h);

    // The table has its own scroll area inside the editor's: bring the table into view first.
    h.get_by_label("Trend").scroll_to_me();
    settle(&mut h);
    tap_in_view(&mut h, &correct);
    h.get_by_label(&format!("Correcting the set taken {taken}"));
    assert_eq!(
        h.get_by_role_and_label(Role::TextInput, "Pulse /min")
            .value()
            .unwrap(),
        "18"
    );
    assert_eq!(
        h.get_by_role_and_label(Role::TextInput, "Resp rate /min")
            .value()
            .unwrap(),
        "16"
    );
    h.get_by_role_and_label(Role::TextInput, "Pulse /min")
        .focus();
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
    h.get_by_role_and_label(Role::TextInput, "Pulse /min")
        .type_text("81");
    settle(&mut h);
    tap_in_view(&mut h, "Save corrected set");

    let ed = h.state().editor().unwrap();
    assert_eq!(ed.doc.observations.len(), 1, "replaced, not added");
    let corrected = &ed.doc.observations[0];
    assert_eq!(corrected.pulse_bpm.unwrap().get(), 81);
    assert_eq!(corrected.resp_rate_per_min.unwrap().get(), 16);
    assert_eq!(
        corrected.taken_at_utc, first.taken_at_utc,
        "its time is kept"
    );
    assert!(
        !corrected.unusual_values_confirmed,
        "81 needs no confirming"
    );
    h.get_by_label("New set");
    // The correction is saved like any edit.
    drop(h);
    let store = Store::unlock(dir.path(), Some(USER), PIN).unwrap();
    let summaries = store.list(&Default::default()).unwrap();
    let saved = store.get(summaries[0].id).unwrap();
    assert_eq!(saved.observations.len(), 1);
    assert_eq!(saved.observations[0].pulse_bpm.unwrap().get(), 81);
}

/// A `tracing` writer into memory, so a test can read what the app logged.
#[derive(Clone, Default)]
struct LogBuffer(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for LogBuffer {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LogBuffer {
    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

#[test]
fn a_damaged_record_says_so_on_screen_and_in_the_log_without_patient_text() {
    const NAME: &str = "Zebedee Quartermaine";
    // Every thread's events (the store worker's too) land in this buffer, for this test binary.
    let logs = LogBuffer::default();
    let writer = logs.clone();
    tracing::subscriber::set_global_default(
        tracing_subscriber::fmt()
            .with_ansi(false)
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || writer.clone())
            .finish(),
    )
    .unwrap();

    let dir = tempfile::tempdir().unwrap();
    let store = fast_store(dir.path());
    let mut store = store;
    let e = complete_encounter();
    store.save_draft(&e).unwrap();
    // A document that no longer parses, whose bad value is patient text: serde's own message
    // ("unknown variant `Zebedee Quartermaine`, expected ...") would quote it.
    store
        .execute_batch_for_tests(&format!(
            "UPDATE encounters SET document = replace(document, '\"status\":\"draft\"', '\"status\":\"{NAME}\"')"
        ))
        .unwrap();
    let err = store.get(e.id).unwrap_err();
    assert!(!err.to_string().contains(NAME), "{err}");
    assert!(err.to_string().contains("line 1"), "{err}");
    drop(store);

    let mut h = harness(dir.path());
    unlock(&mut h);
    h.get_by_label_contains("INC-000123").click();
    settle(&mut h);
    assert_eq!(screen(&h), "records");
    let message = h.state().list().error.clone().unwrap();
    assert!(message.contains("damaged"), "{message}");
    assert!(!message.contains(NAME), "{message}");
    h.get_by_label_contains("The record could not be opened");
    assert!(h.query_by_label_contains("Zebedee").is_none());

    let log = logs.text();
    assert!(log.contains("store failure"), "{log}");
    assert!(log.contains("JSON data error at line 1"), "{log}");
    assert!(!log.contains("Zebedee"), "{log}");
    assert!(!log.contains("Quartermaine"), "{log}");
}

/// Every file in the data directory except the encrypted store and its WAL and
/// shared-memory files (which come and go and change with every write), with its contents.
fn files_beside_the_store(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| (p.file_name().unwrap().to_string_lossy().into_owned(), p))
        .filter(|(name, _)| !name.starts_with("epr.db"))
        .map(|(name, p)| (name, std::fs::read(&p).unwrap()))
        .collect();
    files.sort();
    files
}

#[test]
fn a_quick_pin_unlocks_after_the_idle_lock_until_five_wrong_tries_or_a_restart() {
    const QUICK: &str = "97531";
    let dir = tempfile::tempdir().unwrap();
    drop(fast_store(dir.path()));
    let idle = Duration::from_millis(300);
    let mut h = harness_with(
        dir.path(),
        AppConfig {
            idle_lock_after: idle,
            ..config()
        },
    );
    // A quick PIN must be 4 to 8 digits.
    type_into(&mut h, "Passphrase", PIN);
    type_into(
        &mut h,
        "Quick PIN for this shift (optional, 4 to 8 digits)",
        "12ab",
    );
    h.get_by_label("A quick PIN is 4 to 8 digits");
    assert!(
        h.get_by_role_and_label(Role::Button, "Unlock")
            .accesskit_node()
            .is_disabled()
    );
    let field = h.get_by_label("Quick PIN for this shift (optional, 4 to 8 digits)");
    field.focus();
    h.key_press_modifiers(egui::Modifiers::COMMAND, egui::Key::A);
    h.get_by_label("Quick PIN for this shift (optional, 4 to 8 digits)")
        .type_text(QUICK);
    h.run();
    click_button(&mut h, "Unlock");
    assert_eq!(screen(&h), "records");
    let on_disk = files_beside_the_store(dir.path());

    // The idle lock asks for the PIN, and the PIN opens the store.
    support::ui::advance(idle);
    h.run();
    assert_eq!(screen(&h), "unlock");
    assert!(h.query_by_label("Passphrase").is_none());
    type_into(&mut h, "Quick PIN", QUICK);
    click_button(&mut h, "Unlock");
    assert_eq!(screen(&h), "records");

    // Wrong PINs count down; the fifth forgets the PIN and the passphrase is needed.
    click(&mut h, "Lock");
    for left in (1..=4).rev() {
        type_into(&mut h, "Quick PIN", "00000");
        click_button(&mut h, "Unlock");
        assert_eq!(screen(&h), "unlock");
        h.get_by_label_contains(&format!("Wrong PIN: {left} more tr"));
    }
    type_into(&mut h, "Quick PIN", "00000");
    click_button(&mut h, "Unlock");
    h.get_by_label_contains("Wrong PIN too many times: unlock with your passphrase");
    assert!(h.query_by_label("Quick PIN").is_none());
    type_into(&mut h, "Passphrase", PIN);
    click_button(&mut h, "Unlock");
    assert_eq!(screen(&h), "records");
    click(&mut h, "Lock");
    assert!(
        h.query_by_label("Quick PIN").is_none(),
        "the PIN stays forgotten"
    );

    // Nothing derived from the PIN reached the disk: the keyring and every other file beside
    // the store are as they were before the PIN was used.
    assert_eq!(files_beside_the_store(dir.path()), on_disk);
    for (name, bytes) in &on_disk {
        assert!(
            !bytes.windows(QUICK.len()).any(|w| w == QUICK.as_bytes()),
            "{name} holds the PIN"
        );
    }

    // Set again, it does not survive a restart of the app.
    type_into(&mut h, "Passphrase", PIN);
    type_into(
        &mut h,
        "Quick PIN for this shift (optional, 4 to 8 digits)",
        QUICK,
    );
    click_button(&mut h, "Unlock");
    click(&mut h, "Lock");
    h.get_by_label("Quick PIN");
    drop(h);
    let h = harness(dir.path());
    assert_eq!(screen(&h), "unlock");
    h.get_by_label("Passphrase");
    assert!(h.query_by_label("Quick PIN").is_none());
}

#[test]
fn a_retiring_tablet_tells_the_crew_and_offers_no_new_record() {
    let dir = tempfile::tempdir().unwrap();
    drop(fast_store(dir.path()));
    let mut h = harness(dir.path());
    let (sync_tx, _sync_rx) = tokio::sync::mpsc::unbounded_channel();
    let (status_tx, status_rx) = tokio::sync::watch::channel(SyncStatus {
        enrolled: true,
        reachable: Some(true),
        tablet_state: ambulance_epr::store::TabletState::Retiring,
        ..SyncStatus::default()
    });
    h.state_mut()
        .attach_sync(SyncHandle::new(sync_tx, status_rx));
    unlock(&mut h);
    h.get_by_label_contains("This tablet is being retired");
    h.get_by_label_contains("tablet being retired: no new records");
    let new_record = h.get_by_role_and_label(Role::Button, "New record");
    assert!(new_record.accesskit_node().is_disabled(), "no new record");
    new_record.click();
    settle(&mut h);
    assert_eq!(screen(&h), "records", "a click on it does nothing");

    // Back in service (enrolled again): the button works.
    status_tx.send_replace(SyncStatus {
        enrolled: true,
        reachable: Some(true),
        ..SyncStatus::default()
    });
    settle(&mut h);
    assert!(
        h.query_by_label_contains("This tablet is being retired")
            .is_none()
    );
    click_button(&mut h, "New record");
    assert_eq!(screen(&h), "editor");
}

#[test]
fn picking_stroke_brings_its_section_and_an_ecg_reaches_the_handover() {
    use ambulance_epr::model::stroke::{Finding, OnsetKind};
    use ambulance_epr::model::{AssessmentPart, Field};
    let (_dir, mut h) = open_draft(&complete_encounter());
    click(&mut h, "Presentation and ECG");
    assert!(
        h.query_by_label("Face: abnormal").is_none(),
        "stroke not picked yet"
    );
    tap_in_view(&mut h, "Presentation: stroke / tia");
    click(&mut h, "Complete and sign…");
    h.get_by_label("Not ready to sign");
    click_button(&mut h, "Stroke: face");
    assert_eq!(h.state().editor().unwrap().section, Section::Assessment);
    tap_in_view(&mut h, "Face: abnormal");
    tap_in_view(&mut h, "Arms: abnormal");
    tap_in_view(&mut h, "Speech: normal");
    tap_in_view(&mut h, "Onset: witnessed onset");
    tap_in_view(&mut h, "Onset time now");
    tap_in_view(&mut h, "Stroke pathway: emergency department");
    settle(&mut h);
    let doc = &h.state().editor().unwrap().doc;
    let stroke = doc.assessment.stroke().unwrap();
    assert_eq!(stroke.face, Some(Finding::Abnormal));
    assert_eq!(stroke.onset, Some(OnsetKind::Witnessed));
    assert!(stroke.onset_utc.is_some());
    let missing = ambulance_epr::model::missing_items(doc);
    assert!(
        missing
            .iter()
            .all(|m| m.field != Field::Assessment(AssessmentPart::Stroke)),
        "{missing:?}"
    );

    // Unpicked, the section leaves the record; picked again, it comes back as it was.
    tap_in_view(&mut h, "Presentation: stroke / tia");
    assert!(h.state().editor().unwrap().doc.assessment.stroke.is_none());
    assert!(h.query_by_label("Face: abnormal").is_none());
    tap_in_view(&mut h, "Presentation: stroke / tia");
    settle(&mut h);
    let stroke = h.state().editor().unwrap().doc.assessment.stroke.clone();
    assert_eq!(stroke.and_then(|s| s.arms), Some(Finding::Abnormal));

    tap_in_view(&mut h, "Add 12-lead ECG");
    tap_in_view(&mut h, "ECG taken now");
    tap_in_view(&mut h, "Rhythm: atrial fibrillation");
    tap_in_view(&mut h, "STEMI criteria met: no");
    tap_in_view(&mut h, "Transmitted: no");
    settle(&mut h);
    let doc = &h.state().editor().unwrap().doc;
    let missing = ambulance_epr::model::missing_items(doc);
    assert!(
        missing
            .iter()
            .all(|m| !matches!(m.field, Field::Assessment(_))),
        "{missing:?}"
    );
    assert_eq!(doc.assessment.ecgs.len(), 1);
    click(&mut h, "Handover (ATMIST)");
    h.get_by_label_contains("FAST positive: face, arm");
    h.get_by_label_contains("atrial fibrillation, no STEMI");
    h.get_by_label_contains("Onset ");
}

#[test]
fn an_arrest_is_recorded_with_one_tap_shocks_and_reaches_the_handover() {
    use ambulance_epr::model::arrest::ArrestEnd;
    use ambulance_epr::model::{AssessmentPart, Field};
    let (_dir, mut h) = open_draft(&complete_encounter());
    click(&mut h, "Presentation and ECG");
    tap_in_view(&mut h, "Presentation: cardiac arrest");
    tap_in_view(&mut h, "Witnessed: bystander witnessed");
    tap_in_view(&mut h, "Bystander CPR: yes");
    tap_in_view(&mut h, "Arrest ended: rosc");
    for time in ["Collapse now", "CPR started now", "ROSC now"] {
        tap_in_view(&mut h, time);
    }
    tap_in_view(&mut h, "First rhythm: vf");
    tap_in_view(&mut h, "Shock 150 J now");
    tap_in_view(&mut h, "Shock 200 J now");
    tap_in_view(&mut h, "Airway: supraglottic airway");
    settle(&mut h);
    let doc = &h.state().editor().unwrap().doc;
    let arrest = doc.assessment.arrest().unwrap();
    assert_eq!(arrest.end, Some(ArrestEnd::Rosc));
    assert_eq!(
        arrest
            .shocks
            .iter()
            .map(|s| s.energy_joules)
            .collect::<Vec<_>>(),
        [150, 200]
    );
    let missing = ambulance_epr::model::missing_items(doc);
    assert!(
        missing
            .iter()
            .all(|m| m.field != Field::Assessment(AssessmentPart::Arrest)),
        "{missing:?}"
    );
    // Life extinct: CPR and rhythm are no longer asked, death verification is.
    tap_in_view(&mut h, "Arrest ended: life extinct (no resuscitation)");
    assert!(h.query_by_label("First rhythm: vf").is_none());
    h.get_by_label("Death verified now");
    tap_in_view(&mut h, "Arrest ended: rosc");
    click(&mut h, "Handover (ATMIST)");
    h.get_by_label_contains("first rhythm VF, 2 shocks, supraglottic airway, ROSC");
}

#[test]
fn a_sepsis_screen_points_out_the_red_flags_the_observations_show() {
    use ambulance_epr::model::sepsis::RedFlag;
    use ambulance_epr::model::{AssessmentPart, Field};
    let mut e = complete_encounter();
    e.observations[0].pulse_bpm = ambulance_epr::model::PulseBpm::new(134).ok();
    let (_dir, mut h) = open_draft(&e);
    click(&mut h, "Presentation and ECG");
    tap_in_view(&mut h, "Presentation: sepsis / infection");
    h.get_by_label_contains("The observations show: heart rate above 130");
    tap_in_view(&mut h, "Screened now");
    tap_in_view(&mut h, "Suspected source: urine");
    tap_in_view(&mut h, "Red flag: heart rate above 130");
    tap_in_view(&mut h, "Sepsis pathway: sepsis not likely");
    settle(&mut h);
    let doc = &h.state().editor().unwrap().doc;
    assert_eq!(
        doc.assessment.sepsis().unwrap().red_flags,
        [RedFlag::HeartRateOver130]
    );
    let sepsis_missing: Vec<_> = ambulance_epr::model::missing_items(doc)
        .into_iter()
        .filter(|m| m.field == Field::Assessment(AssessmentPart::Sepsis))
        .map(|m| m.label)
        .collect();
    assert_eq!(
        sepsis_missing,
        ["Sepsis: red flags found, so not \"sepsis not likely\""]
    );
    tap_in_view(&mut h, "Sepsis pathway: red flag sepsis: pre-alert");
    tap_in_view(&mut h, "Department pre-alerted now");
    settle(&mut h);
    let doc = &h.state().editor().unwrap().doc;
    assert!(
        ambulance_epr::model::missing_items(doc)
            .iter()
            .all(|m| m.field != Field::Assessment(AssessmentPart::Sepsis))
    );
    click(&mut h, "Handover (ATMIST)");
    h.get_by_label_contains("RED FLAGS: heart rate above 130");
}

#[test]
fn injuries_are_added_by_region_and_type_and_a_tourniquet_asks_for_its_time() {
    use ambulance_epr::model::trauma::{BodyRegion, InjuryKind};
    use ambulance_epr::model::{AssessmentPart, Field};
    let (_dir, mut h) = open_draft(&complete_encounter());
    click(&mut h, "Presentation and ECG");
    tap_in_view(&mut h, "Presentation: trauma");
    tap_in_view(&mut h, "Mechanism: pedestrian struck");
    tap_in_view(&mut h, "Injury region: right leg");
    tap_in_view(&mut h, "Injury type: suspected fracture");
    tap_in_view(&mut h, "Add injury");
    tap_in_view(&mut h, "Catastrophic haemorrhage: yes");
    tap_in_view(&mut h, "Haemorrhage control: tourniquet");
    settle(&mut h);
    let labels: Vec<_> = ambulance_epr::model::missing_items(&h.state().editor().unwrap().doc)
        .into_iter()
        .filter(|m| m.field == Field::Assessment(AssessmentPart::Trauma))
        .map(|m| m.label)
        .collect();
    assert_eq!(
        labels,
        [
            "Trauma: tourniquet time",
            "Trauma: major trauma triage result"
        ]
    );
    tap_in_view(&mut h, "Tourniquet on now");
    tap_in_view(
        &mut h,
        "Major trauma triage: triage positive: major trauma centre",
    );
    settle(&mut h);
    let doc = &h.state().editor().unwrap().doc;
    let trauma = doc.assessment.trauma().unwrap();
    assert_eq!(trauma.injuries.len(), 1);
    assert_eq!(trauma.injuries[0].region, BodyRegion::RightLeg);
    assert_eq!(trauma.injuries[0].kind, InjuryKind::SuspectedFracture);
    assert!(
        ambulance_epr::model::missing_items(doc)
            .iter()
            .all(|m| m.field != Field::Assessment(AssessmentPart::Trauma))
    );
    click(&mut h, "Handover (ATMIST)");
    h.get_by_label_contains("CATASTROPHIC HAEMORRHAGE, tourniquet on at");
}

#[test]
fn a_safeguarding_concern_asks_for_its_referral_and_consent_before_signing() {
    use ambulance_epr::model::Field;
    use ambulance_epr::model::safeguarding::{Category, ReferralConsent, Subject};
    let (_dir, mut h) = open_draft(&complete_encounter());
    click(&mut h, "Complaint and history");
    tap_in_view(&mut h, "Safeguarding concern raised");
    click(&mut h, "Complete and sign…");
    h.get_by_label("Not ready to sign");
    click_button(&mut h, "Safeguarding: referral reference");
    assert_eq!(h.state().editor().unwrap().section, Section::History);
    tap_in_view(&mut h, "Concern about: adult");
    tap_in_view(&mut h, "Category: self-neglect");
    tap_in_view(&mut h, "Trust safeguarding line");
    h.get_by_label("Referral reference").scroll_to_me();
    settle(&mut h);
    type_into(&mut h, "Referral reference", "SG-4411");
    tap_in_view(&mut h, "Consent to referral: referred without consent");
    settle(&mut h);
    let labels: Vec<_> = ambulance_epr::model::missing_items(&h.state().editor().unwrap().doc)
        .into_iter()
        .filter(|m| m.field == Field::Safeguarding)
        .map(|m| m.label)
        .collect();
    assert_eq!(labels, ["Safeguarding: why referred without consent"]);
    tap_in_view(&mut h, "Consent to referral: consent given");
    settle(&mut h);
    let doc = &h.state().editor().unwrap().doc;
    let s = &doc.history.safeguarding;
    assert_eq!(s.subject, Some(Subject::Adult));
    assert_eq!(s.category, Some(Category::SelfNeglect));
    assert_eq!(s.referred_to, "Trust safeguarding line");
    assert_eq!(s.reference, "SG-4411");
    assert_eq!(s.consent, Some(ReferralConsent::Given));
    assert!(
        ambulance_epr::model::missing_items(doc)
            .iter()
            .all(|m| m.field != Field::Safeguarding)
    );
    click(&mut h, "Handover (ATMIST)");
    h.get_by_label_contains("safeguarding concern raised and referred");
}

#[test]
fn a_childs_weight_typed_with_a_comma_is_refused_and_kept_out_of_the_record() {
    let (_dir, mut h) = open_draft(&complete_encounter());
    click(&mut h, "Presentation and ECG");
    tap_in_view(&mut h, "Presentation: paediatric");
    h.get_by_label("Weight (kg)").scroll_to_me();
    settle(&mut h);
    type_into(&mut h, "Weight (kg)", "12,5");
    settle(&mut h);
    h.get_by_label_contains("Type the weight in kilograms");
    let p = h
        .state()
        .editor()
        .unwrap()
        .doc
        .assessment
        .paediatric
        .clone();
    assert_eq!(
        p.and_then(|p| p.weight_kg),
        None,
        "nothing half-read is stored"
    );
    tap_in_view(&mut h, "Weight found by: measured");
    settle(&mut h);
    let p = h
        .state()
        .editor()
        .unwrap()
        .doc
        .assessment
        .paediatric
        .clone();
    assert_eq!(
        p.and_then(|p| p.weight_method),
        Some(ambulance_epr::model::paediatric::WeightMethod::Measured)
    );
}

#[test]
fn same_as_last_set_fills_the_vital_signs_and_the_set_says_it_was_copied() {
    let (_dir, mut h) = open_draft(&complete_encounter());
    click(&mut h, "Observations");
    tap_in_view(&mut h, "Same as last set");
    h.get_by_label_contains("Copied from the");
    assert!(
        h.query_by_label("Same as last set").is_none(),
        "offered only for an empty row"
    );
    tap_in_view(&mut h, "Add observation set");
    settle(&mut h);
    let doc = &h.state().editor().unwrap().doc;
    assert_eq!(doc.observations.len(), 3);
    let sets = doc.observations_by_time();
    let (earlier, copied) = (sets[1], sets[2]);
    assert_eq!(copied.copied_from_utc, Some(earlier.taken_at_utc));
    assert_eq!(copied.resp_rate_per_min, earlier.resp_rate_per_min);
    assert_eq!(copied.gcs, earlier.gcs);
    assert_eq!(
        copied.glucose_mmol_per_l, None,
        "glucose is measured afresh"
    );
    assert_eq!(copied.pain_score, None, "pain is asked afresh");
    h.get_by_label_contains("(copied)");
    click(&mut h, "Handover (ATMIST)");
    h.get_by_label_contains("values copied from an earlier set");
}

#[test]
fn each_section_offers_the_next_so_a_record_is_written_top_to_bottom() {
    let (_dir, mut h) = open_draft(&complete_encounter());
    assert_eq!(h.state().editor().unwrap().section, Section::Incident);
    for expected in [Section::Patient, Section::History, Section::Assessment] {
        let next = format!("Next: {}", expected.label());
        tap_in_view(&mut h, &next);
        assert_eq!(h.state().editor().unwrap().section, expected);
    }
    click(&mut h, "Sign-off and versions");
    assert!(
        h.query_by_label_contains("Next:").is_none(),
        "nothing after the last section"
    );
}

#[test]
fn pupils_capillary_refill_etco2_peak_flow_and_rhythm_are_added_with_a_set() {
    use ambulance_epr::model::ecg::EcgRhythm;
    use ambulance_epr::model::observations::PupilReaction;
    let (_dir, mut h) = open_draft(&complete_encounter());
    click(&mut h, "Observations");
    tap_in_view(
        &mut h,
        "More: pupils, capillary refill, ETCO2, peak flow, rhythm",
    );
    for (label, text) in [
        ("Pupil left mm", "3"),
        ("Pupil right mm", "6"),
        ("Capillary refill s", "3"),
        ("ETCO2 kPa", "4.6"),
        ("Peak flow L/min", "2000"),
    ] {
        h.get_by_label(label).scroll_to_me();
        settle(&mut h);
        type_into(&mut h, label, text);
    }
    settle(&mut h);
    h.get_by_label_contains("Peak flow must be between 30 and 1000 L/min");
    tap_in_view(&mut h, "Add observation set");
    assert_eq!(
        h.state().editor().unwrap().doc.observations.len(),
        2,
        "an impossible value keeps the set out"
    );
    // Take the last 0 back off.
    h.get_by_label("Peak flow L/min").focus();
    settle(&mut h);
    h.key_press(egui::Key::End);
    h.key_press(egui::Key::Backspace);
    settle(&mut h);
    tap_in_view(&mut h, "Pupils: left only reacts");
    tap_in_view(&mut h, "Monitor rhythm: atrial fibrillation");
    tap_in_view(&mut h, "Add observation set");
    settle(&mut h);
    let doc = &h.state().editor().unwrap().doc;
    assert_eq!(doc.observations.len(), 3);
    let set = doc.observations_by_time().last().copied().cloned().unwrap();
    let pupils = set.pupils.unwrap();
    assert_eq!(pupils.left_mm.map(|v| v.get()), Some(3));
    assert_eq!(pupils.right_mm.map(|v| v.get()), Some(6));
    assert_eq!(pupils.reaction, Some(PupilReaction::LeftOnly));
    assert_eq!(set.capillary_refill_s.map(|v| v.get()), Some(3));
    assert_eq!(set.etco2_kpa.map(|v| v.get()), Some(4.6));
    assert_eq!(set.peak_flow_l_per_min.map(|v| v.get()), Some(200));
    assert_eq!(set.rhythm, Some(EcgRhythm::AtrialFibrillation));
    click(&mut h, "Handover (ATMIST)");
    h.get_by_label_contains(
        "pupils L 3 R 6 mm, left only reacts, CRT 3 s, ETCO2 4.6 kPa, PEFR 200 L/min, atrial fibrillation",
    );
}

#[test]
fn the_standard_encounter_is_written_and_signed_within_the_interaction_budget() {
    use ambulance_epr::model::Outcome;
    use support::standard_encounter::{
        INTERACTION_BUDGET, PPCI_CENTRE, PPCI_CENTRE_ODS, tablet_mid_shift,
    };
    let dir = tempfile::tempdir().unwrap();
    tablet_mid_shift(dir.path());
    let mut h = harness(dir.path());
    unlock(&mut h);
    let count = support::standard_encounter::write_and_sign(&mut h);
    settle(&mut h);

    let ed = h.state().editor().unwrap();
    let doc = &ed.doc;
    assert!(doc.status.is_signed(), "the record was signed");
    assert_eq!(doc.incident.call_sign, "RD21", "the shift's call sign");
    assert_eq!(doc.crew.len(), 2, "the shift's crew");
    assert_eq!(doc.observations.len(), 2);
    let sets = doc.observations_by_time();
    assert!(
        sets[1].copied_from_utc.is_some(),
        "the second set says it was copied"
    );
    assert_eq!(sets[1].pulse_bpm.map(|p| p.get()), Some(88));
    assert_eq!(sets[1].systolic_mmhg.map(|p| p.get()), Some(132));
    let ecg = &doc.assessment.ecgs[0];
    assert_eq!((ecg.stemi, ecg.ppci), (Some(true), Some(true)));
    assert_eq!(ecg.transmitted, Some(true), "the one tap said it was sent");
    assert_eq!(ecg.transmitted_to, "PPCI centre (cath lab)");
    let drugs: Vec<_> = doc.drugs.iter().map(|d| d.drug.as_str()).collect();
    assert_eq!(drugs, ["Aspirin", "Glyceryl trinitrate (GTN)"]);
    let from_formulary: Vec<_> = doc
        .drugs
        .iter()
        .map(|d| d.formulary_id.as_deref())
        .collect();
    assert_eq!(from_formulary, [Some("aspirin"), Some("gtn")]);
    assert_eq!(
        doc.outcome,
        Some(Outcome::ConveyedTo {
            hospital: PPCI_CENTRE.to_owned(),
            ods_code: Some(PPCI_CENTRE_ODS.to_owned()),
        })
    );
    println!(
        "standard encounter: {} taps + {} keystrokes = {}",
        count.taps,
        count.keystrokes,
        count.interactions()
    );
    assert!(
        count.interactions() <= INTERACTION_BUDGET,
        "{} interactions ({count:?}), over the budget of {INTERACTION_BUDGET}",
        count.interactions()
    );
}

#[test]
fn the_number_pad_types_into_the_field_last_tapped_and_moves_to_the_next() {
    let (_dir, mut h) = open_draft(&complete_encounter());
    click(&mut h, "Observations");
    tap_in_view(&mut h, "Number pad");
    tap_field(&mut h, "Resp rate /min");
    h.get_by_label_contains("Number pad: Resp rate /min");
    click(&mut h, "Pad 1");
    click(&mut h, "Pad 8");
    assert_eq!(h.state().editor().unwrap().obs.resp_rate, "18");
    click(&mut h, "Pad next field");
    h.get_by_label_contains("Number pad: SpO2 %");
    for key in ["Pad 9", "Pad 7", "Pad delete", "Pad 6"] {
        click(&mut h, key);
    }
    assert_eq!(h.state().editor().unwrap().obs.spo2, "96");
    // A decimal point for temperature.
    tap_field(&mut h, "Temp °C");
    for key in ["Pad 3", "Pad 7", "Pad point", "Pad 2"] {
        click(&mut h, key);
    }
    assert_eq!(h.state().editor().unwrap().obs.temperature, "37.2");
    click(&mut h, "Pad hide");
    assert!(h.query_by_label("Pad 1").is_none());
    assert_eq!(
        h.state().editor().unwrap().obs.resp_rate,
        "18",
        "hiding the pad keeps what it typed"
    );
    // Turned off, number fields open without it.
    tap_in_view(&mut h, "Number pad");
    tap_field(&mut h, "Pulse /min");
    assert!(h.query_by_label("Pad 1").is_none());
    assert!(!h.state().editor().unwrap().forms.pad.on);
    // The drug's dose takes it too, and Enter from the pad ends the entry.
    click(&mut h, "Interventions and drugs");
    tap_in_view(&mut h, "Number pad");
    tap_field(&mut h, "Dose");
    h.get_by_label_contains("Number pad: Dose");
    for key in ["Pad 1", "Pad point", "Pad 5"] {
        click(&mut h, key);
    }
    assert_eq!(h.state().editor().unwrap().forms.drug.dose, "1.5");
    click(&mut h, "Pad enter");
    assert!(h.query_by_label("Pad 1").is_none(), "Enter ended the entry");
}

/// Brings a text field into view and taps it.
fn tap_field(h: &mut Harness<'_, EprApp>, label: &str) {
    h.get_by_role_and_label(Role::TextInput, label)
        .scroll_to_me();
    settle(h);
    h.get_by_role_and_label(Role::TextInput, label).click();
    settle(h);
}

#[test]
fn a_child_under_five_gets_the_paediatric_gcs_words_and_no_adult_doses() {
    let mut e = complete_encounter();
    e.created_at_utc = chrono::Utc::now();
    e.patient.date_of_birth = Some(chrono::Local::now().date_naive() - chrono::Months::new(40));
    e.patient.estimated_age_years = None;
    let (_dir, mut h) = open_draft(&e);
    click(&mut h, "Observations");
    h.get_by_label("Child under 5: paediatric GCS");
    h.get_by_label("V4 less than usual ability, irritable cry");
    h.get_by_label("M5 withdraws to touch");
    click(&mut h, "Interventions and drugs");
    assert!(
        h.query_by_label("Fill: Aspirin 300 milligrams oral")
            .is_none()
    );
    h.get_by_label_contains("A child: no doses are offered");

    // An adult: the usual doses fill the form, and nothing is added until the crew adds it.
    let (_dir, mut h) = open_draft(&complete_encounter());
    click(&mut h, "Observations");
    assert!(h.query_by_label("Child under 5: paediatric GCS").is_none());
    click(&mut h, "Interventions and drugs");
    let before = h.state().editor().unwrap().doc.drugs.len();
    tap_in_view(
        &mut h,
        "Fill: Glyceryl trinitrate (GTN) 400 micrograms sublingual",
    );
    let form = &h.state().editor().unwrap().forms.drug;
    assert_eq!(
        (form.formulary_id.as_deref(), form.dose.as_str()),
        (Some("gtn"), "400")
    );
    assert_eq!(form.route, "Sublingual");
    assert_eq!(h.state().editor().unwrap().doc.drugs.len(), before);
}

#[test]
fn breathing_difficulty_and_mental_health_bring_their_sections_and_sign_off_checks() {
    use ambulance_epr::model::breathing::{LifeThreat, Speech};
    use ambulance_epr::model::mental_health::LegalStatus;
    use ambulance_epr::model::{AssessmentPart, Field};
    let (_dir, mut h) = open_draft(&complete_encounter());
    click(&mut h, "Presentation and ECG");
    assert!(h.query_by_label("Wheeze: yes").is_none(), "not picked yet");
    tap_in_view(&mut h, "Presentation: breathing difficulty");
    tap_in_view(&mut h, "Presentation: mental health");
    click(&mut h, "Complete and sign…");
    h.get_by_label("Not ready to sign");
    click_button(&mut h, "Breathing: speech in one breath");
    assert_eq!(h.state().editor().unwrap().section, Section::Assessment);
    for tap in [
        "Speech in one breath: single words",
        "Wheeze: yes",
        "Accessory muscle use: yes",
        "Known condition: asthma",
        "Life-threatening: exhaustion",
        "Thoughts of suicide: no",
        "Self-harm in this episode: yes",
        "Risk to others: no",
        "Mental Health Act status: section 136",
        "Mental health service contacted: crisis team",
    ] {
        tap_in_view(&mut h, tap);
    }
    h.get_by_label("Life-threatening features: the handover says them before the other findings");
    h.get_by_label("A risk is present: said in the handover");
    settle(&mut h);
    let doc = &h.state().editor().unwrap().doc;
    let b = doc.assessment.breathing().unwrap();
    assert_eq!(b.speech, Some(Speech::SingleWords));
    assert_eq!(b.life_threats, [LifeThreat::Exhaustion]);
    let m = doc.assessment.mental_health().unwrap();
    assert_eq!(m.legal_status, Some(LegalStatus::Section136));
    let missing = ambulance_epr::model::missing_items(doc);
    assert!(
        missing.iter().all(|m| !matches!(
            m.field,
            Field::Assessment(AssessmentPart::Breathing | AssessmentPart::MentalHealth)
        )),
        "{missing:?}"
    );
    click(&mut h, "Handover (ATMIST)");
    h.get_by_label_contains("LIFE-THREATENING: exhaustion. Breathing: speaking in single words");
    h.get_by_label_contains("Mental health: self-harm; no thoughts of suicide, no risk to others");
}

/// Opens the list `combo` and picks `item` from it.
fn choose(h: &mut Harness<'_, EprApp>, combo: &str, item: &str) {
    h.get_by_label(combo).scroll_to_me();
    settle(h);
    h.get_by_label(combo).click();
    settle(h);
    h.get_by_label(item).click();
    settle(h);
}

#[test]
fn a_formulary_drug_is_checked_before_it_is_added_and_a_controlled_drug_needs_its_witness() {
    let e = complete_encounter();
    let (_dir, mut h) = open_draft(&e);
    click(&mut h, "Interventions and drugs");
    h.get_by_label_contains("SAMPLE formulary");
    choose(&mut h, "Drug", "Morphine sulfate (controlled)");
    h.get_by_label_contains("Formulary: adult dose 1 to 10 milligrams");
    choose(&mut h, "Route", "IV");
    type_into(&mut h, "Dose", "50");
    click_in_view(&mut h, "Add drug");
    h.get_by_label_contains("A controlled drug needs a witness");
    choose(
        &mut h,
        "Witness",
        "Demo Technician (Emergency medical technician)",
    );
    type_into(&mut h, "Batch number", "BX12");
    type_into(&mut h, "Amount wasted", "0");
    click_in_view(&mut h, "Add drug");
    // 50 mg is outside 1 to 10: asked again, and nothing is added until the crew confirm.
    h.get_by_label_contains("Check this before it is added");
    h.get_by_label_contains("50 milligrams is outside the adult range");
    assert_eq!(h.state().editor().unwrap().doc.drugs.len(), e.drugs.len());
    click_in_view(&mut h, "Give anyway");
    let doc = &h.state().editor().unwrap().doc;
    assert_eq!(doc.drugs.len(), e.drugs.len() + 1);
    let given = doc.drugs.last().unwrap();
    assert_eq!(given.formulary_id.as_deref(), Some("morphine"));
    assert_eq!(given.unit, ambulance_epr::model::DoseUnit::Milligrams);
    assert_eq!(
        given.overrides[0].check,
        ambulance_epr::model::formulary::DoseCheck::Range
    );
    let witnessed = given.controlled.as_ref().unwrap();
    assert_eq!(
        (witnessed.witness_id.as_str(), witnessed.batch.as_str()),
        ("s-0002", "BX12")
    );
    h.get_by_label_contains("Given despite: dose outside the formulary range");

    // A drug not in the formulary is still recorded, and marked.
    choose(&mut h, "Drug", "Other (not in formulary)");
    type_into(&mut h, "Drug name", "Ondansetron");
    type_into(&mut h, "Dose", "4");
    choose(&mut h, "Unit", "milligrams");
    choose(&mut h, "Route", "IV");
    click_in_view(&mut h, "Add drug");
    let other = h
        .state()
        .editor()
        .unwrap()
        .doc
        .drugs
        .last()
        .unwrap()
        .clone();
    assert_eq!(other.formulary_id, None);
    h.get_by_label_contains("Ondansetron 4 milligrams IV (not in formulary)");
}

#[test]
fn a_drug_in_a_recorded_allergy_class_is_given_only_with_a_reason() {
    let mut e = complete_encounter();
    e.history.allergies.clear();
    let (_dir, mut h) = open_draft(&e);
    click(&mut h, "Complaint and history");
    click_in_view(&mut h, "Allergy class: penicillins");
    let history = &h.state().editor().unwrap().doc.history;
    assert_eq!(history.allergy_classes, ["penicillins"]);
    click(&mut h, "Interventions and drugs");
    choose(&mut h, "Drug", "Amoxicillin");
    type_into(&mut h, "Dose", "500");
    click_in_view(&mut h, "Add drug");
    h.get_by_label_contains("Amoxicillin is in the allergy class penicillins");
    click_in_view(&mut h, "Give anyway");
    h.get_by_label_contains("Give the reason for going on despite the allergy");
    assert_eq!(h.state().editor().unwrap().doc.drugs.len(), e.drugs.len());
    type_into(
        &mut h,
        "Reason for giving despite the allergy",
        "Discussed with the clinical hub",
    );
    click_in_view(&mut h, "Give anyway");
    let doc = &h.state().editor().unwrap().doc;
    let given = doc.drugs.last().unwrap();
    assert_eq!(given.formulary_id.as_deref(), Some("amoxicillin"));
    assert_eq!(
        given.overrides[0].check,
        ambulance_epr::model::formulary::DoseCheck::Allergy
    );
    assert_eq!(given.overrides[0].reason, "Discussed with the clinical hub");
    // The handover leads with the allergy class.
    assert!(
        ambulance_epr::model::AllergyStatus::of_record(
            &doc.history.allergies,
            &doc.history.allergy_classes
        )
        .headline()
        .contains("penicillins")
    );
}

#[test]
fn a_stroke_patient_is_offered_stroke_units_first_and_the_pick_carries_its_ods_code() {
    use ambulance_epr::model::{Outcome, Presentation};
    let mut e = complete_encounter();
    e.assessment.presentations = vec![Presentation::Stroke];
    e.outcome = Some(Outcome::ConveyedTo {
        hospital: String::new(),
        ods_code: None,
    });
    let (_dir, mut h) = open_draft(&e);
    click(&mut h, "Outcome and destination");
    h.get_by_label_contains("Destinations with hyperacute stroke unit first");
    // The first destination offered is the one with a stroke unit.
    let order: Vec<String> = h
        .query_all_by_label_contains("Destination: ")
        .map(|n| n.accesskit_node().label().unwrap_or_default())
        .collect();
    assert_eq!(
        order.first().map(String::as_str),
        Some("Destination: Sample Royal Infirmary")
    );
    assert!(order.len() >= 3, "{order:?}");
    click_in_view(&mut h, "Destination: Sample Royal Infirmary");
    assert_eq!(
        h.state().editor().unwrap().doc.outcome,
        Some(Outcome::ConveyedTo {
            hospital: "Sample Royal Infirmary".into(),
            ods_code: Some("XX1AA".into()),
        })
    );
    h.get_by_label("ODS XX1AA");
    // A name typed for somewhere not in the list keeps no code.
    let node = h.get_by_label("Destination hospital");
    node.focus();
    node.type_text(" annexe");
    settle(&mut h);
    assert_eq!(
        h.state().editor().unwrap().doc.outcome,
        Some(Outcome::ConveyedTo {
            hospital: "Sample Royal Infirmary annexe".into(),
            ods_code: None,
        })
    );
    h.get_by_label("not in the trust's list");
}

/// Gives the store a trust's reference data as if its server had delivered it (the sample's
/// content, marked as a trust's): staff names come only from a trust's own set.
fn with_trust_reference(store: &Store) {
    let mut doc: serde_json::Value =
        serde_json::from_str(ambulance_epr::model::reference::SAMPLE_JSON).unwrap();
    doc["sample"] = false.into();
    doc["trust"] = "Test Ambulance Service".into();
    let text = doc.to_string();
    assert!(
        store
            .keep_server_reference(1, &text, "checked by sync", chrono::Utc::now())
            .unwrap()
    );
}

#[test]
fn the_signed_in_user_in_the_staff_list_signs_in_their_own_name() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = fast_store(dir.path());
    with_trust_reference(&store);
    store.save_draft(&complete_encounter()).unwrap();
    drop(store);
    let mut h = harness(dir.path());
    unlock(&mut h);
    h.get_by_label_contains("INC-000123").click();
    settle(&mut h);
    click(&mut h, "Complete and sign…");
    h.get_by_label_contains("Signing as Demo Paramedic (Paramedic, PA00001)");
    assert!(h.query_by_label("Clinician name").is_none(), "not typed");
    click_button(&mut h, "Sign record");
    wait_until(&mut h, "the record is signed", |app| {
        app.editor().is_some_and(|ed| ed.mode == EditMode::Signed)
    });
    let doc = &h.state().editor().unwrap().doc;
    let signed = doc.sign_off.as_ref().unwrap();
    assert_eq!(
        (signed.clinician_name.as_str(), signed.registration.as_str()),
        ("Demo Paramedic", "PA00001")
    );

    // A user the staff list does not name is asked, and warned.
    let dir = tempfile::tempdir().unwrap();
    let mut store = Store::create_with(
        dir.path(),
        "relief",
        PIN,
        KdfParams::FAST_FOR_TESTS,
        migrate::latest_version(),
    )
    .unwrap();
    with_trust_reference(&store);
    store.save_draft(&complete_encounter()).unwrap();
    drop(store);
    let mut h = harness(dir.path());
    unlock(&mut h);
    h.get_by_label_contains("INC-000123").click();
    settle(&mut h);
    click(&mut h, "Complete and sign…");
    h.get_by_label_contains("is not in the trust's staff list");
    assert_eq!(
        h.get_by_label("Clinician name").value().as_deref(),
        Some("relief")
    );
}

#[test]
fn the_crew_sign_in_from_the_staff_list_with_their_own_secrets_and_crew_new_records() {
    const SAM: &str = "otter quarry velvet ninety";
    let dir = tempfile::tempdir().unwrap();
    let mut store = fast_store(dir.path());
    store
        .add_user("sam", SAM, KdfParams::FAST_FOR_TESTS)
        .unwrap();
    // Without a trust's staff list (the sample's never names real users) there is no
    // sign-in: the crew is entered on each record.
    drop(store);
    let mut h = harness(dir.path());
    unlock(&mut h);
    wait_until(&mut h, "the shift panel has been read", |app| {
        app.list().shift.staff.is_empty() && !app.list().shift.busy
    });
    h.get_by_label_contains("the trust's staff list has not reached this tablet");
    assert!(h.query_by_label("Sign me in").is_none());
    click_button(&mut h, "Lock");
    drop(h);
    let store =
        Store::unlock_with_policy(dir.path(), Some(USER), PIN, KdfParams::FAST_FOR_TESTS).unwrap();
    with_trust_reference(&store);
    drop(store);
    let mut h = harness(dir.path());
    unlock(&mut h);
    wait_until(&mut h, "the shift panel has the staff list", |app| {
        !app.list().shift.staff.is_empty()
    });
    h.get_by_label_contains("no one signed in");
    click_button(&mut h, "Sign me in");
    wait_until(&mut h, "alex is on the shift", |app| {
        app.list().shift.shift.members.len() == 1
    });
    h.get_by_label("Demo Paramedic (Paramedic, PA00001)");

    // Sam signs in with their own passphrase; the unlocked user's does not do.
    click_button(&mut h, "Add crew member");
    choose(
        &mut h,
        "Crew member",
        "Demo Technician (Emergency medical technician)",
    );
    type_into(&mut h, "Their passphrase on this tablet", PIN);
    click_button(&mut h, "Sign in");
    wait_until(&mut h, "the wrong passphrase is refused", |app| {
        app.list().shift.error.is_some()
    });
    h.get_by_label_contains("Wrong passphrase or PIN");
    assert_eq!(h.state().list().shift.shift.members.len(), 1);
    type_into(&mut h, "Their passphrase on this tablet", SAM);
    click_button(&mut h, "Sign in");
    wait_until(&mut h, "sam is on the shift", |app| {
        app.list().shift.shift.members.len() == 2
    });
    h.get_by_label("Demo Technician (Emergency medical technician)");

    // A new record is crewed by the shift.
    click_button(&mut h, "New record");
    let crew: Vec<String> = h
        .state()
        .editor()
        .unwrap()
        .doc
        .crew
        .iter()
        .map(|c| c.name.clone())
        .collect();
    assert_eq!(crew, ["Demo Paramedic", "Demo Technician"]);
    click(&mut h, "Back to records");

    // Kept through a lock; ended by "End shift".
    click_button(&mut h, "Lock");
    type_into(&mut h, "Passphrase", PIN);
    click_button(&mut h, "Unlock");
    wait_until(&mut h, "the shift is read back", |app| {
        app.list().shift.shift.members.len() == 2
    });
    click_button(&mut h, "End shift");
    wait_until(&mut h, "the shift has ended", |app| {
        app.list().shift.shift.members.is_empty()
    });
}

#[test]
fn an_enrolled_tablet_without_its_trusts_set_has_no_formulary_rather_than_the_samples() {
    let dir = tempfile::tempdir().unwrap();
    let mut store = fast_store(dir.path());
    store
        .set_setting(
            ambulance_epr::sync::engine::SERVER_URL,
            "https://epr.example.nhs.uk",
        )
        .unwrap();
    store.save_draft(&complete_encounter()).unwrap();
    drop(store);
    let mut h = harness(dir.path());
    unlock(&mut h);
    h.get_by_label_contains("INC-000123").click();
    settle(&mut h);
    click(&mut h, "Interventions and drugs");
    h.get_by_label_contains("No formulary on this tablet yet");
    assert!(h.query_by_label_contains("SAMPLE formulary").is_none());
    assert!(
        h.query_by_label_contains("Fill: Aspirin").is_none(),
        "no sample doses offered"
    );
    let reference = h.state().editor().unwrap().forms.reference.clone().unwrap();
    assert_eq!(
        reference.source,
        ambulance_epr::store::reference::ReferenceSource::None
    );
}
