//! The status feed for connected parties: what a case-system or ELT vendor
//! polls to learn the state of the service before its users call it.
//!
//! - [`feed`]: `GET /status/v1/summary.json` and `GET /status/v1/history.atom`
//!   on the front, after the one admission step and the policy gate
//!   ([`crate::policy::Use::Status`]: any agreement in this environment), with
//!   a strong `ETag` and `Cache-Control`; the JSON is shaped like Atlassian
//!   Statuspage's `summary.json`, the history an Atom feed ([`atom`]).
//! - This module: the facts behind it, all in the store
//!   ([`relay_store::StatusBoard`], shared by every node): one component per
//!   product × agency (SSBTEK × each provider, ELT × its provider), each node's
//!   view of them written by [`run`]; incidents opened by themselves when the
//!   disturbance tracker starts a disturbance and resolved when it ends
//!   ([`disturbance`]); maintenance windows agencies announce through their
//!   adapters' `Describe` ([`announce`]), counted as planned in the audit trail.
//! - [`admin`]: operators list incidents, open one, add updates, change the
//!   status and resolve through the admin listener (and the console).
//!
//! Nothing here is personal or names a municipality: component ids, agency
//! ids, times, fixed texts, operators' and agencies' public texts (checked to
//! hold no run of ten digits, the shape of an organisation or personal number).

pub mod admin;
pub mod announce;
pub mod atom;
pub mod feed;

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, DurationRound, TimeDelta, Utc};
use relay_store::{
    Change, ComponentState, ComponentStatus, Impact, IncidentStatus, NewIncident, StatusBoard,
    StatusStore, Text,
};

use crate::Relay;

pub use crate::config::StatusConfig;

/// One component of the feed: a product as one agency delivers it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Component {
    /// `ssbtek-af`, `elt-fk`, ...
    pub id: String,
    /// `SSBTEK × AF`.
    pub name: String,
    /// `ssbtek` or `elt`.
    pub product: &'static str,
    /// The provider (agency) id.
    pub provider: String,
}

/// The components of a configuration, in its providers' order: SSBTEK × each
/// provider, then ELT × its provider when ELT is offered.
pub fn components(config: &crate::config::Config) -> Vec<Component> {
    let mut out: Vec<Component> = config
        .providers
        .iter()
        .map(|p| component("ssbtek", "SSBTEK", p.id.as_str()))
        .collect();
    if let Some(elt) = &config.elt {
        out.push(component("elt", "ELT", elt.provider.as_str()));
    }
    out
}

fn component(product: &'static str, label: &str, provider: &str) -> Component {
    Component {
        id: format!("{product}-{}", provider.to_ascii_lowercase()),
        name: format!("{label} × {provider}"),
        product,
        provider: provider.to_owned(),
    }
}

/// What this node saw of one provider.
#[derive(Debug, Default, Clone)]
struct Seen {
    last_success: Option<DateTime<Utc>>,
    last_failure: Option<DateTime<Utc>>,
    /// The latest health report: (time, serving).
    health: Option<(DateTime<Utc>, bool)>,
}

/// What this node last wrote for one component.
#[derive(Debug, Clone, PartialEq)]
struct Written {
    status: ComponentStatus,
    last_success: Option<DateTime<Utc>>,
    last_failure: Option<DateTime<Utc>>,
    at: Instant,
}

/// The status feed's live part on one node; the facts are in [`Status::board`].
pub struct Status {
    pub board: StatusStore,
    seen: Mutex<BTreeMap<String, Seen>>,
    written: Mutex<BTreeMap<String, Written>>,
    /// When this node last saw no disturbance going on (for resolving an
    /// automatic incident that a stopped node left open).
    started: Instant,
}

/// The automatic key of the incident a disturbance opens.
pub const DISTURBANCE_KEY: &str = "disturbance";

/// Times in the feed are to the second; last success and failure to the
/// minute, so a busy service does not change the feed with every call.
fn minute(t: DateTime<Utc>) -> DateTime<Utc> {
    t.duration_trunc(TimeDelta::minutes(1)).unwrap_or(t)
}

