//! DNACPR, ReSPECT and other advance decisions: whether one was seen, told of or none is
//! known, which document, where it is kept, and what it recommends ([`AdvanceDecisions`]).
//!
//! A document only told of ("there's a form somewhere") is not one seen: the record says which,
//! because a crew may act on a DNACPR decision they have seen and verified, not on hearsay.
//! Nothing here is required on every record; once the crew say a document exists, its type,
//! its place and its recommendation are required at sign-off.

use serde::{Deserialize, Serialize};

/// Whether a document was seen.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdvanceStatus {
    /// The crew saw the document.
    Seen,
    /// Someone said there is one; the crew did not see it.
    ReportedNotSeen,
    /// Asked: none known.
    NoneKnown,
}

impl AdvanceStatus {
    pub const ALL: [AdvanceStatus; 3] = [
        AdvanceStatus::Seen,
        AdvanceStatus::ReportedNotSeen,
        AdvanceStatus::NoneKnown,
    ];

    pub fn label(self) -> &'static str {
        match self {
            AdvanceStatus::Seen => "Seen",
            AdvanceStatus::ReportedNotSeen => "Reported, not seen",
            AdvanceStatus::NoneKnown => "None known",
        }
    }
}

/// The kind of document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdvanceDocument {
    Dnacpr,
    Respect,
    /// An advance decision to refuse treatment (Mental Capacity Act 2005, sections 24 to 26).
    Adrt,
    Other,
}

impl AdvanceDocument {
    pub const ALL: [AdvanceDocument; 4] = [
        AdvanceDocument::Dnacpr,
        AdvanceDocument::Respect,
        AdvanceDocument::Adrt,
        AdvanceDocument::Other,
    ];

    pub fn label(self) -> &'static str {
        match self {
            AdvanceDocument::Dnacpr => "DNACPR",
            AdvanceDocument::Respect => "ReSPECT",
            AdvanceDocument::Adrt => "Advance decision to refuse treatment",
            AdvanceDocument::Other => "Other",
        }
    }
}

/// What the document says about cardiopulmonary resuscitation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CprRecommendation {
    AttemptCpr,
    DoNotAttemptCpr,
    /// The document does not decide CPR (an ADRT about another treatment, say).
    NotStated,
}

impl CprRecommendation {
    pub const ALL: [CprRecommendation; 3] = [
        CprRecommendation::AttemptCpr,
        CprRecommendation::DoNotAttemptCpr,
        CprRecommendation::NotStated,
    ];

    pub fn label(self) -> &'static str {
        match self {
            CprRecommendation::AttemptCpr => "For CPR",
            CprRecommendation::DoNotAttemptCpr => "Not for CPR",
            CprRecommendation::NotStated => "CPR not addressed",
        }
    }

    /// As said inside a sentence.
    pub fn phrase(self) -> &'static str {
        match self {
            CprRecommendation::AttemptCpr => "for CPR",
            CprRecommendation::DoNotAttemptCpr => "NOT for CPR",
            CprRecommendation::NotStated => "CPR not addressed",
        }
    }
}

/// The record's advance decisions; empty (and absent from the document) until the crew
/// answer.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdvanceDecisions {
    #[serde(default)]
    pub status: Option<AdvanceStatus>,
    #[serde(default)]
    pub document: Option<AdvanceDocument>,
    /// The document's name when it is "other".
    #[serde(default)]
    pub other_document: String,
    #[serde(default)]
    pub cpr: Option<CprRecommendation>,
    /// Where the document is kept or was seen ("care home file", "on the fridge").
    #[serde(default)]
    pub location: String,
    /// What it recommends, in the crew's words.
    #[serde(default)]
    pub recommendation: String,
}

