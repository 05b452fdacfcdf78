//! Scenarios: scripted trouble per agency and per person, from TOML, changeable
//! at run time through the admin endpoint.
//!
//! ```toml
//! [agency.FK]
//! latency = { kind = "lognormal", median_ms = 400, sigma = 0.6, max_ms = 20000 }
//! error_rate = 0.05            # share of calls answered with the agency's error
//! error_code = "INTERNT_FEL"   # optional; the agency's default otherwise
//! hang_rate = 0.01             # share of calls never answered
//! down = false                 # manual outage switch
//! outages = [{ start_s = 60, duration_s = 30 }]   # relative to process start
//!
//! [[override]]                 # per person (always wins)
//! person = "191212121212"
//! agency = "CSN"
//! error = "CSN-9"              # or: hang = true, or: latency_ms = 20000,
//!                              # or: unknown = true (the agency's no-hit answer)
//!                              # or: records = 2000 (a large answer)
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::Agency;

/// A latency distribution.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "kind", rename_all = "lowercase", deny_unknown_fields)]
pub enum Latency {
    Fixed {
        ms: u64,
    },
    Uniform {
        min_ms: u64,
        max_ms: u64,
    },
    Lognormal {
        median_ms: u64,
        sigma: f64,
        #[serde(default = "default_cap")]
        max_ms: u64,
    },
}

fn default_cap() -> u64 {
    60_000
}

impl Default for Latency {
    fn default() -> Self {
        Self::Uniform {
            min_ms: 20,
            max_ms: 120,
        }
    }
}

impl Latency {
    /// A sample, from two uniform numbers in [0, 1).
    pub fn sample(&self, u1: f64, u2: f64) -> Duration {
        let ms = match *self {
            Self::Fixed { ms } => ms as f64,
            Self::Uniform { min_ms, max_ms } => {
                min_ms as f64 + u1 * (max_ms.saturating_sub(min_ms)) as f64
            }
            Self::Lognormal {
                median_ms,
                sigma,
                max_ms,
            } => {
                // Box-Muller for a standard normal.
                let z = (-2.0 * (1.0 - u1).ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos();
                (median_ms as f64 * (sigma * z).exp()).min(max_ms as f64)
            }
        };
        Duration::from_millis(ms.max(0.0) as u64)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Outage {
    pub start_s: u64,
    pub duration_s: u64,
}

/// Behaviour of one agency.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct AgencyScenario {
    pub latency: Latency,
    pub error_rate: f64,
    pub error_code: Option<String>,
    pub hang_rate: f64,
    pub down: bool,
    pub outages: Vec<Outage>,
}

/// A per-person override.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Override {
    /// 12 digits.
    pub person: String,
    pub agency: Agency,
    #[serde(default)]
    pub error: Option<String>,
    #[serde(default)]
    pub hang: bool,
    #[serde(default)]
    pub latency_ms: Option<u64>,
    /// The base service does not know this person: it answers, with nothing.
    #[serde(default)]
    pub unknown: bool,
    /// The base service answers with about this many records (vehicles,
    /// decisions, payments, ...): a large answer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub records: Option<u32>,
}

/// A whole scenario.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    #[serde(default)]
    pub agency: BTreeMap<Agency, AgencyScenario>,
    #[serde(default, rename = "override")]
    pub overrides: Vec<Override>,
}

/// What to do with one call.
#[derive(Debug, Clone, PartialEq)]
pub enum Plan {
    Answer {
        after: Duration,
    },
    Error {
        code: Option<String>,
        after: Duration,
    },
    Hang,
    Down,
}

