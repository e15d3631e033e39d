//! Non-conveyance: what the crew must record when a patient is left at home, referred
//! elsewhere, or refuses to go to hospital ([`NonConveyance`]), and what is still missing
//! before such a record can be signed ([`NonConveyance::missing`]).
//!
//! The mental capacity assessment follows the two-stage test of the Mental Capacity Act 2005
//! (Code of Practice, chapter 4): stage 1, is there an impairment of, or disturbance in the
//! functioning of, the mind or brain? If not, the patient is presumed to have capacity. If so,
//! stage 2: can the patient understand the information relevant to the decision, retain it,
//! use or weigh it, and communicate the decision? Unable to do any one of the four, the patient
//! lacks capacity for this decision, cannot consent or refuse, and the crew act in the
//! patient's best interests, which they must write down.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Why the patient was not conveyed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NonConveyanceDecision {
    /// Assessed and treated at scene; no further care needed now.
    SeeAndTreat,
    /// Handed to another service (GP, urgent community response, ...).
    Referral,
    /// The patient refused conveyance the crew advised.
    RefusedAgainstAdvice,
}

impl NonConveyanceDecision {
    pub const ALL: [NonConveyanceDecision; 3] = [
        NonConveyanceDecision::SeeAndTreat,
        NonConveyanceDecision::Referral,
        NonConveyanceDecision::RefusedAgainstAdvice,
    ];

    pub fn label(self) -> &'static str {
        match self {
            NonConveyanceDecision::SeeAndTreat => "See and treat",
            NonConveyanceDecision::Referral => "Referral",
            NonConveyanceDecision::RefusedAgainstAdvice => "Refused against advice",
        }
    }
}

/// The patient's consent to the plan (or refusal of the crew's advice).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Consent {
    /// The patient agreed to the plan.
    Given,
    /// The patient refused what was advised.
    Refused,
    /// The patient lacks capacity for this decision: the crew act in their best interests.
    LacksCapacity,
}

impl Consent {
    pub const ALL: [Consent; 3] = [Consent::Given, Consent::Refused, Consent::LacksCapacity];

    pub fn label(self) -> &'static str {
        match self {
            Consent::Given => "Consent given",
            Consent::Refused => "Refused advice",
            Consent::LacksCapacity => "Cannot consent (lacks capacity)",
        }
    }
}

/// One of the four abilities of the Mental Capacity Act's functional test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ability {
    Understand,
    Retain,
    Weigh,
    Communicate,
}

impl Ability {
    pub const ALL: [Ability; 4] = [
        Ability::Understand,
        Ability::Retain,
        Ability::Weigh,
        Ability::Communicate,
    ];

    /// The question as the crew answer it.
    pub fn question(self) -> &'static str {
        match self {
            Ability::Understand => "Can understand the information about the decision",
            Ability::Retain => "Can retain that information",
            Ability::Weigh => "Can use or weigh it to make the decision",
            Ability::Communicate => "Can communicate the decision",
        }
    }
}

/// The two-stage mental capacity assessment, each answer `None` until the crew give it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CapacityAssessment {
    /// Stage 1: an impairment of, or disturbance in the functioning of, the mind or brain.
    #[serde(default)]
    pub impairment: Option<bool>,
    #[serde(default)]
    pub can_understand: Option<bool>,
    #[serde(default)]
    pub can_retain: Option<bool>,
    #[serde(default)]
    pub can_weigh: Option<bool>,
    #[serde(default)]
    pub can_communicate: Option<bool>,
    /// What was decided in the patient's best interests, and why (needed when the patient
    /// lacks capacity).
    #[serde(default)]
    pub best_interests: String,
}

/// What the assessment found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CapacityFinding {
    /// Stage 1 not answered.
    NotAssessed,
    /// An impairment, and stage 2 not finished.
    Incomplete,
    /// No impairment, or an impairment with all four abilities intact.
    HasCapacity,
    /// An impairment, and unable to do at least one of the four.
    LacksCapacity,
}

