//! Request outcomes in the audit trail, whatever the way in: a refusal (the
//! caller's fault, with its code), a failure (the relay's or a provider's), an
//! overload. Products write their own answered outcomes (they know the persons
//! and the provider calls); everything refused before or outside a product is
//! written here, from [`crate::admission::refuse`]. Records are pseudonymous:
//! the organisation, the code, who failed; never content.

use std::time::Instant;

use crate::Relay;
use crate::failure::Failure;
use crate::identity::Caller;

/// The audit trail could not take an answer's record, and `[audit]
/// on_failure = "refuse"`: the answer must not be released.
#[derive(Debug)]
pub struct NotAudited;

impl NotAudited {
    /// The text every way in gives the caller: the relay's fault, no detail
    /// of the disk (that is in the relay's log).
    pub const TEXT: &'static str = "the relay cannot write its audit trail; no answer is released until it can (the relay's operator has been alerted)";
}

/// Writes the record of an answer (an SSBTEK answer, an ELT receipt) before
/// the answer is released. With `[audit] on_failure = "refuse"` (the default)
/// it waits until the record is written and fsynced (group commit: concurrent
/// requests share one fsync) and fails when it cannot be; with `continue` it
/// only queues the record and a loss is logged and counted.
pub async fn answered(relay: &Relay, record: relay_audit::RequestRecord) -> Result<(), NotAudited> {
    let Some((log, _)) = &relay.audit else {
        return Ok(());
    };
    let tx = record.tx_id.clone();
    let refuse = relay
        .live()
        .config
        .audit
        .as_ref()
        .is_none_or(|a| a.on_failure == crate::config::AuditOnFailure::Refuse);
    let written = if refuse {
        log.record_durable(record).await
    } else {
        log.record(record).await
    };
    match written {
        Ok(()) => Ok(()),
        Err(e) if refuse => {
            tracing::error!(tx, error = %e, "audit record could not be written: answer refused");
            Err(NotAudited)
        }
        Err(e) => {
            tracing::error!(tx, error = %e, "audit record could not be written (on_failure = continue: answered anyway)");
            Ok(())
        }
    }
}

/// Whether the audit trail stops this node from answering: `on_failure =
/// "refuse"` and the last write failed and a fresh check (reopen, fsync)
/// fails too. `/readyz` is 503 then.
pub async fn audit_unwritable(relay: &Relay) -> bool {
    let Some((log, _)) = &relay.audit else {
        return false;
    };
    let refuse = relay
        .live()
        .config
        .audit
        .as_ref()
        .is_none_or(|a| a.on_failure == crate::config::AuditOnFailure::Refuse);
    refuse
        && !log.is_writable()
        && !matches!(
            tokio::time::timeout(std::time::Duration::from_secs(2), log.check()).await,
            Ok(true)
        )
}

/// Writes a refused or failed request to the audit trail (when configured and
/// not already written by the product).
pub async fn refused(
    relay: &Relay,
    route: &'static str,
    caller: Option<&Caller>,
    failure: &Failure,
    started: Instant,
) {
    if failure.audited {
        return;
    }
    let Some((log, _)) = &relay.audit else {
        return;
    };
    let (result, by) = failure.audit_result();
    let record = relay_audit::RequestRecord {
        time: chrono::Utc::now(),
        tx_id: failure
            .ids
            .as_ref()
            .map(|i| i.tx_id.clone())
            .unwrap_or_default(),
        corr_id: failure.ids.as_ref().map(|i| i.corr_id.clone()),
        channel: if route.starts_with("soap") {
            relay_audit::Channel::Soap
        } else {
            relay_audit::Channel::Shs
        },
        caller_org: caller.map(|c| c.org.to_string()).unwrap_or_default(),
        case_worker: String::new(),
        case_id: String::new(),
        product: String::new(),
        purpose: String::new(),
        key_id: String::new(),
        persons: Vec::new(),
        persons_count: 0,
        providers: Vec::new(),
        latency_ms: started.elapsed().as_millis() as u64,
        deadline_ms: 0,
        result,
        by: Some(by),
    };
    if let Err(e) = log.record(record).await {
        tracing::error!(error = %e, "audit record could not be written");
    }
}

/// A delivery-service fetch: who fetched which message (its tx.id), never content.
pub async fn fetched(
    relay: &Relay,
    caller: &Caller,
    tx_id: &str,
    result: relay_audit::FetchResult,
) {
    let Some((log, _)) = &relay.audit else {
        return;
    };
    let record = relay_audit::FetchRecord {
        time: chrono::Utc::now(),
        channel: relay_audit::Channel::Shs,
        caller_org: caller.org.to_string(),
        tx_id: tx_id.to_owned(),
        result,
    };
    if let Err(e) = log.record(record).await {
        tracing::error!(error = %e, "audit record could not be written");
    }
}

/// A planned maintenance window, announced now: a planned outage record.
pub async fn planned_window(
    relay: &Relay,
    who: &str,
    start: chrono::DateTime<chrono::Utc>,
    end: chrono::DateTime<chrono::Utc>,
    reason: &str,
) {
    let Some((log, _)) = &relay.audit else {
        return;
    };
    let record = relay_audit::OutageRecord {
        time: chrono::Utc::now(),
        start,
        end,
        who: who.to_owned(),
        reason: reason.to_owned(),
        kind: relay_audit::OutageKind::Planned,
    };
    if let Err(e) = log.record(record).await {
        tracing::error!(error = %e, "planned maintenance could not be audited");
    }
}

/// The configuration's planned windows that have not ended, announced at start.
pub async fn announce_configured_windows(relay: &Relay) {
    let live = relay.live();
    let Some(a) = &live.config.audit else {
        return;
    };
    for w in &a.planned_maintenance {
        if w.end > chrono::Utc::now() {
            planned_window(relay, "config", w.start, w.end, &w.reason).await;
        }
    }
}

/// Writes an admin action (the admin listener's, or the relay's own, such as
/// a party verified by its test checks) to the audit trail (when configured)
/// and the log.
pub async fn admin_action(relay: &Relay, who: &str, action: &str, target: &str) {
    tracing::warn!(event = "admin", who, action, target, "admin action");
    if let Some((log, _)) = &relay.audit {
        let rec = relay_audit::AdminRecord {
            time: chrono::Utc::now(),
            who: who.to_owned(),
            action: action.to_owned(),
            target: target.to_owned(),
        };
        if let Err(e) = log.record(rec).await {
            tracing::error!(error = %e, "admin action could not be audited");
        }
    }
}
