//! NEWS2 (Royal College of Physicians, 2017): per-parameter scores, total and clinical risk.
//!
//! The bands are CLINICAL.md's Chart 1, written out one `match` per parameter so each band
//! edge can be read against the chart. A score is only ever reported whole: if any of the
//! seven inputs is missing the outcome is [`News2::Incomplete`], and for patients under 16 it
//! is [`News2::NotApplicable`].

use serde::{Deserialize, Serialize};

use super::observations::{
    Acvpu, Inspired, ObservationSet, PulseBpm, RespRatePerMin, Spo2Percent, SystolicMmHg,
    TemperatureCelsius,
};

/// Which SpO2 scale applies. Scale 2 is for confirmed hypercapnic respiratory failure and is
/// chosen by a clinician; scale 1 is the default.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Spo2Scale {
    #[default]
    Scale1,
    Scale2,
}

/// Clinical risk from RCP Chart 2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RiskBand {
    /// Total 0-4: routine.
    Low,
    /// A 3 in any single parameter (total under 5): urgent ward-based review.
    LowMedium,
    /// Total 5-6: urgent response threshold.
    Medium,
    /// Total 7 or more: emergency response.
    High,
}

impl RiskBand {
    /// The band as crews and supervisors say it.
    pub fn label(self) -> &'static str {
        match self {
            RiskBand::Low => "low",
            RiskBand::LowMedium => "low–medium",
            RiskBand::Medium => "medium",
            RiskBand::High => "high",
        }
    }

    /// The response the band calls for.
    pub fn response(self) -> &'static str {
        match self {
            RiskBand::Low => "routine",
            RiskBand::LowMedium => "urgent review",
            RiskBand::Medium => "urgent response threshold",
            RiskBand::High => "emergency response",
        }
    }
}

/// The seven parameters' individual scores.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct News2Parameters {
    pub resp_rate: u8,
    pub spo2: u8,
    pub air_or_oxygen: u8,
    pub systolic_bp: u8,
    pub pulse: u8,
    pub consciousness: u8,
    pub temperature: u8,
}

impl News2Parameters {
    /// Each parameter's name and score, in chart order, for showing which ones scored.
    pub fn named(&self) -> [(&'static str, u8); 7] {
        [
            ("Respiration rate", self.resp_rate),
            ("SpO2", self.spo2),
            ("Air or oxygen", self.air_or_oxygen),
            ("Systolic BP", self.systolic_bp),
            ("Pulse", self.pulse),
            ("Consciousness", self.consciousness),
            ("Temperature", self.temperature),
        ]
    }

    fn total(&self) -> u8 {
        self.named().iter().map(|(_, s)| s).sum()
    }

    fn any_three(&self) -> bool {
        self.named().iter().any(|(_, s)| *s == 3)
    }
}

/// A whole NEWS2 score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct News2Score {
    pub total: u8,
    pub parameters: News2Parameters,
    pub risk: RiskBand,
    pub scale: Spo2Scale,
}

impl News2Score {
    /// The risk band, and the scale when it is scale 2: "medium", "low, SpO2 scale 2".
    pub fn risk_and_scale(&self) -> String {
        match self.scale {
            Spo2Scale::Scale1 => self.risk.label().to_owned(),
            Spo2Scale::Scale2 => format!("{}, SpO2 scale 2", self.risk.label()),
        }
    }
}

/// The result of scoring one observation set.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum News2 {
    /// All seven inputs present, adult patient.
    Complete(News2Score),
    /// Some inputs missing: `present` of 7 recorded. Never shown as a total.
    Incomplete { present: u8 },
    /// Patient under 16: NEWS2 is not validated for children.
    NotApplicable,
}

impl News2 {
    /// The total, only when complete.
    pub fn total(&self) -> Option<u8> {
        match self {
            News2::Complete(s) => Some(s.total),
            _ => None,
        }
    }

    /// The text to show in place of a score: "NEWS2 5 (medium)", "NEWS2 incomplete (5/7)" or
    /// "NEWS2 not used under 16".
    pub fn display(&self) -> String {
        match self {
            News2::Complete(s) => format!("NEWS2 {} ({})", s.total, s.risk_and_scale()),
            News2::Incomplete { present } => format!("NEWS2 incomplete ({present}/7)"),
            News2::NotApplicable => "NEWS2 not used under 16".to_owned(),
        }
    }
}

