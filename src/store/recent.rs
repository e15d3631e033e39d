//! What the crew's recent records offer as one-tap answers on the record in hand: the call
//! sign and crew of the shift. Read from the encrypted store by the worker when a record
//! opens; kept nowhere else. (Destinations come from the trust's reference data.)

use chrono::{DateTime, Duration, Utc};
use uuid::Uuid;

use super::{ListFilter, Result, Store};
use crate::model::CrewMember;

/// A shift's length: a call sign and crew from a record worked on longer ago than this are
/// from another shift and are not offered.
pub const SHIFT_HOURS: i64 = 14;
/// How many of the newest records are read.
const RECORDS_READ: u32 = 30;

/// One-tap answers from the crew's recent records.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RecentChoices {
    /// The call sign of the newest record worked on this shift, with that record's crew.
    pub call_sign: Option<String>,
    pub crew: Vec<CrewMember>,
}

impl Store {
    /// The answers the newest records (other than `except`, the record in hand) offer at
    /// `now`. A record that cannot be read offers nothing and is skipped: opening it says
    /// what is wrong.
    pub fn recent_choices(
        &self,
        now: DateTime<Utc>,
        except: Option<Uuid>,
    ) -> Result<RecentChoices> {
        let rows = self.list(&ListFilter {
            limit: Some(RECORDS_READ),
            ..ListFilter::default()
        })?;
        let shift_start = now - Duration::hours(SHIFT_HOURS);
        let mut out = RecentChoices::default();
        for row in rows.iter().filter(|r| Some(r.id) != except) {
            let Ok(e) = self.get(row.id) else {
                continue;
            };
            let call_sign = e.incident.call_sign.trim();
            if out.call_sign.is_none() && row.updated_at_utc >= shift_start && !call_sign.is_empty()
            {
                out.call_sign = Some(call_sign.to_owned());
                out.crew = e.crew.clone();
            }
            if out.call_sign.is_some() {
                break;
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::crypto::KdfParams;
    use crate::demo::complete_encounter;
    use crate::model::{Encounter, Outcome};
    use crate::store::migrate;

    fn conveyed(call_sign: &str, crew: &str, hospital: &str) -> Encounter {
        let mut e = complete_encounter();
        e.id = Uuid::now_v7();
        e.incident.call_sign = call_sign.to_owned();
        e.crew = vec![CrewMember {
            name: crew.to_owned(),
            role: String::new(),
            registration: String::new(),
        }];
        e.outcome = Some(Outcome::ConveyedTo {
            hospital: hospital.to_owned(),
            ods_code: None,
        });
        e
    }

    #[test]
    fn the_shifts_call_sign_and_crew_are_offered() {
        let dir = tempfile::tempdir().unwrap();
        let mut store = Store::create_with(
            dir.path(),
            "alex",
            "2468",
            KdfParams::FAST_FOR_TESTS,
            migrate::latest_version(),
        )
        .unwrap();
        let now = Utc::now();
        assert_eq!(
            store.recent_choices(now, None).unwrap(),
            RecentChoices::default(),
            "a new tablet offers nothing"
        );
        let older = conveyed("RD21", "Sam", "Northgate General");
        store.save_draft(&older).unwrap();
        store
            .save_draft(&conveyed("RD21", "Sam", "Sample Royal Infirmary"))
            .unwrap();
        let newest = conveyed("RD44", "Kit", " northgate general ");
        store.save_draft(&newest).unwrap();

        let r = store.recent_choices(now, None).unwrap();
        assert_eq!(r.call_sign.as_deref(), Some("RD44"));
        assert_eq!(r.crew[0].name, "Kit");

        // The record in hand does not offer its own answers.
        let r = store.recent_choices(now, Some(newest.id)).unwrap();
        assert_eq!(r.call_sign.as_deref(), Some("RD21"));

        // A new shift: no call sign or crew from the last one.
        let r = store
            .recent_choices(now + Duration::hours(SHIFT_HOURS + 1), None)
            .unwrap();
        assert_eq!(r.call_sign, None);
        assert!(r.crew.is_empty());
    }
}