impl CapacityFinding {
    pub fn label(self) -> &'static str {
        match self {
            CapacityFinding::NotAssessed => "Capacity not assessed",
            CapacityFinding::Incomplete => "Capacity assessment incomplete",
            CapacityFinding::HasCapacity => "Has capacity for this decision",
            CapacityFinding::LacksCapacity => "Lacks capacity for this decision",
        }
    }
}

impl CapacityAssessment {
    /// The answer for one ability.
    pub fn ability(&self, a: Ability) -> Option<bool> {
        match a {
            Ability::Understand => self.can_understand,
            Ability::Retain => self.can_retain,
            Ability::Weigh => self.can_weigh,
            Ability::Communicate => self.can_communicate,
        }
    }

    /// The answer for one ability, to change it.
    pub fn ability_mut(&mut self, a: Ability) -> &mut Option<bool> {
        match a {
            Ability::Understand => &mut self.can_understand,
            Ability::Retain => &mut self.can_retain,
            Ability::Weigh => &mut self.can_weigh,
            Ability::Communicate => &mut self.can_communicate,
        }
    }

    /// The finding: the functional test counts only after an impairment is found.
    pub fn finding(&self) -> CapacityFinding {
        match self.impairment {
            None => CapacityFinding::NotAssessed,
            Some(false) => CapacityFinding::HasCapacity,
            Some(true) => {
                let answers: Vec<Option<bool>> =
                    Ability::ALL.iter().map(|&a| self.ability(a)).collect();
                if answers.contains(&Some(false)) {
                    CapacityFinding::LacksCapacity
                } else if answers.iter().all(|a| *a == Some(true)) {
                    CapacityFinding::HasCapacity
                } else {
                    CapacityFinding::Incomplete
                }
            }
        }
    }
}

/// Who was given the advice on what to do if things get worse.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdviceGivenTo {
    Patient,
    Relative,
    Carer,
    Other,
}

impl AdviceGivenTo {
    pub const ALL: [AdviceGivenTo; 4] = [
        AdviceGivenTo::Patient,
        AdviceGivenTo::Relative,
        AdviceGivenTo::Carer,
        AdviceGivenTo::Other,
    ];

    pub fn label(self) -> &'static str {
        match self {
            AdviceGivenTo::Patient => "Patient",
            AdviceGivenTo::Relative => "Relative",
            AdviceGivenTo::Carer => "Carer",
            AdviceGivenTo::Other => "Other",
        }
    }
}

/// The service the patient was referred to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ReferralService {
    Gp,
    UrgentCommunityResponse,
    FallsTeam,
    MentalHealth,
    Other,
}

impl ReferralService {
    pub const ALL: [ReferralService; 5] = [
        ReferralService::Gp,
        ReferralService::UrgentCommunityResponse,
        ReferralService::FallsTeam,
        ReferralService::MentalHealth,
        ReferralService::Other,
    ];

    pub fn label(self) -> &'static str {
        match self {
            ReferralService::Gp => "GP",
            ReferralService::UrgentCommunityResponse => "Urgent community response",
            ReferralService::FallsTeam => "Falls team",
            ReferralService::MentalHealth => "Mental health team",
            ReferralService::Other => "Other",
        }
    }
}

/// Who signed on the tablet.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Signatory {
    Patient,
    Witness,
}

impl Signatory {
    pub const ALL: [Signatory; 2] = [Signatory::Patient, Signatory::Witness];

    pub fn label(self) -> &'static str {
        match self {
            Signatory::Patient => "Patient",
            Signatory::Witness => "Witness",
        }
    }
}

/// Signature coordinates run from 0 to this, across and down the pad.
pub const SIGNATURE_SCALE: u16 = 1000;
/// At most this many points are kept in one signature (a signature is a few hundred).
pub const SIGNATURE_MAX_POINTS: usize = 4000;

