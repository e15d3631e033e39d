//! The mental health section ([`MentalHealthAssessment`]): the risks asked of every patient in
//! a mental health crisis (thoughts of suicide, self-harm, risk to others), the patient's
//! legal status under the Mental Health Act, whether police are present, and which mental
//! health service was contacted.
//!
//! Mental capacity, consent and a refusal are recorded by the non-conveyance section; a
//! concern for the patient's or a child's safety by safeguarding. The risks are said in the
//! handover because the receiving team must act on them at once.

use serde::{Deserialize, Serialize};

/// The patient's status under the Mental Health Act 1983.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LegalStatus {
    /// Not detained or held under any section.
    Informal,
    /// Removed from a public place by police to a place of safety.
    Section136,
    /// Removed from a private place under a warrant.
    Section135,
    /// Detained in hospital (sections 2, 3 and others).
    Detained,
    CommunityTreatmentOrder,
    NotKnown,
}

impl LegalStatus {
    pub const ALL: [LegalStatus; 6] = [
        LegalStatus::Informal,
        LegalStatus::Section136,
        LegalStatus::Section135,
        LegalStatus::Detained,
        LegalStatus::CommunityTreatmentOrder,
        LegalStatus::NotKnown,
    ];

    pub fn label(self) -> &'static str {
        match self {
            LegalStatus::Informal => "Informal (not detained)",
            LegalStatus::Section136 => "Section 136",
            LegalStatus::Section135 => "Section 135",
            LegalStatus::Detained => "Detained under the Act",
            LegalStatus::CommunityTreatmentOrder => "Community treatment order",
            LegalStatus::NotKnown => "Not known",
        }
    }
}

impl LegalStatus {
    /// As said within a sentence: "informal (not detained)", "Section 136".
    pub fn in_sentence(self) -> &'static str {
        match self {
            LegalStatus::Informal => "informal (not detained)",
            LegalStatus::Section136 => "Section 136",
            LegalStatus::Section135 => "Section 135",
            LegalStatus::Detained => "detained under the Mental Health Act",
            LegalStatus::CommunityTreatmentOrder => "on a community treatment order",
            LegalStatus::NotKnown => "Mental Health Act status not known",
        }
    }
}

/// The mental health service the crew contacted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MentalHealthContact {
    CrisisTeam,
    /// The trust's mental health professional in the control room.
    ControlRoomClinician,
    CommunityTeam,
    NotContacted,
}

impl MentalHealthContact {
    pub const ALL: [MentalHealthContact; 4] = [
        MentalHealthContact::CrisisTeam,
        MentalHealthContact::ControlRoomClinician,
        MentalHealthContact::CommunityTeam,
        MentalHealthContact::NotContacted,
    ];

    pub fn label(self) -> &'static str {
        match self {
            MentalHealthContact::CrisisTeam => "Crisis team",
            MentalHealthContact::ControlRoomClinician => "Control room mental health clinician",
            MentalHealthContact::CommunityTeam => "Community mental health team",
            MentalHealthContact::NotContacted => "Not contacted",
        }
    }
}

/// The mental health section, present while "Mental health" is picked.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MentalHealthAssessment {
    #[serde(default)]
    pub thoughts_of_suicide: Option<bool>,
    /// Self-harm in this episode.
    #[serde(default)]
    pub self_harm: Option<bool>,
    #[serde(default)]
    pub risk_to_others: Option<bool>,
    #[serde(default)]
    pub legal_status: Option<LegalStatus>,
    #[serde(default)]
    pub police_present: Option<bool>,
    #[serde(default)]
    pub contacted: Option<MentalHealthContact>,
}

impl MentalHealthAssessment {
    /// What is still needed before sign-off.
    pub fn missing(&self) -> Vec<&'static str> {
        let mut out = Vec::new();
        if self.thoughts_of_suicide.is_none() {
            out.push("Mental health: thoughts of suicide or not");
        }
        if self.self_harm.is_none() {
            out.push("Mental health: self-harm or not");
        }
        if self.risk_to_others.is_none() {
            out.push("Mental health: risk to others or not");
        }
        if self.legal_status.is_none() {
            out.push("Mental health: Mental Health Act status");
        }
        if self.contacted.is_none() {
            out.push("Mental health: service contacted (or not)");
        }
        out
    }

    /// True when any of the three risks is present.
    pub fn any_risk(&self) -> bool {
        [
            self.thoughts_of_suicide,
            self.self_harm,
            self.risk_to_others,
        ]
        .contains(&Some(true))
    }

    /// "Mental health: thoughts of suicide, self-harm; no risk to others; Section 136;
    /// police present; crisis team contacted".
    pub fn summary(&self) -> String {
        let mut risks = Vec::new();
        let mut none = Vec::new();
        for (name, value) in [
            ("thoughts of suicide", self.thoughts_of_suicide),
            ("self-harm", self.self_harm),
            ("risk to others", self.risk_to_others),
        ] {
            match value {
                Some(true) => risks.push(name),
                Some(false) => none.push(name),
                None => {}
            }
        }
        let mut parts = Vec::new();
        if !risks.is_empty() {
            parts.push(risks.join(", "));
        }
        if !none.is_empty() {
            parts.push(format!("no {}", none.join(", no ")));
        }
        if let Some(s) = self.legal_status {
            parts.push(s.in_sentence().to_owned());
        }
        if self.police_present == Some(true) {
            parts.push("police present".to_owned());
        }
        match self.contacted {
            Some(MentalHealthContact::NotContacted) => {
                parts.push("no mental health service contacted".to_owned())
            }
            Some(c) => parts.push(format!("{} contacted", c.label().to_lowercase())),
            None => {}
        }
        if parts.is_empty() {
            "Mental health crisis".to_owned()
        } else {
            format!("Mental health: {}", parts.join("; "))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_three_risks_the_legal_status_and_the_service_are_required() {
        let m = MentalHealthAssessment::default();
        assert_eq!(m.missing().len(), 5);
        let m = MentalHealthAssessment {
            thoughts_of_suicide: Some(true),
            self_harm: Some(false),
            risk_to_others: Some(false),
            legal_status: Some(LegalStatus::Section136),
            police_present: Some(true),
            contacted: Some(MentalHealthContact::CrisisTeam),
        };
        assert!(m.missing().is_empty());
        assert!(m.any_risk());
        assert_eq!(
            m.summary(),
            "Mental health: thoughts of suicide; no self-harm, no risk to others; Section 136; \
             police present; crisis team contacted"
        );
    }
}
