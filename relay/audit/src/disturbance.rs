//! Disturbance as a live state: which providers are failing right now, and
//! whether two or more are failing at once (SSBTEK Bilaga 4, 3.8: "tillgänglig
//! med störning"; an incident is then opened).
//!
//! Pure and clock-injected: the relay feeds it every provider call and health
//! report with the time it happened, and calls [`DisturbanceTracker::tick`] on a
//! timer so that a quiet window can end a disturbance. Every method returns the
//! [`Transition`] it caused, if any; the relay logs it, sets its gauge and writes
//! its [`IncidentRecord`] to the audit trail. Nothing here does I/O.
//!
//! Definitions (all configurable, [`DisturbanceConfig`]):
//!
//! - A call **failed** when its slot would hold a relay-side error (`kalla=SSBT`:
//!   timeout, unreachable, overloaded, invalid answer). A provider's own error
//!   (`kalla=BT`) is an answer, not a failure; a withdrawn provider was not called.
//! - A provider is **failing** when, within the last `window`, it had at least
//!   `min_calls` calls of which more than `failing_share` failed, or when its
//!   latest health report within the window said NOT_SERVING.
//! - A **disturbance** lasts while at least `min_failing_providers` providers are
//!   failing at once. It starts at the first evaluation that finds them and ends
//!   at the first that does not; the providers of an ended disturbance are every
//!   provider that was failing at some evaluation during it.
//!
//! One request in which two providers happened to fail is two failed calls, one
//! per provider: below `min_calls`, so single coincident errors never make a
//! period.

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::record::{IncidentRecord, Outcome, SlotSide};

/// When providers count as failing and when that makes a disturbance. Reads
/// from the relay's TOML (every key optional, defaults below).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DisturbanceConfig {
    /// How far back calls and health reports count, in seconds.
    pub window_s: u64,
    /// Fewer calls than this in the window never make a provider failing by its
    /// calls (its health still can).
    pub min_calls: u32,
    /// A provider is failing when more than this share (0..1) of its calls in the
    /// window failed.
    pub failing_share: f64,
    /// Failing providers at once that make a disturbance.
    pub min_failing_providers: usize,
}

impl Default for DisturbanceConfig {
    /// Two minutes, at least three calls, more than half failed, two providers.
    ///
    /// Two minutes holds two of the prober's rounds (one a minute by default),
    /// so a provider that is down is seen as failing even when no caller asks;
    /// three calls keep one unlucky request (or two) from making a provider
    /// failing; "more than half" is the terms' "cannot deliver" read as "mostly".
    fn default() -> Self {
        Self {
            window_s: 120,
            min_calls: 3,
            failing_share: 0.5,
            min_failing_providers: 2,
        }
    }
}

/// A change of the disturbance state. Write [`Transition::record`] to the audit
/// trail.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Transition {
    /// A disturbance began: the record has no `end`, and the providers failing now.
    Started(IncidentRecord),
    /// It ended: the record has `start`, `end` and every provider that failed in it.
    Ended(IncidentRecord),
}

impl Transition {
    pub fn record(&self) -> &IncidentRecord {
        match self {
            Self::Started(r) | Self::Ended(r) => r,
        }
    }
}

/// What one provider did recently.
#[derive(Debug, Default)]
struct Recent {
    /// (time, failed), oldest first.
    calls: VecDeque<(DateTime<Utc>, bool)>,
    failed: u32,
    /// The latest health report: (time, serving).
    health: Option<(DateTime<Utc>, bool)>,
}

/// A bound on remembered calls per provider, far above what a window holds at
/// the agreement's capacity (3 calls/s × 120 s); only memory is protected by it.
const MAX_CALLS_REMEMBERED: usize = 20_000;

impl Recent {
    fn prune(&mut self, not_before: DateTime<Utc>) {
        while let Some(&(t, failed)) = self.calls.front() {
            if t >= not_before && self.calls.len() <= MAX_CALLS_REMEMBERED {
                break;
            }
            self.calls.pop_front();
            if failed {
                self.failed -= 1;
            }
        }
    }

    fn is_failing(&self, config: &DisturbanceConfig, not_before: DateTime<Utc>) -> bool {
        let unhealthy = matches!(self.health, Some((t, false)) if t >= not_before);
        let calls = self.calls.len() as f64;
        let by_calls = self.calls.len() as u64 >= u64::from(config.min_calls)
            && f64::from(self.failed) > config.failing_share * calls;
        unhealthy || by_calls
    }
}

/// The disturbance going on now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Ongoing {
    pub start: DateTime<Utc>,
    /// Every provider failing at some evaluation since `start`, sorted.
    pub providers: Vec<String>,
}

/// Providers' recent calls and health, and the disturbance they make.
#[derive(Debug)]
pub struct DisturbanceTracker {
    config: DisturbanceConfig,
    providers: BTreeMap<String, Recent>,
    failing: Vec<String>,
    ongoing: Option<(DateTime<Utc>, BTreeSet<String>)>,
}

impl DisturbanceTracker {
    pub fn new(config: DisturbanceConfig) -> Self {
        Self {
            config,
            providers: BTreeMap::new(),
            failing: Vec::new(),
            ongoing: None,
        }
    }