/// NEWS2 is for adults: 16 and over.
pub const NEWS2_MINIMUM_AGE_YEARS: u32 = 16;

/// Scores `obs`. `age_years` is the patient's age if known; an unknown age is scored as an
/// adult (the crew can see the age field is empty), a known age under 16 is not scored.
pub fn score(obs: &ObservationSet, scale: Spo2Scale, age_years: Option<u32>) -> News2 {
    if age_years.is_some_and(|a| a < NEWS2_MINIMUM_AGE_YEARS) {
        return News2::NotApplicable;
    }
    let present = [
        obs.resp_rate_per_min.is_some(),
        obs.spo2_percent.is_some(),
        obs.inspired.is_some(),
        obs.systolic_mmhg.is_some(),
        obs.pulse_bpm.is_some(),
        obs.acvpu.is_some(),
        obs.temperature_celsius.is_some(),
    ]
    .iter()
    .filter(|p| **p)
    .count() as u8;
    let (Some(rr), Some(spo2), Some(inspired), Some(sbp), Some(pulse), Some(acvpu), Some(temp)) = (
        obs.resp_rate_per_min,
        obs.spo2_percent,
        obs.inspired,
        obs.systolic_mmhg,
        obs.pulse_bpm,
        obs.acvpu,
        obs.temperature_celsius,
    ) else {
        return News2::Incomplete { present };
    };
    let parameters = News2Parameters {
        resp_rate: resp_rate_score(rr),
        spo2: match scale {
            Spo2Scale::Scale1 => spo2_scale1_score(spo2),
            Spo2Scale::Scale2 => spo2_scale2_score(spo2, inspired),
        },
        air_or_oxygen: if inspired.is_oxygen() { 2 } else { 0 },
        systolic_bp: systolic_score(sbp),
        pulse: pulse_score(pulse),
        consciousness: consciousness_score(acvpu),
        temperature: temperature_score(temp),
    };
    let total = parameters.total();
    let risk = if total >= 7 {
        RiskBand::High
    } else if total >= 5 {
        RiskBand::Medium
    } else if parameters.any_three() {
        RiskBand::LowMedium
    } else {
        RiskBand::Low
    };
    News2::Complete(News2Score {
        total,
        parameters,
        risk,
        scale,
    })
}

fn resp_rate_score(rr: RespRatePerMin) -> u8 {
    match rr.get() {
        0..=8 => 3,
        9..=11 => 1,
        12..=20 => 0,
        21..=24 => 2,
        _ => 3,
    }
}

fn spo2_scale1_score(spo2: Spo2Percent) -> u8 {
    match spo2.get() {
        0..=91 => 3,
        92..=93 => 2,
        94..=95 => 1,
        _ => 0,
    }
}

fn spo2_scale2_score(spo2: Spo2Percent, inspired: Inspired) -> u8 {
    match (spo2.get(), inspired.is_oxygen()) {
        (0..=83, _) => 3,
        (84..=85, _) => 2,
        (86..=87, _) => 1,
        (88..=92, _) => 0,
        (_, false) => 0,
        (93..=94, true) => 1,
        (95..=96, true) => 2,
        (_, true) => 3,
    }
}

fn systolic_score(sbp: SystolicMmHg) -> u8 {
    match sbp.get() {
        0..=90 => 3,
        91..=100 => 2,
        101..=110 => 1,
        111..=219 => 0,
        _ => 3,
    }
}

fn pulse_score(pulse: PulseBpm) -> u8 {
    match pulse.get() {
        0..=40 => 3,
        41..=50 => 1,
        51..=90 => 0,
        91..=110 => 1,
        111..=130 => 2,
        _ => 3,
    }
}

fn consciousness_score(acvpu: Acvpu) -> u8 {
    match acvpu {
        Acvpu::Alert => 0,
        Acvpu::NewConfusion | Acvpu::Voice | Acvpu::Pain | Acvpu::Unresponsive => 3,
    }
}

fn temperature_score(temp: TemperatureCelsius) -> u8 {
    match temp.tenths() {
        i32::MIN..=350 => 3,
        351..=360 => 1,
        361..=380 => 0,
        381..=390 => 1,
        _ => 2,
    }
}

#[cfg(test)]
mod tests {
    //! Expected scores are transcribed from CLINICAL.md (RCP NEWS2 Chart 1 and 2), not derived
    //! from the code above. Each row is one band edge.
    use super::*;
    use crate::model::observations::*;
    use chrono::Utc;