impl Status {
    /// The board beside the node's store, or in memory without one.
    pub fn open(
        config: &crate::config::Config,
        store: Option<&relay_store::Store>,
    ) -> anyhow::Result<Self> {
        let board = match (store, &config.mailbox) {
            (Some(store), Some(m)) => StatusStore::open(store, &m.store)?,
            _ => StatusStore::in_memory()?,
        };
        Ok(Self {
            board,
            seen: Mutex::new(BTreeMap::new()),
            written: Mutex::new(BTreeMap::new()),
            started: Instant::now(),
        })
    }

    fn seen(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, Seen>> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// One provider call's outcome: answered (by data or the agency's own
    /// error) or failed on the relay's side.
    pub fn call(&self, provider: &str, failed: bool, now: DateTime<Utc>) {
        let mut seen = self.seen();
        let s = seen.entry(provider.to_owned()).or_default();
        if failed {
            s.last_failure = Some(now);
        } else {
            s.last_success = Some(now);
        }
    }

    /// One health check of a provider.
    pub fn health(&self, provider: &str, serving: bool, now: DateTime<Utc>) {
        let mut seen = self.seen();
        let s = seen.entry(provider.to_owned()).or_default();
        s.health = Some((now, serving));
        if serving {
            s.last_success = Some(now);
        } else {
            s.last_failure = Some(now);
        }
    }
}

/// A component's status as this node sees it now.
fn status_of(
    seen: Option<&Seen>,
    failing: bool,
    in_maintenance: bool,
    window: TimeDelta,
    now: DateTime<Utc>,
) -> ComponentStatus {
    if in_maintenance {
        return ComponentStatus::UnderMaintenance;
    }
    let recent = |t: Option<DateTime<Utc>>| t.is_some_and(|t| t >= now - window);
    let unhealthy = seen
        .and_then(|s| s.health)
        .is_some_and(|(t, ok)| !ok && t >= now - window);
    match (failing, unhealthy) {
        (_, true) => ComponentStatus::MajorOutage,
        (true, false) => ComponentStatus::PartialOutage,
        (false, false) if recent(seen.and_then(|s| s.last_failure)) => {
            ComponentStatus::DegradedPerformance
        }
        _ => ComponentStatus::Operational,
    }
}

/// Whether `provider` is in a maintenance window now: announced by its agency,
/// planned by an operator (the whole relay), or the operator's switch.
async fn in_maintenance(relay: &Relay, now: DateTime<Utc>) -> Vec<String> {
    let windows = feed::windows(relay, now).await.unwrap_or_default();
    windows
        .iter()
        .filter(|w| w.starts_at <= now && now < w.ends_at)
        .flat_map(|w| w.providers.clone())
        .collect()
}

/// Writes this node's view of every component to the board when it changed
/// (or at least once a minute).
async fn record_components(relay: &Relay, now: DateTime<Utc>) {
    let live = relay.live();
    let window = TimeDelta::seconds(i64::try_from(live.config.disturbance.window_s).unwrap_or(120));
    let failing: Vec<String> = relay.service_levels.failing();
    let maintenance = in_maintenance(relay, now).await;
    let switch = relay.operator.maintenance();
    let seen = relay.status.seen().clone();
    for c in components(&live.config) {
        let s = seen.get(&c.provider);
        let status = status_of(
            s,
            failing.contains(&c.provider),
            switch || maintenance.contains(&c.provider),
            window,
            now,
        );
        let wanted = Written {
            status,
            last_success: s.and_then(|s| s.last_success).map(minute),
            last_failure: s.and_then(|s| s.last_failure).map(minute),
            at: Instant::now(),
        };
        let due = {
            let written = relay
                .status
                .written
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            match written.get(&c.id) {
                Some(w) => {
                    w.status != wanted.status
                        || w.last_success != wanted.last_success
                        || w.last_failure != wanted.last_failure
                        || w.at.elapsed() >= Duration::from_secs(60)
                }
                None => true,
            }
        };
        if !due {
            continue;
        }
        let state = ComponentState {
            id: c.id.clone(),
            status,
            updated_at: now.duration_trunc(TimeDelta::seconds(1)).unwrap_or(now),
            last_success_at: wanted.last_success,
            last_failure_at: wanted.last_failure,
        };
        match relay.status.board.record_component(&state).await {
            Ok(()) => {
                relay
                    .status
                    .written
                    .lock()
                    .unwrap_or_else(|p| p.into_inner())
                    .insert(c.id.clone(), wanted);
            }
            Err(e) => {
                tracing::warn!(component = %c.id, error = %e, "status: component state not stored")
            }
        }
    }
}

/// The components of a disturbance's providers.
fn disturbance_components(config: &crate::config::Config, providers: &[String]) -> Vec<String> {
    components(config)
        .into_iter()
        .filter(|c| providers.contains(&c.provider))
        .map(|c| c.id)
        .collect()
}

/// The tracker's transitions: a started disturbance opens the automatic
/// incident (once, whatever node starts it), an ended one resolves it.
pub mod disturbance {
    use super::*;