    /// One provider call and its outcome, at `now`. Withdrawn calls are ignored.
    pub fn call(
        &mut self,
        provider: &str,
        outcome: Outcome,
        now: DateTime<Utc>,
    ) -> Option<Transition> {
        let side = outcome.side();
        if side != SlotSide::NotAsked {
            let recent = self.provider(provider);
            let failed = side == SlotSide::Relay;
            recent.calls.push_back((now, failed));
            if failed {
                recent.failed += 1;
            }
        }
        self.tick(now)
    }

    /// A health report (gRPC health: SERVING or not) for one provider, at `now`.
    pub fn health(
        &mut self,
        provider: &str,
        serving: bool,
        now: DateTime<Utc>,
    ) -> Option<Transition> {
        self.provider(provider).health = Some((now, serving));
        self.tick(now)
    }

    /// Re-evaluates at `now` (call it on a timer, e.g. every few seconds, so that
    /// a disturbance ends even when no calls come).
    pub fn tick(&mut self, now: DateTime<Utc>) -> Option<Transition> {
        let window = i64::try_from(self.config.window_s)
            .ok()
            .and_then(chrono::Duration::try_seconds)
            .unwrap_or(chrono::Duration::MAX);
        let not_before = now
            .checked_sub_signed(window)
            .unwrap_or(DateTime::<Utc>::MIN_UTC);
        let config = &self.config;
        self.failing = self
            .providers
            .iter_mut()
            .filter_map(|(id, recent)| {
                recent.prune(not_before);
                recent.is_failing(config, not_before).then(|| id.clone())
            })
            .collect();
        let disturbed = self.failing.len() >= self.config.min_failing_providers.max(1);
        match (&mut self.ongoing, disturbed) {
            (None, true) => {
                self.ongoing = Some((now, self.failing.iter().cloned().collect()));
                Some(Transition::Started(IncidentRecord {
                    time: now,
                    start: now,
                    end: None,
                    providers: self.failing.clone(),
                }))
            }
            (Some((_, seen)), true) => {
                seen.extend(self.failing.iter().cloned());
                None
            }
            (Some(_), false) => {
                let (start, seen) = self.ongoing.take()?;
                Some(Transition::Ended(IncidentRecord {
                    time: now,
                    start,
                    end: Some(now),
                    providers: seen.into_iter().collect(),
                }))
            }
            (None, false) => None,
        }
    }

    /// The providers failing at the latest evaluation, sorted.
    pub fn failing(&self) -> &[String] {
        &self.failing
    }

    /// The disturbance going on, if any.
    pub fn ongoing(&self) -> Option<Ongoing> {
        self.ongoing.as_ref().map(|(start, seen)| Ongoing {
            start: *start,
            providers: seen.iter().cloned().collect(),
        })
    }

    fn provider(&mut self, id: &str) -> &mut Recent {
        self.providers.entry(id.to_owned()).or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn t(s: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 11, 2, 8, 0, 0).unwrap() + chrono::Duration::seconds(s.into())
    }

    fn tracker() -> DisturbanceTracker {
        DisturbanceTracker::new(DisturbanceConfig::default())
    }

    #[test]
    fn one_request_with_two_failed_providers_is_not_a_disturbance() {
        let mut d = tracker();
        for s in 0..100 {
            assert_eq!(d.call("AF", Outcome::Data, t(s)), None);
            assert_eq!(d.call("CSN", Outcome::Data, t(s)), None);
        }
        assert_eq!(d.call("AF", Outcome::Timeout, t(100)), None);
        assert_eq!(d.call("CSN", Outcome::Unavailable, t(100)), None);
        // Even alone in a quiet window, one failure each is below min_calls.
        let mut quiet = tracker();
        assert_eq!(quiet.call("AF", Outcome::Timeout, t(0)), None);
        assert_eq!(quiet.call("CSN", Outcome::Timeout, t(0)), None);
        assert_eq!(quiet.call("FK", Outcome::Timeout, t(0)), None);
        assert!(quiet.failing().is_empty());
        assert_eq!(quiet.ongoing(), None);
    }

