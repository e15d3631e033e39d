//! Safeguarding ([`Safeguarding`]): whether a concern was raised and, once it was, about an
//! adult or a child, its category, who it was referred to, the reference they gave, and
//! consent to the referral or why the crew referred without it.
//!
//! A concern raised is never left as a tick alone: each of these is required at sign-off, so
//! the trust's safeguarding team can follow every referral from the record.

use serde::{Deserialize, Serialize};

/// Who the concern is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Subject {
    Adult,
    Child,
}

impl Subject {
    pub const ALL: [Subject; 2] = [Subject::Adult, Subject::Child];

    pub fn label(self) -> &'static str {
        match self {
            Subject::Adult => "Adult",
            Subject::Child => "Child",
        }
    }
}

/// The kind of abuse or neglect suspected.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    Neglect,
    SelfNeglect,
    Physical,
    Emotional,
    Sexual,
    Financial,
    DomesticAbuse,
    Exploitation,
    Other,
}

impl Category {
    pub const ALL: [Category; 9] = [
        Category::Neglect,
        Category::SelfNeglect,
        Category::Physical,
        Category::Emotional,
        Category::Sexual,
        Category::Financial,
        Category::DomesticAbuse,
        Category::Exploitation,
        Category::Other,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Category::Neglect => "Neglect",
            Category::SelfNeglect => "Self-neglect",
            Category::Physical => "Physical",
            Category::Emotional => "Emotional",
            Category::Sexual => "Sexual",
            Category::Financial => "Financial",
            Category::DomesticAbuse => "Domestic abuse",
            Category::Exploitation => "Exploitation",
            Category::Other => "Other",
        }
    }
}

/// Consent to the referral.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReferralConsent {
    Given,
    /// Referred without consent (a child, a risk to others, or a patient lacking capacity):
    /// the reason is required.
    ReferredWithout,
}

impl ReferralConsent {
    pub const ALL: [ReferralConsent; 2] =
        [ReferralConsent::Given, ReferralConsent::ReferredWithout];

    pub fn label(self) -> &'static str {
        match self {
            ReferralConsent::Given => "Consent given",
            ReferralConsent::ReferredWithout => "Referred without consent",
        }
    }
}

/// Safeguarding on the record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Safeguarding {
    #[serde(default)]
    pub concern_raised: bool,
    /// What the crew saw and did, in their words.
    #[serde(default)]
    pub details: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Subject>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<Category>,
    /// Who the referral went to ("Trust safeguarding line", "Police").
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub referred_to: String,
    /// The reference they gave.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reference: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub consent: Option<ReferralConsent>,
    /// Why the referral was made without consent.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub no_consent_reason: String,
}

impl Safeguarding {
    /// What is still needed before sign-off: nothing without a concern.
    pub fn missing(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if !self.concern_raised {
            return out;
        }
        if self.subject.is_none() {
            out.push("Safeguarding: adult or child");
        }
        if self.category.is_none() {
            out.push("Safeguarding: category");
        }
        if self.referred_to.trim().is_empty() {
            out.push("Safeguarding: referred to whom");
        }
        if self.reference.trim().is_empty() {
            out.push("Safeguarding: referral reference");
        }
        match self.consent {
            None => out.push("Safeguarding: consent to the referral"),
            Some(ReferralConsent::ReferredWithout) if self.no_consent_reason.trim().is_empty() => {
                out.push("Safeguarding: why referred without consent")
            }
            Some(_) => {}
        }
        out
    }

    /// "Safeguarding concern (child, neglect): referred to Trust safeguarding line, ref
    /// SG-1234, consent given"; `None` without a concern.
    pub fn summary(&self) -> Option<String> {
        if !self.concern_raised {
            return None;
        }
        let about: Vec<String> = [
            self.subject.map(|s| s.label().to_lowercase()),
            self.category.map(|c| c.label().to_lowercase()),
        ]
        .into_iter()
        .flatten()
        .collect();
        let mut text = if about.is_empty() {
            "Safeguarding concern".to_owned()
        } else {
            format!("Safeguarding concern ({})", about.join(", "))
        };
        let mut parts = Vec::new();
        if !self.referred_to.trim().is_empty() {
            parts.push(format!("referred to {}", self.referred_to.trim()));
        }
        if !self.reference.trim().is_empty() {
            parts.push(format!("ref {}", self.reference.trim()));
        }
        match self.consent {
            Some(ReferralConsent::Given) => parts.push("consent given".to_owned()),
            Some(ReferralConsent::ReferredWithout) => parts.push(format!(
                "without consent: {}",
                self.no_consent_reason.trim()
            )),
            None => {}
        }
        if !parts.is_empty() {
            text.push_str(": ");
            text.push_str(&parts.join(", "));
        }
        Some(text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_is_asked_without_a_concern_and_everything_with_one() {
        assert!(Safeguarding::default().missing().is_empty());
        assert_eq!(Safeguarding::default().summary(), None);
        let raised = Safeguarding {
            concern_raised: true,
            ..Safeguarding::default()
        };
        assert_eq!(
            raised.missing(),
            [
                "Safeguarding: adult or child",
                "Safeguarding: category",
                "Safeguarding: referred to whom",
                "Safeguarding: referral reference",
                "Safeguarding: consent to the referral",
            ]
        );
    }

    #[test]
    fn a_referral_without_consent_needs_its_reason() {
        let mut s = Safeguarding {
            concern_raised: true,
            subject: Some(Subject::Child),
            category: Some(Category::Neglect),
            referred_to: "Trust safeguarding line".into(),
            reference: "SG-1234".into(),
            consent: Some(ReferralConsent::ReferredWithout),
            ..Safeguarding::default()
        };
        assert_eq!(s.missing(), ["Safeguarding: why referred without consent"]);
        s.no_consent_reason = "Child at risk; parents not told".into();
        assert!(s.missing().is_empty());
        assert_eq!(
            s.summary().as_deref(),
            Some(
                "Safeguarding concern (child, neglect): referred to Trust safeguarding line, \
                 ref SG-1234, without consent: Child at risk; parents not told"
            )
        );
    }
}