impl Scenario {
    /// Parses and checks a scenario; the error names what is wrong.
    pub fn parse(text: &str) -> Result<Self, String> {
        let s: Scenario = toml::from_str(text).map_err(|e| e.to_string())?;
        for (a, sc) in &s.agency {
            for (name, v) in [("error_rate", sc.error_rate), ("hang_rate", sc.hang_rate)] {
                if !(0.0..=1.0).contains(&v) {
                    return Err(format!("agency.{}.{name}: must be between 0 and 1", a.id()));
                }
            }
            if let Latency::Uniform { min_ms, max_ms } = sc.latency
                && min_ms > max_ms
            {
                return Err(format!("agency.{}.latency: min_ms > max_ms", a.id()));
            }
        }
        for (i, o) in s.overrides.iter().enumerate() {
            if relay_ident::Personnummer::parse(&o.person).is_err() {
                return Err(format!("override[{i}].person: not a valid personnummer"));
            }
        }
        Ok(s)
    }

    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(self).unwrap_or_default()
    }

    /// Decides what happens to a call; `u` are three uniform numbers in [0, 1).
    pub fn plan(&self, agency: Agency, person: &str, uptime: Duration, u: [f64; 4]) -> Plan {
        let sc = self.agency.get(&agency).cloned().unwrap_or_default();
        let latency = sc.latency.sample(u[0], u[1]);
        if let Some(o) = self
            .overrides
            .iter()
            .find(|o| o.agency == agency && o.person == person)
        {
            if o.hang {
                return Plan::Hang;
            }
            let after = o.latency_ms.map(Duration::from_millis).unwrap_or(latency);
            return match &o.error {
                Some(code) => Plan::Error {
                    code: Some(code.clone()),
                    after,
                },
                None => Plan::Answer { after },
            };
        }
        if self.is_down(agency, uptime) {
            return Plan::Down;
        }
        if u[2] < sc.hang_rate {
            return Plan::Hang;
        }
        if u[3] < sc.error_rate {
            return Plan::Error {
                code: sc.error_code.clone(),
                after: latency,
            };
        }
        Plan::Answer { after: latency }
    }

    /// Whether an override makes `person` unknown to `agency`.
    pub fn is_unknown(&self, agency: Agency, person: &str) -> bool {
        self.overrides
            .iter()
            .any(|o| o.agency == agency && o.person == person && o.unknown)
    }

    /// How many records an override asks `agency` to answer `person` with.
    pub fn records(&self, agency: Agency, person: &str) -> Option<u32> {
        self.overrides
            .iter()
            .find(|o| o.agency == agency && o.person == person && o.records.is_some())
            .and_then(|o| o.records)
    }

    /// Whether the agency is in an outage (manual or scheduled).
    pub fn is_down(&self, agency: Agency, uptime: Duration) -> bool {
        self.agency.get(&agency).is_some_and(|sc| {
            sc.down
                || sc.outages.iter().any(|o| {
                    let t = uptime.as_secs();
                    t >= o.start_s && t < o.start_s + o.duration_s
                })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Slot;

    #[test]
    fn the_shipped_scenarios_parse() {
        for f in ["default.toml", "bad-day.toml"] {
            let text =
                std::fs::read_to_string(format!("{}/scenarios/{f}", env!("CARGO_MANIFEST_DIR")))
                    .unwrap();
            Scenario::parse(&text).unwrap_or_else(|e| panic!("{f}: {e}"));
        }
    }

    #[test]
    fn invalid_scenarios_are_refused_with_the_reason() {
        let e = Scenario::parse("[agency.FK]\nerror_rate = 2.0\n").unwrap_err();
        assert!(e.contains("agency.FK.error_rate"), "{e}");
        let e = Scenario::parse("[agency.XX]\n").unwrap_err();
        assert!(e.contains("XX") || e.contains("unknown variant"), "{e}");
        let e = Scenario::parse(
            "[[override]]\nperson = \"191212121213\"\nagency = \"CSN\"\nhang = true\n",
        )
        .unwrap_err();
        assert!(e.contains("override[0].person"), "{e}");
    }

    #[test]
    fn overrides_win_and_rates_apply() {
        let s = Scenario::parse(
            "[agency.CSN]\nerror_rate = 1.0\n[[override]]\nperson = \"191212121212\"\nagency = \"CSN\"\nhang = true\n",
        )
        .unwrap();
        let zero = Duration::ZERO;
        assert_eq!(
            s.plan(Agency::Ssbtek(Slot::Csn), "191212121212", zero, [0.5; 4]),
            Plan::Hang
        );
        assert!(matches!(
            s.plan(Agency::Ssbtek(Slot::Csn), "190308189802", zero, [0.5; 4]),
            Plan::Error { .. }
        ));
        assert!(matches!(
            s.plan(Agency::Ssbtek(Slot::Tns), "190308189802", zero, [0.5; 4]),
            Plan::Answer { .. }
        ));
    }

    #[test]
    fn an_unknown_override_answers_normally_for_that_person_and_agency_only() {
        let s = Scenario::parse(
            "[[override]]\nperson = \"191212121212\"\nagency = \"TNS\"\nunknown = true\n",
        )
        .unwrap();
        assert!(s.is_unknown(Agency::Ssbtek(Slot::Tns), "191212121212"));
        assert!(!s.is_unknown(Agency::Ssbtek(Slot::Csn), "191212121212"));
        assert!(!s.is_unknown(Agency::Ssbtek(Slot::Tns), "190308189802"));
        assert!(matches!(
            s.plan(
                Agency::Ssbtek(Slot::Tns),
                "191212121212",
                Duration::ZERO,
                [0.5; 4]
            ),
            Plan::Answer { .. }
        ));
    }

    #[test]
    fn outage_windows_are_relative_to_start() {
        let s =
            Scenario::parse("[agency.SO]\noutages = [{ start_s = 10, duration_s = 5 }]\n").unwrap();
        assert!(!s.is_down(Agency::Ssbtek(Slot::So), Duration::from_secs(9)));
        assert!(s.is_down(Agency::Ssbtek(Slot::So), Duration::from_secs(12)));
        assert!(!s.is_down(Agency::Ssbtek(Slot::So), Duration::from_secs(15)));
    }
}