    #[test]
    fn two_providers_mostly_failing_start_a_disturbance_and_recovery_ends_it() {
        let mut d = tracker();
        // AF fails from t=10; CSN from t=20. Three calls make a provider failing.
        for s in [10, 11] {
            assert_eq!(d.call("AF", Outcome::Timeout, t(s)), None);
        }
        assert_eq!(d.call("AF", Outcome::Timeout, t(12)), None);
        assert_eq!(d.failing(), ["AF"]);
        assert_eq!(d.call("CSN", Outcome::Unavailable, t(20)), None);
        assert_eq!(d.call("CSN", Outcome::Unavailable, t(21)), None);
        let started = d.call("CSN", Outcome::Unavailable, t(22)).unwrap();
        assert_eq!(
            started,
            Transition::Started(IncidentRecord {
                time: t(22),
                start: t(22),
                end: None,
                providers: vec!["AF".into(), "CSN".into()],
            })
        );
        // FK joins for a while; BT errors and data are not failures.
        assert_eq!(d.health("FK", false, t(30)), None);
        assert_eq!(d.call("SKV", Outcome::ProviderError, t(31)), None);
        assert_eq!(d.call("SKV", Outcome::ProviderError, t(32)), None);
        assert_eq!(d.call("SKV", Outcome::ProviderError, t(33)), None);
        assert_eq!(d.failing(), ["AF", "CSN", "FK"]);
        assert_eq!(d.health("FK", true, t(40)), None);
        assert_eq!(d.failing(), ["AF", "CSN"]);
        // AF recovers: at t=52 its 3 failures are no longer more than half of 6.
        assert_eq!(d.call("AF", Outcome::Data, t(50)), None);
        assert_eq!(d.call("AF", Outcome::Data, t(51)), None);
        let ended = d.call("AF", Outcome::Data, t(52)).unwrap();
        assert_eq!(
            ended,
            Transition::Ended(IncidentRecord {
                time: t(52),
                start: t(22),
                end: Some(t(52)),
                providers: vec!["AF".into(), "CSN".into(), "FK".into()],
            })
        );
        assert_eq!(d.failing(), ["CSN"]);
        assert_eq!(d.ongoing(), None);
    }

    #[test]
    fn a_quiet_window_ends_a_disturbance_on_the_timer() {
        let mut d = tracker();
        let mut started = None;
        for s in 0..3 {
            d.call("AF", Outcome::Timeout, t(s));
            started = started.or(d.call("CSN", Outcome::Timeout, t(s)));
        }
        assert!(matches!(started, Some(Transition::Started(_))));
        // At t=120 all three failures of each are still inside the 120 s window;
        // at t=121 the first has left it and two are below min_calls.
        assert_eq!(d.tick(t(120)), None);
        let ended = d.tick(t(121)).unwrap();
        assert_eq!(
            ended,
            Transition::Ended(IncidentRecord {
                time: t(121),
                start: t(2),
                end: Some(t(121)),
                providers: vec!["AF".into(), "CSN".into()],
            })
        );
        assert_eq!(d.tick(t(200)), None);
    }

    #[test]
    fn health_not_serving_makes_a_provider_failing_without_calls_until_it_is_stale() {
        let mut d = tracker();
        assert_eq!(d.health("AF", false, t(0)), None);
        let started = d.health("CSN", false, t(5)).unwrap();
        assert_eq!(started.record().providers, ["AF", "CSN"]);
        assert_eq!(started.record().end, None);
        // AF's report goes stale after the window; nothing renewed it.
        assert_eq!(d.tick(t(120)), None);
        let ended = d.tick(t(121)).unwrap();
        assert_eq!(ended.record().start, t(5));
        assert_eq!(ended.record().end, Some(t(121)));
    }

    #[test]
    fn withdrawn_calls_are_not_counted_and_the_threshold_is_configurable() {
        let mut d = DisturbanceTracker::new(DisturbanceConfig {
            min_failing_providers: 3,
            min_calls: 1,
            ..DisturbanceConfig::default()
        });
        for _ in 0..5 {
            d.call("TNS", Outcome::Withdrawn, t(0));
        }
        d.call("AF", Outcome::Timeout, t(1));
        assert_eq!(d.call("CSN", Outcome::Timeout, t(1)), None);
        assert_eq!(d.failing(), ["AF", "CSN"]);
        assert!(matches!(
            d.call("FK", Outcome::InvalidAnswer, t(1)),
            Some(Transition::Started(_))
        ));
    }

    /// The month in small: random single errors (1 %, some of them two
    /// providers in one request) and one real two-hour outage of two agencies
    /// make exactly one disturbance, not ten.
    #[test]
    fn random_errors_and_one_real_outage_make_exactly_one_period() {
        let mut d = tracker();
        let providers = ["AF", "CSN", "FK", "SKV", "SO", "TNS", "MIV"];
        let mut transitions = Vec::new();
        // One request every 10 s for eight hours.
        for i in 0..2880u32 {
            let now = t(i * 10);
            let hours = f64::from(i * 10) / 3600.0;
            for p in providers {
                let down = (3.0..5.0).contains(&hours) && (p == "AF" || p == "CSN");
                let coincident = i % 97 == 0 && (p == "FK" || p == "SKV");
                let single = i % 89 == 0 && p == "AF";
                let outcome = if down || coincident || single {
                    Outcome::Timeout
                } else {
                    Outcome::Data
                };
                transitions.extend(d.call(p, outcome, now));
            }
        }
        assert_eq!(
            transitions,
            [
                // Seven of the thirteen calls in the window failed.
                Transition::Started(IncidentRecord {
                    time: t(3 * 3600 + 60),
                    start: t(3 * 3600 + 60),
                    end: None,
                    providers: vec!["AF".into(), "CSN".into()],
                }),
                // Seven of thirteen answered again.
                Transition::Ended(IncidentRecord {
                    time: t(5 * 3600 + 60),
                    start: t(3 * 3600 + 60),
                    end: Some(t(5 * 3600 + 60)),
                    providers: vec!["AF".into(), "CSN".into()],
                }),
            ]
        );
    }
}