/// A signature drawn on the screen: its strokes, each a list of points in the pad's own
/// coordinates (0..=[`SIGNATURE_SCALE`] across and down, whatever the screen's size).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DrawnSignature {
    #[serde(default)]
    pub signatory: Option<Signatory>,
    /// The name of whoever signed, as they give it.
    #[serde(default)]
    pub name: String,
    #[serde(default)]
    pub strokes: Vec<Vec<[u16; 2]>>,
    #[serde(default)]
    pub signed_at_utc: Option<DateTime<Utc>>,
}

impl DrawnSignature {
    /// True once something has been drawn.
    pub fn is_drawn(&self) -> bool {
        self.strokes.iter().any(|s| !s.is_empty())
    }

    /// Every point of every stroke.
    pub fn point_count(&self) -> usize {
        self.strokes.iter().map(Vec::len).sum()
    }

    /// Adds a stroke of points given as fractions (0..1) of the pad's width and height,
    /// clamped to the pad; false (and nothing added) when the signature is already full.
    pub fn add_stroke(&mut self, fractions: &[(f32, f32)]) -> bool {
        if fractions.is_empty() || self.point_count() + fractions.len() > SIGNATURE_MAX_POINTS {
            return false;
        }
        let scale = f32::from(SIGNATURE_SCALE);
        let to_pad = |f: f32| {
            // Clamped to 0..=SCALE first, so the conversion cannot overflow.
            (f.clamp(0.0, 1.0) * scale).round() as u16
        };
        self.strokes.push(
            fractions
                .iter()
                .map(|&(x, y)| [to_pad(x), to_pad(y)])
                .collect(),
        );
        true
    }
}

/// The non-conveyance record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NonConveyance {
    #[serde(default)]
    pub decision: Option<NonConveyanceDecision>,
    #[serde(default)]
    pub capacity: CapacityAssessment,
    #[serde(default)]
    pub consent: Option<Consent>,
    /// The risks of not going to hospital, as explained to the patient.
    #[serde(default)]
    pub risks_explained: String,
    #[serde(default)]
    pub worsening_advice_to: Option<AdviceGivenTo>,
    /// What to do if things get worse, as advised ("call 999 if the pain returns").
    #[serde(default)]
    pub worsening_advice: String,
    #[serde(default)]
    pub referral_service: Option<ReferralService>,
    /// The service's name when it is "other".
    #[serde(default)]
    pub referral_other: String,
    /// The receiving service's reference, when it gave one.
    #[serde(default)]
    pub referral_reference: String,
    #[serde(default)]
    pub signature: DrawnSignature,
    /// Why no one signed (the patient could not, no witness present, ...).
    #[serde(default)]
    pub no_signature_reason: String,
}

/// A part of the non-conveyance record the editor can jump to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NonConveyanceItem {
    Decision,
    Capacity,
    Consent,
    Risks,
    WorseningAdvice,
    Referral,
    Signature,
}

impl NonConveyance {
    /// A new record for an outcome: a refusal starts as "refused against advice", a referral
    /// as "referral"; anything else waits for the crew.
    pub fn for_outcome(outcome: &super::Outcome) -> Self {
        let decision = match outcome {
            super::Outcome::Declined => Some(NonConveyanceDecision::RefusedAgainstAdvice),
            super::Outcome::Referred { .. } => Some(NonConveyanceDecision::Referral),
            _ => None,
        };
        Self {
            decision,
            ..Self::default()
        }
    }

    /// The referral service in words ("GP", or the typed name for "other").
    pub fn referral_service_text(&self) -> Option<String> {
        self.referral_service.map(|s| match s {
            ReferralService::Other if !self.referral_other.trim().is_empty() => {
                self.referral_other.trim().to_owned()
            }
            s => s.label().to_owned(),
        })
    }

