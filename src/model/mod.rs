//! The clinical record: encounter, patient, observations, NEWS2, GCS, NHS number, validation
//! and the handover text.
//!
//! Pure data and rules: this room uses std, serde, chrono and uuid only and never does I/O,
//! so every clinical rule can be tested in isolation and reused by the app, the server and
//! exports alike. Clinical facts come from `CLINICAL.md`; tests are written from it.

pub mod advance_decisions;
pub mod allergy;
pub mod arrest;
pub mod assessment;
pub mod breathing;
pub mod clock_time;
pub mod completion;
pub mod dose;
pub mod ecg;
pub mod encounter;
pub mod falls;
pub mod formulary;
pub mod handover;
pub mod maternity;
pub mod mental_health;
pub mod news2;
pub mod nhs_number;
pub mod non_conveyance;
pub mod observations;
pub mod paediatric;
pub mod quick_picks;
pub mod reference;
pub mod review;
pub mod revision;
pub mod safeguarding;
pub mod sepsis;
pub mod stroke;
pub mod trauma;
pub mod version;

pub use advance_decisions::AdvanceDecisions;
pub use allergy::AllergyStatus;
pub use assessment::{Assessment, AssessmentPart, Presentation};
pub use completion::{Field, MissingItem, missing_items};
pub use dose::{DoseError, DoseUnit, parse_dose};
pub use encounter::*;
pub use news2::{News2, News2Parameters, News2Score, RiskBand, Spo2Scale};
pub use nhs_number::{NhsNumber, NhsNumberError};
pub use non_conveyance::NonConveyance;
pub use observations::*;
pub use review::Decision;
pub use revision::{Revision, RevisionOutOfRange};
pub use safeguarding::Safeguarding;
pub use version::VersionMeta;