    /// A set that scores 0 on every parameter (scale 1): RR 16, SpO2 97 on air, SBP 120,
    /// pulse 70, alert, 37.0 °C.
    fn baseline() -> ObservationSet {
        let mut s = ObservationSet::empty(Utc::now());
        s.resp_rate_per_min = Some(RespRatePerMin::new(16).unwrap());
        s.spo2_percent = Some(Spo2Percent::new(97).unwrap());
        s.inspired = Some(Inspired::Air);
        s.systolic_mmhg = Some(SystolicMmHg::new(120).unwrap());
        s.pulse_bpm = Some(PulseBpm::new(70).unwrap());
        s.acvpu = Some(Acvpu::Alert);
        s.temperature_celsius = Some(TemperatureCelsius::new(37.0).unwrap());
        s
    }

    fn complete(obs: &ObservationSet, scale: Spo2Scale) -> News2Score {
        match score(obs, scale, Some(40)) {
            News2::Complete(s) => s,
            other => panic!("expected a complete score, got {other:?}"),
        }
    }

    #[test]
    fn baseline_scores_zero() {
        let s = complete(&baseline(), Spo2Scale::Scale1);
        assert_eq!(s.total, 0);
        assert_eq!(s.risk, RiskBand::Low);
    }

    #[test]
    fn respiration_rate_band_edges() {
        // (rate, expected score) from Chart 1: <=8:3, 9-11:1, 12-20:0, 21-24:2, >=25:3
        for (rate, expected) in [
            (0, 3),
            (8, 3),
            (9, 1),
            (11, 1),
            (12, 0),
            (20, 0),
            (21, 2),
            (24, 2),
            (25, 3),
            (300, 3),
        ] {
            let mut o = baseline();
            o.resp_rate_per_min = Some(RespRatePerMin::new(rate).unwrap());
            let s = complete(&o, Spo2Scale::Scale1);
            assert_eq!(s.parameters.resp_rate, expected, "RR {rate}");
            assert_eq!(s.total, expected, "RR {rate} total");
        }
    }

    #[test]
    fn spo2_scale1_band_edges() {
        // <=91:3, 92-93:2, 94-95:1, >=96:0
        for (spo2, expected) in [
            (0, 3),
            (91, 3),
            (92, 2),
            (93, 2),
            (94, 1),
            (95, 1),
            (96, 0),
            (100, 0),
        ] {
            let mut o = baseline();
            o.spo2_percent = Some(Spo2Percent::new(spo2).unwrap());
            assert_eq!(
                complete(&o, Spo2Scale::Scale1).parameters.spo2,
                expected,
                "SpO2 {spo2}"
            );
        }
    }

    #[test]
    fn spo2_scale1_ignores_oxygen_for_the_spo2_parameter() {
        let mut o = baseline();
        o.inspired = Some(Inspired::Oxygen {
            flow_l_per_min: None,
        });
        o.spo2_percent = Some(Spo2Percent::new(98).unwrap());
        let s = complete(&o, Spo2Scale::Scale1);
        assert_eq!(s.parameters.spo2, 0);
        assert_eq!(s.parameters.air_or_oxygen, 2);
        assert_eq!(s.total, 2);
    }

    #[test]
    fn spo2_scale2_band_edges_on_air() {
        // <=83:3, 84-85:2, 86-87:1, 88-92:0, >=93 on air:0
        for (spo2, expected) in [
            (83, 3),
            (84, 2),
            (85, 2),
            (86, 1),
            (87, 1),
            (88, 0),
            (92, 0),
            (93, 0),
            (97, 0),
            (100, 0),
        ] {
            let mut o = baseline();
            o.spo2_percent = Some(Spo2Percent::new(spo2).unwrap());
            let s = complete(&o, Spo2Scale::Scale2);
            assert_eq!(s.parameters.spo2, expected, "scale 2 air SpO2 {spo2}");
            assert_eq!(s.scale, Spo2Scale::Scale2);
        }
    }

