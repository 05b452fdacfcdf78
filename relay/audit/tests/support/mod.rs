//! Building audit records for the tests: Skatteverket's test persons only.

#![allow(dead_code)]

use chrono::{DateTime, Utc};
use relay_audit::{
    AuditRecord, Channel, OutageKind, OutageRecord, Outcome, ProviderCall, PseudonymKey,
    RequestRecord,
};
use relay_ident::Personnummer;

pub fn person(s: &str) -> Personnummer {
    Personnummer::parse(s).unwrap()
}

pub fn tolvan() -> Personnummer {
    person("19121212-1212")
}

pub fn other() -> Personnummer {
    person("19030818-9802")
}

pub fn third() -> Personnummer {
    person("20190101-2391")
}

pub fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

/// A request record about `persons` with the given calls (`provider`, outcome
/// label, latency).
pub fn request(
    key: &PseudonymKey,
    time: &str,
    tx: &str,
    persons: &[Personnummer],
    latency_ms: u64,
    result: &str,
    calls: &[(&str, &str, u64)],
) -> RequestRecord {
    RequestRecord {
        time: at(time),
        tx_id: tx.to_owned(),
        corr_id: Some(format!("corr-{tx}")),
        channel: Channel::Shs,
        caller_org: "2120002411".to_owned(),
        case_worker: "handl-17".to_owned(),
        case_id: format!("case-{tx}"),
        product: "ssbtek".to_owned(),
        purpose: "ekonomiskt bistånd".to_owned(),
        key_id: String::new(),
        persons: Vec::new(),
        persons_count: 0,
        providers: calls
            .iter()
            .map(|(p, o, ms)| ProviderCall {
                provider: (*p).to_owned(),
                outcome: o.parse::<Outcome>().unwrap(),
                latency_ms: *ms,
            })
            .collect(),
        latency_ms,
        deadline_ms: 15_000,
        result: result.parse().unwrap(),
        by: None,
    }
    .with_persons(key, persons)
}

/// A request about the first `n` test persons (for the SLA file, where only the
/// count matters).
pub fn request_n(
    key: &PseudonymKey,
    time: &str,
    tx: &str,
    n: usize,
    latency_ms: u64,
    result: &str,
    calls: &[(&str, &str, u64)],
) -> AuditRecord {
    let persons: Vec<Personnummer> = relay_ident::TEST_PERSONS[..n]
        .iter()
        .map(|p| person(p))
        .collect();
    request(key, time, tx, &persons, latency_ms, result, calls).into()
}

pub fn outage(start: &str, end: &str) -> AuditRecord {
    OutageRecord {
        time: at(end),
        start: at(start),
        end: at(end),
        who: "operator:drift-1".to_owned(),
        reason: "planned maintenance".to_owned(),
        kind: OutageKind::Unplanned,
    }
    .into()
}

/// Writes records as JSON lines, as the writer does.
pub fn write_jsonl(path: &std::path::Path, records: &[AuditRecord]) {
    let mut text = String::new();
    for r in records {
        text.push_str(&serde_json::to_string(r).unwrap());
        text.push('\n');
    }
    std::fs::write(path, text).unwrap();
}