    pub async fn started(relay: &Relay, record: &relay_audit::IncidentRecord) {
        let config = &relay.live().config;
        let providers = record.providers.join(", ");
        let new = NewIncident {
            auto_key: Some(DISTURBANCE_KEY.to_owned()),
            name: Text::new("Tillgänglig med störning", "Available with disturbance"),
            impact: Impact::Major,
            components: disturbance_components(config, &record.providers),
            started_at: record.start,
            text: Text::new(
                format!(
                    "Två eller flera myndigheter kan inte svara: {providers}. Svaren kommer i tid men utan deras uppgifter. Vi undersöker orsaken."
                ),
                format!(
                    "Two or more agencies cannot answer: {providers}. Answers arrive in time but without their data. We are investigating."
                ),
            ),
        };
        match relay.status.board.open_incident(&new, Utc::now()).await {
            Ok((incident, true)) => {
                tracing::warn!(event = "incident_opened", incident = %incident.id, "status: incident opened");
            }
            Ok((incident, false)) => {
                let change = Change {
                    status: None,
                    text: Text::new(
                        format!("Berörda myndigheter: {providers}."),
                        format!("Agencies affected: {providers}."),
                    ),
                    at: Utc::now(),
                    add_components: new.components.clone(),
                };
                if new
                    .components
                    .iter()
                    .any(|c| !incident.components.contains(c))
                    && let Err(e) = relay
                        .status
                        .board
                        .update_incident(incident.id, &change)
                        .await
                {
                    tracing::warn!(error = %e, "status: incident not updated");
                }
            }
            Err(e) => tracing::error!(error = %e, "status: incident could not be opened"),
        }
    }

    pub async fn ended(relay: &Relay, record: &relay_audit::IncidentRecord) {
        let components = disturbance_components(&relay.live().config, &record.providers);
        resolve(relay, components).await;
    }

    /// Resolves the open automatic incident, if any.
    pub(super) async fn resolve(relay: &Relay, components: Vec<String>) {
        let open = match relay.status.board.open_with_key(DISTURBANCE_KEY).await {
            Ok(Some(i)) => i,
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(error = %e, "status: open incident not read");
                return;
            }
        };
        let change = Change {
            status: Some(IncidentStatus::Resolved),
            text: Text::new(
                "Alla myndigheter svarar igen. Störningen är över.",
                "Every agency answers again. The disturbance is over.",
            ),
            at: Utc::now(),
            add_components: components,
        };
        match relay.status.board.update_incident(open.id, &change).await {
            Ok(_) => {
                tracing::info!(event = "incident_resolved", incident = %open.id, "status: incident resolved")
            }
            Err(e) => tracing::warn!(error = %e, "status: incident not resolved"),
        }
    }
}