    #[test]
    fn spo2_scale2_band_edges_on_oxygen() {
        // on oxygen: <=83:3, 84-85:2, 86-87:1, 88-92:0, 93-94:1, 95-96:2, >=97:3
        for (spo2, expected) in [
            (83, 3),
            (84, 2),
            (86, 1),
            (87, 1),
            (88, 0),
            (92, 0),
            (93, 1),
            (94, 1),
            (95, 2),
            (96, 2),
            (97, 3),
            (100, 3),
        ] {
            let mut o = baseline();
            o.inspired = Some(Inspired::Oxygen {
                flow_l_per_min: Some(OxygenFlowLitresPerMin::new(2.0).unwrap()),
            });
            o.spo2_percent = Some(Spo2Percent::new(spo2).unwrap());
            let s = complete(&o, Spo2Scale::Scale2);
            assert_eq!(s.parameters.spo2, expected, "scale 2 oxygen SpO2 {spo2}");
            assert_eq!(s.total, expected + 2, "oxygen adds 2");
        }
    }

    #[test]
    fn air_or_oxygen() {
        let o = baseline();
        assert_eq!(complete(&o, Spo2Scale::Scale1).parameters.air_or_oxygen, 0);
        let mut o = baseline();
        o.inspired = Some(Inspired::Oxygen {
            flow_l_per_min: None,
        });
        assert_eq!(complete(&o, Spo2Scale::Scale1).parameters.air_or_oxygen, 2);
    }

    #[test]
    fn systolic_band_edges() {
        // <=90:3, 91-100:2, 101-110:1, 111-219:0, >=220:3
        for (sbp, expected) in [
            (0, 3),
            (90, 3),
            (91, 2),
            (100, 2),
            (101, 1),
            (110, 1),
            (111, 0),
            (219, 0),
            (220, 3),
            (500, 3),
        ] {
            let mut o = baseline();
            o.systolic_mmhg = Some(SystolicMmHg::new(sbp).unwrap());
            assert_eq!(
                complete(&o, Spo2Scale::Scale1).parameters.systolic_bp,
                expected,
                "SBP {sbp}"
            );
        }
    }

    #[test]
    fn pulse_band_edges() {
        // <=40:3, 41-50:1, 51-90:0, 91-110:1, 111-130:2, >=131:3
        for (hr, expected) in [
            (0, 3),
            (40, 3),
            (41, 1),
            (50, 1),
            (51, 0),
            (90, 0),
            (91, 1),
            (110, 1),
            (111, 2),
            (130, 2),
            (131, 3),
            (500, 3),
        ] {
            let mut o = baseline();
            o.pulse_bpm = Some(PulseBpm::new(hr).unwrap());
            assert_eq!(
                complete(&o, Spo2Scale::Scale1).parameters.pulse,
                expected,
                "pulse {hr}"
            );
        }
    }

    #[test]
    fn consciousness_scores() {
        for (level, expected) in [
            (Acvpu::Alert, 0),
            (Acvpu::NewConfusion, 3),
            (Acvpu::Voice, 3),
            (Acvpu::Pain, 3),
            (Acvpu::Unresponsive, 3),
        ] {
            let mut o = baseline();
            o.acvpu = Some(level);
            assert_eq!(
                complete(&o, Spo2Scale::Scale1).parameters.consciousness,
                expected
            );
        }
    }

    #[test]
    fn temperature_band_edges_and_rounding() {
        // <=35.0:3, 35.1-36.0:1, 36.1-38.0:0, 38.1-39.0:1, >=39.1:2
        for (t, expected) in [
            (0.0, 3),
            (35.0, 3),
            (35.04, 3),
            (35.05, 1),
            (35.1, 1),
            (36.0, 1),
            (36.04, 1),
            (36.05, 0),
            (36.1, 0),
            (38.0, 0),
            (38.04, 0),
            (38.05, 1),
            (38.1, 1),
            (39.0, 1),
            (39.05, 2),
            (39.1, 2),
            (50.0, 2),
        ] {
            let mut o = baseline();
            o.temperature_celsius = Some(TemperatureCelsius::new(t).unwrap());
            assert_eq!(
                complete(&o, Spo2Scale::Scale1).parameters.temperature,
                expected,
                "temp {t}"
            );
        }
    }