    /// Every item still missing before sign-off, each with its place, in the order the
    /// section shows them. Contradictions count as missing: a patient who lacks capacity can
    /// neither consent nor refuse.
    pub fn missing(&self) -> Vec<(NonConveyanceItem, &'static str)> {
        use NonConveyanceItem as I;
        let mut out = Vec::new();
        if self.decision.is_none() {
            out.push((I::Decision, "Non-conveyance decision"));
        }
        let finding = self.capacity.finding();
        match finding {
            CapacityFinding::NotAssessed | CapacityFinding::Incomplete => {
                out.push((I::Capacity, "Mental capacity assessment"));
            }
            CapacityFinding::LacksCapacity => {
                if self.capacity.best_interests.trim().is_empty() {
                    out.push((
                        I::Capacity,
                        "Best-interests decision (patient lacks capacity)",
                    ));
                }
                if self.decision == Some(NonConveyanceDecision::RefusedAgainstAdvice) {
                    out.push((
                        I::Decision,
                        "A patient who lacks capacity cannot refuse: decide in their best interests",
                    ));
                }
            }
            CapacityFinding::HasCapacity => {}
        }
        match (self.consent, finding) {
            (None, _) => out.push((I::Consent, "Consent")),
            (Some(Consent::Given | Consent::Refused), CapacityFinding::LacksCapacity) => {
                out.push((
                    I::Consent,
                    "Consent cannot be given or refused by a patient who lacks capacity",
                ));
            }
            (Some(Consent::LacksCapacity), CapacityFinding::HasCapacity) => out.push((
                I::Consent,
                "Consent says the patient lacks capacity, the assessment says they have it",
            )),
            _ => {}
        }
        if self.risks_explained.trim().is_empty() {
            out.push((I::Risks, "Risks explained"));
        }
        if self.worsening_advice_to.is_none() || self.worsening_advice.trim().is_empty() {
            out.push((I::WorseningAdvice, "Worsening advice and to whom"));
        }
        if self.decision == Some(NonConveyanceDecision::Referral) {
            let named = match self.referral_service {
                None => false,
                Some(ReferralService::Other) => !self.referral_other.trim().is_empty(),
                Some(_) => true,
            };
            if !named {
                out.push((I::Referral, "Referral service"));
            }
        }
        let signed = self.signature.is_drawn()
            && self.signature.signatory.is_some()
            && !self.signature.name.trim().is_empty();
        if !signed && self.no_signature_reason.trim().is_empty() {
            out.push((
                I::Signature,
                "Patient's or witness's signature and name, or why none",
            ));
        }
        out
    }

