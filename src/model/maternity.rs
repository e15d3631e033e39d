//! The maternity section ([`MaternityAssessment`]): the pregnancy-related findings, the
//! contractions in ten minutes when contracting, and whether the maternity unit was
//! contacted. The gestation itself is the patient's (under Patient), so it is written once.

use serde::{Deserialize, Serialize};

use super::encounter::Pregnancy;

/// A finding in pregnancy or just after birth.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MaternityFinding {
    VaginalBleeding,
    Contractions,
    MembranesRuptured,
    ReducedFetalMovements,
    HeadacheOrVisualDisturbance,
    AbdominalPain,
    BirthImminent,
    BabyBorn,
}

impl MaternityFinding {
    pub const ALL: [MaternityFinding; 8] = [
        MaternityFinding::VaginalBleeding,
        MaternityFinding::Contractions,
        MaternityFinding::MembranesRuptured,
        MaternityFinding::ReducedFetalMovements,
        MaternityFinding::HeadacheOrVisualDisturbance,
        MaternityFinding::AbdominalPain,
        MaternityFinding::BirthImminent,
        MaternityFinding::BabyBorn,
    ];

    pub fn label(self) -> &'static str {
        match self {
            MaternityFinding::VaginalBleeding => "Vaginal bleeding",
            MaternityFinding::Contractions => "Contractions",
            MaternityFinding::MembranesRuptured => "Waters broken",
            MaternityFinding::ReducedFetalMovements => "Reduced fetal movements",
            MaternityFinding::HeadacheOrVisualDisturbance => "Headache or visual disturbance",
            MaternityFinding::AbdominalPain => "Abdominal pain",
            MaternityFinding::BirthImminent => "Birth imminent",
            MaternityFinding::BabyBorn => "Baby born",
        }
    }
}

/// The most contractions in ten minutes anyone could count.
pub const MAX_CONTRACTIONS_PER_10_MIN: u8 = 10;

/// The maternity section, present while "Maternity" is one of the record's presentations.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MaternityAssessment {
    /// In [`MaternityFinding::ALL`] order.
    #[serde(default)]
    pub findings: Vec<MaternityFinding>,
    /// Asked and none of the findings present.
    #[serde(default)]
    pub none_found: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contractions_per_10_min: Option<u8>,
    #[serde(default)]
    pub maternity_unit_contacted: Option<bool>,
}

impl MaternityAssessment {
    /// Ticks or unticks a finding; ticking one clears "none".
    pub fn set(&mut self, f: MaternityFinding, on: bool) {
        self.findings.retain(|x| *x != f);
        if on {
            self.findings.push(f);
            self.findings.sort();
            self.none_found = false;
        } else if f == MaternityFinding::Contractions {
            self.contractions_per_10_min = None;
        }
    }

    /// What is still needed before sign-off; `pregnancy` is the patient's.
    pub fn missing(&self, pregnancy: Option<Pregnancy>) -> Vec<&'static str> {
        let mut out = Vec::new();
        match pregnancy {
            Some(Pregnancy::Pregnant {
                gestation_weeks: Some(_),
            })
            | Some(Pregnancy::PostPartum) => {}
            _ => out.push("Maternity: pregnant with gestation, or post-partum (under Patient)"),
        }
        if self.findings.is_empty() && !self.none_found {
            out.push("Maternity: findings, or none");
        }
        if self.findings.contains(&MaternityFinding::Contractions)
            && self.contractions_per_10_min.is_none()
        {
            out.push("Maternity: contractions in 10 minutes");
        }
        if self.maternity_unit_contacted.is_none() {
            out.push("Maternity: maternity unit contacted or not");
        }
        out
    }

    /// "Maternity: contractions (3 in 10 min), waters broken; maternity unit contacted".
    pub fn summary(&self) -> String {
        let findings: Vec<String> = self
            .findings
            .iter()
            .map(|f| match (f, self.contractions_per_10_min) {
                (MaternityFinding::Contractions, Some(n)) => {
                    format!("contractions ({n} in 10 min)")
                }
                (f, _) => f.label().to_lowercase(),
            })
            .collect();
        let mut text = if findings.is_empty() {
            if self.none_found {
                "Maternity: no pregnancy-related findings".to_owned()
            } else {
                "Maternity".to_owned()
            }
        } else {
            format!("Maternity: {}", findings.join(", "))
        };
        match self.maternity_unit_contacted {
            Some(true) => text.push_str("; maternity unit contacted"),
            Some(false) => text.push_str("; maternity unit not contacted"),
            None => {}
        }
        text
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn maternity_needs_the_gestation_findings_and_the_unit() {
        assert_eq!(
            MaternityAssessment::default().missing(None),
            [
                "Maternity: pregnant with gestation, or post-partum (under Patient)",
                "Maternity: findings, or none",
                "Maternity: maternity unit contacted or not",
            ]
        );
        let pregnant = Some(Pregnancy::Pregnant {
            gestation_weeks: Some(36),
        });
        let mut m = MaternityAssessment {
            maternity_unit_contacted: Some(true),
            ..MaternityAssessment::default()
        };
        m.set(MaternityFinding::Contractions, true);
        m.set(MaternityFinding::MembranesRuptured, true);
        assert_eq!(
            m.missing(pregnant),
            ["Maternity: contractions in 10 minutes"]
        );
        m.contractions_per_10_min = Some(3);
        assert!(m.missing(pregnant).is_empty());
        assert_eq!(
            m.summary(),
            "Maternity: contractions (3 in 10 min), waters broken; maternity unit contacted"
        );
        // Gestation unknown still asks for it.
        let unknown_weeks = Some(Pregnancy::Pregnant {
            gestation_weeks: None,
        });
        assert_eq!(m.missing(unknown_weeks).len(), 1);
    }
}
