//! The standard encounter, written through the accessibility tree as a crew would write it
//! on a tablet, counting every tap and keystroke: chest pain conveyed to a PPCI centre, with
//! incident times, patient, two observation sets, a 12-lead ECG, aspirin and GTN, outcome and
//! sign-off. The tablet already holds the shift's previous job (call sign, crew, the hospital
//! it went to), as it would mid-shift.
//!
//! Shared by the test that fails above the interaction budget (`ui_app`) and by the bench that
//! times every frame drawn while it runs (`standard_encounter`). Scrolling a section to bring
//! a field into view is not counted (it is a swipe, not a tap or a keystroke).

use std::path::Path;

use ambulance_epr::crypto::KdfParams;
use ambulance_epr::demo::complete_encounter;
use ambulance_epr::model::{CrewMember, Encounter, Outcome};
use ambulance_epr::store::{Store, migrate};
use ambulance_epr::ui::EprApp;
use egui::accesskit::Role;
use egui_kittest::Harness;
use egui_kittest::kittest::Queryable;

use super::ui::settle;

/// The most taps plus keystrokes the standard encounter may take (paper took 7 minutes; the
/// fastest published ePR pilot about 94 seconds).
pub const INTERACTION_BUDGET: u32 = 80;
/// The PPCI centre in the sample reference data, offered first for chest pain.
pub const PPCI_CENTRE: &str = "Sample Royal Infirmary";
/// Its ODS code there.
pub const PPCI_CENTRE_ODS: &str = "XX1AA";
pub const USER: &str = "alex";
pub const PIN: &str = "2468";

/// A store at `dir` holding the shift's previous job, signed.
pub fn tablet_mid_shift(dir: &Path) {
    let mut store = Store::create_with(
        dir,
        USER,
        PIN,
        KdfParams::FAST_FOR_TESTS,
        migrate::latest_version(),
    )
    .unwrap();
    let mut earlier: Encounter = complete_encounter();
    earlier.id = uuid::Uuid::now_v7();
    earlier.incident.incident_number = "INC-700001".to_owned();
    earlier.incident.call_sign = "RD21".to_owned();
    earlier.crew = vec![
        CrewMember {
            name: "Alex Morgan".to_owned(),
            role: "Paramedic".to_owned(),
            registration: "PA12345".to_owned(),
        },
        CrewMember {
            name: "Sam Lee".to_owned(),
            role: "Emergency care assistant".to_owned(),
            registration: String::new(),
        },
    ];
    earlier.outcome = Some(Outcome::ConveyedTo {
        hospital: PPCI_CENTRE.to_owned(),
        ods_code: Some(PPCI_CENTRE_ODS.to_owned()),
    });
    store
        .complete_and_sign(&earlier, "Alex Morgan", "PA12345")
        .unwrap();
}

/// Taps and keystrokes made so far.
#[derive(Debug, Default, Clone, Copy)]
pub struct Count {
    pub taps: u32,
    pub keystrokes: u32,
}

impl Count {
    pub fn interactions(self) -> u32 {
        self.taps + self.keystrokes
    }
}

struct Crew<'a, 'h> {
    h: &'a mut Harness<'h, EprApp>,
    count: Count,
}

impl Crew<'_, '_> {
    fn tap(&mut self, label: &str) {
        self.h.get_by_label(label).scroll_to_me();
        settle(self.h);
        self.h.get_by_label(label).click();
        settle(self.h);
        self.count.taps += 1;
    }

    /// Taps the field, then types `text` into it.
    fn type_in(&mut self, label: &str, text: &str) {
        self.h
            .get_by_role_and_label(Role::TextInput, label)
            .scroll_to_me();
        settle(self.h);
        self.h.get_by_role_and_label(Role::TextInput, label).click();
        settle(self.h);
        self.count.taps += 1;
        self.h
            .get_by_role_and_label(Role::TextInput, label)
            .type_text(text);
        settle(self.h);
        self.count.keystrokes += text.chars().count() as u32;
    }

    fn key(&mut self, key: egui::Key) {
        self.h.key_press(key);
        settle(self.h);
        self.count.keystrokes += 1;
    }

    fn next(&mut self, section: &str) {
        self.tap(&format!("Next: {section}"));
    }
}

/// Writes and signs the standard encounter on an unlocked app showing the records list.
pub fn write_and_sign(h: &mut Harness<'_, EprApp>) -> Count {
    let mut crew = Crew {
        h,
        count: Count::default(),
    };
    crew.tap("New record");

    // Incident: the CAD number typed, the shift's call sign and crew in one tap, three times.
    crew.type_in("Incident number", "700002");
    crew.tap("Same call sign and crew as the last record");
    crew.tap("Call connected now");
    crew.tap("On scene now");
    crew.tap("At patient now");
    crew.next("Patient");

    crew.type_in("Given name", "Ray");
    crew.type_in("Family name", "Hart");
    crew.type_in("Estimated age (years)", "64");
    crew.tap("Male");
    crew.next("Complaint and history");

    crew.tap("Presenting complaint: Chest pain");
    crew.tap("NKDA");
    crew.next("Presentation and ECG");

    crew.tap("Presentation: chest pain / acs");
    crew.tap("Add 12-lead ECG");
    crew.tap("ECG taken now");
    crew.tap("Rhythm: sinus rhythm");
    crew.tap("STEMI criteria met: yes");
    crew.tap("Primary PCI pathway: yes");
    // One tap says it was transmitted and where.
    crew.tap("Transmitted to: PPCI centre (cath lab)");
    crew.next("Observations");

    // First set: the seven NEWS2 inputs; Enter in the last field adds the set.
    crew.type_in("Resp rate /min", "20");
    crew.type_in("SpO2 %", "95");
    crew.tap("Air");
    crew.type_in("Pulse /min", "96");
    crew.type_in("BP systolic", "150");
    crew.type_in("BP diastolic", "90");
    crew.tap("ACVPU Alert");
    crew.type_in("Temp °C", "37");
    crew.key(egui::Key::Enter);
    // Second set after the GTN: the same, with the pulse and systolic changed (tapping a
    // filled number field selects its value, so typing replaces it).
    crew.tap("Same as last set");
    crew.type_in("Pulse /min", "88");
    crew.type_in("BP systolic", "132");
    crew.key(egui::Key::Enter);
    crew.next("Interventions and drugs");

    crew.tap("Fill: Aspirin 300 milligrams oral");
    crew.tap("Add drug");
    crew.tap("Fill: Glyceryl trinitrate (GTN) 400 micrograms sublingual");
    crew.tap("Add drug");
    crew.next("Outcome and destination");

    crew.tap("Conveyed to hospital");
    crew.tap(&format!("Destination: {PPCI_CENTRE}"));

    crew.tap("Complete and sign…");
    crew.tap("Sign record");
    crew.count
}
