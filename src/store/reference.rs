//! The trust's reference data as this tablet holds it: the last set the server delivered
//! (checked against the pinned log key by `sync` before it is kept here), or the labelled
//! sample set when none has arrived. Kept in the encrypted store, so the app works from it
//! for days with no server.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{DocumentError, Result, Store, StoreError};
use crate::model::reference::{ReferenceCounts, ReferenceData};

/// Device setting holding the delivered set (JSON of [`KeptReference`]).
const REFERENCE_SET: &str = "reference.set";
/// Device setting holding why the last set offered was refused, if it was.
const REFERENCE_REFUSED: &str = "reference.refused";

/// Where the set in use came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ReferenceSource {
    /// The trust's server, signed by its pinned log key.
    Server,
    /// The labelled sample shipped with the app (not clinical guidance): a tablet not
    /// enrolled with a trust's server, or a demonstration.
    Sample,
    /// None: an enrolled tablet whose trust's set has not arrived. Drugs are recorded as
    /// "other" and destinations typed; no sample stands in for the trust's data.
    None,
}

/// The set the app works from.
#[derive(Debug, Clone, PartialEq)]
pub struct ActiveReference {
    pub source: ReferenceSource,
    pub data: ReferenceData,
    /// When the server's set was received; `None` for the sample.
    pub received_at_utc: Option<DateTime<Utc>>,
}

impl ActiveReference {
    /// The labelled sample set.
    pub fn sample() -> Result<Self> {
        let data = ReferenceData::sample().map_err(|_| {
            StoreError::Document(DocumentError::Malformed(
                "the sample reference data shipped with this app",
            ))
        })?;
        Ok(Self {
            source: ReferenceSource::Sample,
            data,
            received_at_utc: None,
        })
    }

    /// No reference data: an empty formulary, no destinations, no staff.
    pub fn none() -> Self {
        Self {
            source: ReferenceSource::None,
            data: ReferenceData {
                version: 0,
                trust: String::new(),
                sample: false,
                formulary: Vec::new(),
                destinations: Vec::new(),
                staff: Vec::new(),
                presenting_complaints: Vec::new(),
                referral_services: Vec::new(),
            },
            received_at_utc: None,
        }
    }

    /// The staff member this tablet's `user` is, from a trust's set delivered by the server
    /// only: the sample's staff never name a real user.
    pub fn staff_for_user(&self, user: &str) -> Option<&crate::model::reference::StaffMember> {
        match self.source {
            ReferenceSource::Server => self.data.staff_for_user(user),
            ReferenceSource::Sample | ReferenceSource::None => None,
        }
    }

    /// What `epr reference --json` prints and the app shows.
    pub fn summary(&self) -> ReferenceSummary {
        ReferenceSummary {
            version: self.data.version,
            source: self.source,
            trust: self.data.trust.clone(),
            sample: self.data.sample,
            counts: self.data.counts(),
            received_at_utc: self.received_at_utc,
        }
    }
}

/// The reference data in use, in a few words and counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReferenceSummary {
    pub version: u32,
    pub source: ReferenceSource,
    pub trust: String,
    pub sample: bool,
    pub counts: ReferenceCounts,
    pub received_at_utc: Option<DateTime<Utc>>,
}

/// A delivered set as kept: the document exactly as received and the statement that
/// vouched for it, so it can be checked again.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct KeptReference {
    version: u64,
    document: String,
    signed_note: String,
    received_at_utc: DateTime<Utc>,
}

impl Store {
    /// The version of the server's set this tablet holds, if any.
    pub fn server_reference_version(&self) -> Result<Option<u64>> {
        Ok(self.kept_reference()?.map(|k| k.version))
    }

    /// The set the app works from: the server's; when none has arrived, the sample for a
    /// tablet that is not enrolled with a trust (`enrolled` false, or a demonstration), and
    /// nothing for one that is.
    pub fn active_reference(&self, enrolled: bool) -> Result<ActiveReference> {
        let Some(kept) = self.kept_reference()? else {
            return if enrolled {
                Ok(ActiveReference::none())
            } else {
                ActiveReference::sample()
            };
        };
        let data = ReferenceData::from_json(&kept.document).map_err(|_| {
            StoreError::Document(DocumentError::Malformed(
                "the reference data kept on this tablet",
            ))
        })?;
        Ok(ActiveReference {
            source: ReferenceSource::Server,
            data,
            received_at_utc: Some(kept.received_at_utc),
        })
    }

    /// Keeps a set the server delivered. The caller has checked its signature, hash and
    /// content; this only refuses to go back to an older version.
    pub fn keep_server_reference(
        &self,
        version: u64,
        document: &str,
        signed_note: &str,
        now: DateTime<Utc>,
    ) -> Result<bool> {
        if self
            .server_reference_version()?
            .is_some_and(|held| held >= version)
        {
            return Ok(false);
        }
        let kept = KeptReference {
            version,
            document: document.to_owned(),
            signed_note: signed_note.to_owned(),
            received_at_utc: now,
        };
        let text = serde_json::to_string(&kept)?;
        self.set_setting(REFERENCE_SET, &text)?;
        self.delete_setting(REFERENCE_REFUSED)?;
        Ok(true)
    }

    /// Notes why a set the server offered was refused (the one held stays in use).
    pub fn note_reference_refused(&self, reason: &str) -> Result<()> {
        self.set_setting(REFERENCE_REFUSED, reason)
    }

    /// Why the last set offered was refused, if it was.
    pub fn reference_refused(&self) -> Result<Option<String>> {
        self.setting(REFERENCE_REFUSED)
    }

    fn kept_reference(&self) -> Result<Option<KeptReference>> {
        let Some(text) = self.setting(REFERENCE_SET)? else {
            return Ok(None);
        };
        Ok(Some(serde_json::from_str(&text)?))
    }
}