    /// The record as lines of text, for the PDF and the FHIR narrative, ending with the line
    /// that says who signed (or why no one did); `time` writes the signature's time the way
    /// the output writes times.
    pub fn summary_lines(&self, time: impl Fn(DateTime<Utc>) -> String) -> Vec<String> {
        let mut lines = Vec::new();
        let or_not = |t: &str| {
            if t.trim().is_empty() {
                "not recorded".to_owned()
            } else {
                t.trim().to_owned()
            }
        };
        lines.push(format!(
            "Decision: {}",
            self.decision
                .map_or("not recorded", NonConveyanceDecision::label)
        ));
        let c = &self.capacity;
        let yes_no = |a: Option<bool>| match a {
            Some(true) => "yes",
            Some(false) => "no",
            None => "not answered",
        };
        lines.push(format!(
            "Mental capacity: {} (impairment of mind or brain: {})",
            c.finding().label(),
            yes_no(c.impairment)
        ));
        if c.impairment == Some(true) {
            lines.push(format!(
                "Understand: {}; retain: {}; use or weigh: {}; communicate: {}",
                yes_no(c.can_understand),
                yes_no(c.can_retain),
                yes_no(c.can_weigh),
                yes_no(c.can_communicate)
            ));
        }
        if !c.best_interests.trim().is_empty() {
            lines.push(format!("Best interests: {}", c.best_interests.trim()));
        }
        lines.push(format!(
            "Consent: {}",
            self.consent.map_or("not recorded", Consent::label)
        ));
        lines.push(format!(
            "Risks explained: {}",
            or_not(&self.risks_explained)
        ));
        lines.push(format!(
            "Worsening advice to {}: {}",
            self.worsening_advice_to
                .map_or("(not recorded)", |a| a.label())
                .to_lowercase(),
            or_not(&self.worsening_advice)
        ));
        if let Some(service) = self.referral_service_text() {
            let reference = self.referral_reference.trim();
            lines.push(if reference.is_empty() {
                format!("Referred to: {service}")
            } else {
                format!("Referred to: {service} (reference {reference})")
            });
        }
        let s = &self.signature;
        if s.is_drawn() {
            let at = s
                .signed_at_utc
                .map(|t| format!(" at {}", time(t)))
                .unwrap_or_default();
            lines.push(format!(
                "Signed by the {} ({}){at}",
                s.signatory
                    .map_or("signatory", |p| p.label())
                    .to_lowercase(),
                or_not(&s.name)
            ));
        } else if !self.no_signature_reason.trim().is_empty() {
            lines.push(format!("Not signed: {}", self.no_signature_reason.trim()));
        } else {
            lines.push("Not signed".to_owned());
        }
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn capacity(impairment: Option<bool>, abilities: [Option<bool>; 4]) -> CapacityAssessment {
        let [u, r, w, c] = abilities;
        CapacityAssessment {
            impairment,
            can_understand: u,
            can_retain: r,
            can_weigh: w,
            can_communicate: c,
            best_interests: String::new(),
        }
    }

    /// A whole see-and-treat record with capacity.
    pub(crate) fn whole() -> NonConveyance {
        let mut signature = DrawnSignature {
            signatory: Some(Signatory::Patient),
            name: "A Patient".into(),
            ..DrawnSignature::default()
        };
        assert!(signature.add_stroke(&[(0.1, 0.5), (0.9, 0.5)]));
        NonConveyance {
            decision: Some(NonConveyanceDecision::SeeAndTreat),
            capacity: capacity(Some(false), [None; 4]),
            consent: Some(Consent::Given),
            risks_explained: "Risk of deterioration explained".into(),
            worsening_advice_to: Some(AdviceGivenTo::Patient),
            worsening_advice: "Call 999 if the pain returns".into(),
            signature,
            ..NonConveyance::default()
        }
    }

    fn labels(n: &NonConveyance) -> Vec<&'static str> {
        n.missing().into_iter().map(|(_, l)| l).collect()
    }

    #[test]
    fn the_functional_test_counts_only_after_an_impairment() {
        assert_eq!(
            capacity(None, [None; 4]).finding(),
            CapacityFinding::NotAssessed
        );
        // No impairment: capacity is presumed, stage 2 is not needed.
        assert_eq!(
            capacity(Some(false), [Some(false); 4]).finding(),
            CapacityFinding::HasCapacity
        );
        assert_eq!(
            capacity(Some(true), [Some(true), Some(true), None, None]).finding(),
            CapacityFinding::Incomplete
        );
        assert_eq!(
            capacity(Some(true), [Some(true); 4]).finding(),
            CapacityFinding::HasCapacity
        );
        // Unable to do any one of the four is enough.
        for i in 0..4 {
            let mut a = [Some(true); 4];
            a[i] = Some(false);
            assert_eq!(
                capacity(Some(true), a).finding(),
                CapacityFinding::LacksCapacity
            );
        }
        let mut a = [None; 4];
        a[3] = Some(false);
        assert_eq!(
            capacity(Some(true), a).finding(),
            CapacityFinding::LacksCapacity
        );
    }

    #[test]
    fn an_empty_record_lists_every_item() {
        assert_eq!(
            labels(&NonConveyance::default()),
            [
                "Non-conveyance decision",
                "Mental capacity assessment",
                "Consent",
                "Risks explained",
                "Worsening advice and to whom",
                "Patient's or witness's signature and name, or why none",
            ]
        );
        assert!(labels(&whole()).is_empty());
    }