    #[test]
    fn risk_bands() {
        // 0-4 low; a single 3 with total < 5 low-medium; 5-6 medium; >= 7 high.
        let mut o = baseline();
        o.pulse_bpm = Some(PulseBpm::new(120).unwrap()); // 2
        o.resp_rate_per_min = Some(RespRatePerMin::new(22).unwrap()); // 2
        let s = complete(&o, Spo2Scale::Scale1);
        assert_eq!((s.total, s.risk), (4, RiskBand::Low));

        let mut o = baseline();
        o.acvpu = Some(Acvpu::Voice); // 3
        let s = complete(&o, Spo2Scale::Scale1);
        assert_eq!((s.total, s.risk), (3, RiskBand::LowMedium));

        let mut o = baseline();
        o.acvpu = Some(Acvpu::Voice); // 3
        o.pulse_bpm = Some(PulseBpm::new(100).unwrap()); // 1
        let s = complete(&o, Spo2Scale::Scale1);
        assert_eq!((s.total, s.risk), (4, RiskBand::LowMedium));

        let mut o = baseline();
        o.pulse_bpm = Some(PulseBpm::new(120).unwrap()); // 2
        o.resp_rate_per_min = Some(RespRatePerMin::new(22).unwrap()); // 2
        o.temperature_celsius = Some(TemperatureCelsius::new(38.5).unwrap()); // 1
        let s = complete(&o, Spo2Scale::Scale1);
        assert_eq!((s.total, s.risk), (5, RiskBand::Medium));

        let mut o = baseline();
        o.acvpu = Some(Acvpu::Pain); // 3
        o.pulse_bpm = Some(PulseBpm::new(120).unwrap()); // 2
        o.temperature_celsius = Some(TemperatureCelsius::new(38.5).unwrap()); // 1
        let s = complete(&o, Spo2Scale::Scale1);
        assert_eq!((s.total, s.risk), (6, RiskBand::Medium));

        let mut o = baseline();
        o.pulse_bpm = Some(PulseBpm::new(140).unwrap()); // 3
        o.resp_rate_per_min = Some(RespRatePerMin::new(26).unwrap()); // 3
        o.temperature_celsius = Some(TemperatureCelsius::new(38.5).unwrap()); // 1
        let s = complete(&o, Spo2Scale::Scale1);
        assert_eq!((s.total, s.risk), (7, RiskBand::High));
    }

    #[test]
    fn maximum_total_is_twenty() {
        let mut o = ObservationSet::empty(Utc::now());
        o.resp_rate_per_min = Some(RespRatePerMin::new(30).unwrap());
        o.spo2_percent = Some(Spo2Percent::new(80).unwrap());
        o.inspired = Some(Inspired::Oxygen {
            flow_l_per_min: None,
        });
        o.systolic_mmhg = Some(SystolicMmHg::new(80).unwrap());
        o.pulse_bpm = Some(PulseBpm::new(150).unwrap());
        o.acvpu = Some(Acvpu::Unresponsive);
        o.temperature_celsius = Some(TemperatureCelsius::new(34.0).unwrap());
        assert_eq!(complete(&o, Spo2Scale::Scale1).total, 20);
    }

    #[test]
    fn missing_inputs_are_incomplete_never_a_partial_total() {
        let mut o = baseline();
        o.temperature_celsius = None;
        assert_eq!(
            score(&o, Spo2Scale::Scale1, Some(40)),
            News2::Incomplete { present: 6 }
        );
        assert_eq!(
            score(&o, Spo2Scale::Scale1, Some(40)).display(),
            "NEWS2 incomplete (6/7)"
        );
        o.inspired = None;
        o.acvpu = None;
        assert_eq!(
            score(&o, Spo2Scale::Scale1, Some(40)),
            News2::Incomplete { present: 4 }
        );
        let empty = ObservationSet::empty(Utc::now());
        assert_eq!(
            score(&empty, Spo2Scale::Scale1, None),
            News2::Incomplete { present: 0 }
        );
        assert_eq!(score(&o, Spo2Scale::Scale1, Some(40)).total(), None);
    }

    #[test]
    fn under_sixteen_is_not_applicable() {
        let o = baseline();
        assert_eq!(score(&o, Spo2Scale::Scale1, Some(15)), News2::NotApplicable);
        assert_eq!(score(&o, Spo2Scale::Scale1, Some(0)), News2::NotApplicable);
        assert_eq!(
            score(&o, Spo2Scale::Scale1, Some(15)).display(),
            "NEWS2 not used under 16"
        );
        assert!(matches!(
            score(&o, Spo2Scale::Scale1, Some(16)),
            News2::Complete(_)
        ));
        assert!(matches!(
            score(&o, Spo2Scale::Scale1, None),
            News2::Complete(_)
        ));
    }

    #[test]
    fn display_of_complete_score() {
        let mut o = baseline();
        o.acvpu = Some(Acvpu::Voice);
        assert_eq!(
            score(&o, Spo2Scale::Scale1, Some(70)).display(),
            "NEWS2 3 (low–medium)"
        );
    }
}