/// The status loop of a node, until the process ends: every 5 s its view of
/// the components, an automatic incident left open by a node that stopped in
/// a disturbance, the adapters' announced maintenance every
/// `status.maintenance_poll_s`, and once an hour the history beyond
/// `status.history_days`.
pub async fn run(relay: Arc<Relay>) {
    const TICK: Duration = Duration::from_secs(5);
    let mut next_poll = tokio::time::Instant::now();
    let mut next_sweep = tokio::time::Instant::now();
    let mut quiet_since: Option<Instant> = Some(relay.status.started);
    loop {
        let now = Utc::now();
        let config = relay.live().config.clone();
        if tokio::time::Instant::now() >= next_poll {
            announce::poll(&relay).await;
            next_poll = tokio::time::Instant::now()
                + Duration::from_secs(config.status.maintenance_poll_s.max(1));
        }
        record_components(&relay, now).await;
        // No disturbance here for longer than the tracker's window, yet an
        // automatic incident is open: its node stopped before it could end it.
        if relay.service_levels.disturbance_ongoing() {
            quiet_since = None;
        } else {
            let since = *quiet_since.get_or_insert_with(Instant::now);
            let window = Duration::from_secs(config.disturbance.window_s.saturating_mul(2));
            if since.elapsed() >= window
                && let Ok(Some(_)) = relay.status.board.open_with_key(DISTURBANCE_KEY).await
            {
                disturbance::resolve(&relay, Vec::new()).await;
            }
        }
        if tokio::time::Instant::now() >= next_sweep {
            let before = now - TimeDelta::days(i64::from(config.status.history_days));
            match relay.status.board.sweep_status(before).await {
                Ok(n) if n > 0 => tracing::info!(removed = n, "status: old history removed"),
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "status: history sweep failed"),
            }
            next_sweep = tokio::time::Instant::now() + Duration::from_secs(3600);
        }
        tokio::time::sleep(TICK).await;
    }
}

/// Whether a public text (an operator's update, an agency's description) may
/// be shown to every connected party: bounded, and without a run of ten or
/// more digits (an organisation number or a personal number).
pub fn public_text_ok(text: &str, max_chars: usize) -> Result<(), &'static str> {
    if text.chars().count() > max_chars {
        return Err("too long");
    }
    if text.chars().any(|c| c.is_control() && c != '\n') {
        return Err("control characters");
    }
    let mut run = 0;
    for c in text.chars() {
        if c.is_ascii_digit() {
            run += 1;
            if run >= 10 {
                return Err("ten or more digits in a row (an organisation or personal number?)");
            }
        } else if c != '-' && c != ' ' {
            run = 0;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_public_text_with_a_number_shaped_like_an_identity_is_refused() {
        assert!(public_text_ok("Underhåll 18:00-20:00 den 8 december 2026", 200).is_ok());
        assert!(public_text_ok("Kontakta 2120002411", 200).is_err());
        assert!(public_text_ok("person 19121212-1212", 200).is_err());
        assert!(public_text_ok("org 212000 2411", 200).is_err());
        assert!(public_text_ok(&"x".repeat(201), 200).is_err());
        assert!(public_text_ok("bell\u{7}", 200).is_err());
    }

    #[test]
    fn a_component_is_down_when_unhealthy_partial_when_failing_and_degraded_after_a_failure() {
        let now = Utc::now();
        let window = TimeDelta::seconds(120);
        let seen = |health: Option<bool>, failure: bool| Seen {
            last_success: Some(now),
            last_failure: failure.then_some(now - TimeDelta::seconds(10)),
            health: health.map(|ok| (now, ok)),
        };
        assert_eq!(
            status_of(Some(&seen(Some(false), true)), true, false, window, now),
            ComponentStatus::MajorOutage
        );
        assert_eq!(
            status_of(Some(&seen(Some(true), true)), true, false, window, now),
            ComponentStatus::PartialOutage
        );
        assert_eq!(
            status_of(Some(&seen(Some(true), true)), false, false, window, now),
            ComponentStatus::DegradedPerformance
        );
        assert_eq!(
            status_of(Some(&seen(Some(true), false)), false, false, window, now),
            ComponentStatus::Operational
        );
        assert_eq!(
            status_of(Some(&seen(Some(false), true)), true, true, window, now),
            ComponentStatus::UnderMaintenance
        );
        assert_eq!(
            status_of(None, false, false, window, now),
            ComponentStatus::Operational
        );
    }
}