    #[test]
    fn without_a_capacity_assessment_it_cannot_be_signed() {
        let mut n = whole();
        n.capacity = CapacityAssessment::default();
        assert_eq!(labels(&n), ["Mental capacity assessment"]);
        n.capacity = capacity(Some(true), [Some(true), None, None, None]);
        assert_eq!(labels(&n), ["Mental capacity assessment"]);
    }

    #[test]
    fn lacking_capacity_needs_best_interests_and_forbids_consent_and_refusal() {
        let mut n = whole();
        n.decision = Some(NonConveyanceDecision::RefusedAgainstAdvice);
        n.capacity = capacity(Some(true), [Some(false), None, None, None]);
        n.consent = Some(Consent::Refused);
        assert_eq!(
            labels(&n),
            [
                "Best-interests decision (patient lacks capacity)",
                "A patient who lacks capacity cannot refuse: decide in their best interests",
                "Consent cannot be given or refused by a patient who lacks capacity",
            ]
        );
        n.decision = Some(NonConveyanceDecision::Referral);
        n.referral_service = Some(ReferralService::Gp);
        n.consent = Some(Consent::LacksCapacity);
        n.capacity.best_interests = "Left with daughter, GP to visit today".into();
        assert!(labels(&n).is_empty());
        // And the reverse contradiction.
        n.capacity = capacity(Some(false), [None; 4]);
        assert_eq!(
            labels(&n),
            ["Consent says the patient lacks capacity, the assessment says they have it"]
        );
    }

    #[test]
    fn a_referral_names_its_service_and_other_needs_a_name() {
        let mut n = whole();
        n.decision = Some(NonConveyanceDecision::Referral);
        assert_eq!(labels(&n), ["Referral service"]);
        n.referral_service = Some(ReferralService::Other);
        assert_eq!(labels(&n), ["Referral service"]);
        n.referral_other = "Community nursing".into();
        assert!(labels(&n).is_empty());
        assert_eq!(
            n.referral_service_text().as_deref(),
            Some("Community nursing")
        );
    }

    #[test]
    fn a_signature_needs_strokes_a_signatory_and_a_name_or_a_reason_for_none() {
        let mut n = whole();
        n.signature.name = " ".into();
        assert_eq!(
            labels(&n),
            ["Patient's or witness's signature and name, or why none"]
        );
        n.signature = DrawnSignature::default();
        n.no_signature_reason = "Patient unable to hold a stylus".into();
        assert!(labels(&n).is_empty());
        assert!(
            n.summary_lines(|t| t.to_rfc3339())
                .contains(&"Not signed: Patient unable to hold a stylus".to_owned())
        );
    }

    #[test]
    fn strokes_are_kept_in_pad_coordinates_and_bounded() {
        let mut s = DrawnSignature::default();
        assert!(!s.add_stroke(&[]));
        assert!(s.add_stroke(&[(-0.5, 0.0), (0.5, 0.25), (2.0, 1.0)]));
        assert_eq!(s.strokes, vec![vec![[0, 0], [500, 250], [1000, 1000]]]);
        let long = vec![(0.5, 0.5); SIGNATURE_MAX_POINTS];
        assert!(!s.add_stroke(&long), "over the point limit");
        assert_eq!(s.point_count(), 3);
    }

    #[test]
    fn an_old_record_without_the_section_reads_and_a_new_one_round_trips() {
        let n: NonConveyance = serde_json::from_str("{}").unwrap();
        assert_eq!(n, NonConveyance::default());
        let w = whole();
        let text = serde_json::to_string(&w).unwrap();
        assert!(text.contains("\"decision\":\"see_and_treat\""), "{text}");
        assert_eq!(serde_json::from_str::<NonConveyance>(&text).unwrap(), w);
    }
}