impl AdvanceDecisions {
    /// True when nothing has been recorded (the document leaves the field out).
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }

    /// True when a document exists, seen or not.
    pub fn has_document(&self) -> bool {
        matches!(
            self.status,
            Some(AdvanceStatus::Seen | AdvanceStatus::ReportedNotSeen)
        )
    }

    /// The document's name ("DNACPR", or the typed name for "other").
    pub fn document_text(&self) -> Option<String> {
        self.document.map(|d| match d {
            AdvanceDocument::Other if !self.other_document.trim().is_empty() => {
                self.other_document.trim().to_owned()
            }
            d => d.label().to_owned(),
        })
    }

    /// What is still needed before sign-off: nothing when no document is known; a document
    /// that exists needs its type, where it is, and (when seen) what it says about CPR and
    /// what it recommends.
    pub fn missing(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if !self.has_document() {
            return out;
        }
        let named = match self.document {
            None => false,
            Some(AdvanceDocument::Other) => !self.other_document.trim().is_empty(),
            Some(_) => true,
        };
        if !named {
            out.push("Advance decision: document type");
        }
        if self.location.trim().is_empty() {
            out.push("Advance decision: where it is kept");
        }
        if self.status == Some(AdvanceStatus::Seen) {
            if self.cpr.is_none() {
                out.push("Advance decision: CPR recommendation");
            }
            if self.recommendation.trim().is_empty() {
                out.push("Advance decision: its recommendation");
            }
        }
        out
    }

    /// One line for the handover and the record ("DNACPR seen (care home file): not for
    /// CPR; comfort care"); `None` when nothing was recorded.
    pub fn summary(&self) -> Option<String> {
        let status = self.status?;
        if status == AdvanceStatus::NoneKnown {
            return Some("no advance decisions known".to_owned());
        }
        let document = self
            .document_text()
            .unwrap_or_else(|| "advance decision".to_owned());
        let mut line = match status {
            AdvanceStatus::Seen => format!("{document} seen"),
            _ => format!("{document} reported, NOT SEEN"),
        };
        if !self.location.trim().is_empty() {
            line.push_str(&format!(" ({})", self.location.trim()));
        }
        let mut says = Vec::new();
        if let Some(c) = self.cpr {
            says.push(c.phrase().to_owned());
        }
        if !self.recommendation.trim().is_empty() {
            says.push(self.recommendation.trim().to_owned());
        }
        if !says.is_empty() {
            line.push_str(": ");
            line.push_str(&says.join("; "));
        }
        Some(line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seen_dnacpr() -> AdvanceDecisions {
        AdvanceDecisions {
            status: Some(AdvanceStatus::Seen),
            document: Some(AdvanceDocument::Dnacpr),
            cpr: Some(CprRecommendation::DoNotAttemptCpr),
            location: "Care home file".into(),
            recommendation: "Comfort care; hospital only for symptom control".into(),
            ..AdvanceDecisions::default()
        }
    }

    #[test]
    fn nothing_is_asked_until_a_document_is_said_to_exist() {
        assert!(AdvanceDecisions::default().missing().is_empty());
        let none = AdvanceDecisions {
            status: Some(AdvanceStatus::NoneKnown),
            ..AdvanceDecisions::default()
        };
        assert!(none.missing().is_empty());
        assert_eq!(
            none.summary().as_deref(),
            Some("no advance decisions known")
        );
        assert_eq!(AdvanceDecisions::default().summary(), None);
    }

    #[test]
    fn a_seen_document_needs_its_type_place_cpr_and_recommendation() {
        let seen = AdvanceDecisions {
            status: Some(AdvanceStatus::Seen),
            ..AdvanceDecisions::default()
        };
        assert_eq!(
            seen.missing(),
            [
                "Advance decision: document type",
                "Advance decision: where it is kept",
                "Advance decision: CPR recommendation",
                "Advance decision: its recommendation",
            ]
        );
        assert!(seen_dnacpr().missing().is_empty());
        assert_eq!(
            seen_dnacpr().summary().as_deref(),
            Some(
                "DNACPR seen (Care home file): NOT for CPR; Comfort care; hospital only for symptom control"
            )
        );
    }

    #[test]
    fn a_reported_document_is_said_to_be_unseen_and_other_needs_its_name() {
        let mut told = AdvanceDecisions {
            status: Some(AdvanceStatus::ReportedNotSeen),
            document: Some(AdvanceDocument::Other),
            location: "Daughter says GP holds it".into(),
            ..AdvanceDecisions::default()
        };
        assert_eq!(told.missing(), ["Advance decision: document type"]);
        told.other_document = "Lasting power of attorney".into();
        assert!(
            told.missing().is_empty(),
            "CPR and recommendation only when seen"
        );
        assert_eq!(
            told.summary().as_deref(),
            Some("Lasting power of attorney reported, NOT SEEN (Daughter says GP holds it)")
        );
    }
}
