//! Planned maintenance an agency announces for its own base service (seed 002
//! §12.2.3), read from its adapter's `Describe` (`planned_maintenance`, an
//! additive field of the provider contract v1) every
//! `status.maintenance_poll_s`. Each window is checked before it is shown to
//! anyone: an adapter is a party of its own, and its texts reach every
//! connected party. A window that breaks a rule is left out and logged with the
//! provider and the rule (the provider's fault); at most [`MAX_WINDOWS`] are
//! taken. A window new or changed in the store is written to the audit trail as
//! planned (the service-level report counts its minutes as planned).

use chrono::{DateTime, TimeDelta, Utc};
use relay_store::{AnnouncedWindow, StatusBoard, Text};

use super::public_text_ok;
use crate::Relay;

/// Windows taken from one adapter.
pub const MAX_WINDOWS: usize = 20;
/// The longest window.
pub const MAX_LENGTH: TimeDelta = TimeDelta::days(7);
/// The longest description, per language.
pub const MAX_TEXT_CHARS: usize = 200;

/// Why a window was left out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BadWindow {
    #[error("id must be 1 to 64 characters of A-Z, a-z, 0-9, '.', '_', '-'")]
    Id,
    #[error("starts_at and ends_at must be RFC 3339 times")]
    Time,
    #[error("ends_at must be after starts_at and at most 7 days after it")]
    Length,
    #[error("an id announced twice")]
    Duplicate,
}

fn standard_text(provider: &str) -> Text {
    Text::new(
        format!("Planerat underhåll av {provider}s bastjänst: dess uppgifter kan saknas i svaren."),
        format!(
            "Planned maintenance of {provider}'s base service: its data may be missing from answers."
        ),
    )
}

/// One announced window, checked; texts that may not be shown fall back to
/// the standard text.
pub fn window(
    provider: &str,
    w: &shs_proto::v1::PlannedMaintenance,
    now: DateTime<Utc>,
) -> Result<AnnouncedWindow, BadWindow> {
    let id_ok = !w.id.is_empty()
        && w.id.len() <= 64
        && w.id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'));
    if !id_ok {
        return Err(BadWindow::Id);
    }
    let parse = |s: &str| {
        DateTime::parse_from_rfc3339(s)
            .map(|t| t.with_timezone(&Utc))
            .map_err(|_| BadWindow::Time)
    };
    let starts_at = parse(&w.starts_at)?;
    let ends_at = parse(&w.ends_at)?;
    if ends_at <= starts_at || ends_at - starts_at > MAX_LENGTH {
        return Err(BadWindow::Length);
    }
    let standard = standard_text(provider);
    let pick = |given: &str, fallback: String| {
        if !given.trim().is_empty() && public_text_ok(given, MAX_TEXT_CHARS).is_ok() {
            given.trim().to_owned()
        } else {
            fallback
        }
    };
    Ok(AnnouncedWindow {
        provider: provider.to_owned(),
        id: w.id.clone(),
        starts_at,
        ends_at,
        text: Text::new(
            pick(&w.description_sv, standard.sv),
            pick(&w.description_en, standard.en),
        ),
        updated_at: now.duration_trunc_secs(),
    })
}

trait TruncSecs {
    fn duration_trunc_secs(self) -> Self;
}

impl TruncSecs for DateTime<Utc> {
    fn duration_trunc_secs(self) -> Self {
        use chrono::DurationRound;
        self.duration_trunc(TimeDelta::seconds(1)).unwrap_or(self)
    }
}

/// The windows of one `Describe`, checked: the good ones, and the rule each
/// bad one broke.
pub fn windows(
    provider: &str,
    announced: &[shs_proto::v1::PlannedMaintenance],
    now: DateTime<Utc>,
) -> (Vec<AnnouncedWindow>, Vec<BadWindow>) {
    let mut good: Vec<AnnouncedWindow> = Vec::new();
    let mut bad = Vec::new();
    for w in announced.iter().take(MAX_WINDOWS) {
        match window(provider, w, now) {
            Ok(w) if good.iter().any(|g| g.id == w.id) => bad.push(BadWindow::Duplicate),
            Ok(w) => good.push(w),
            Err(e) => bad.push(e),
        }
    }
    (good, bad)
}

/// Asks every adapter's `Describe` and stores what each announces. An adapter
/// that does not answer keeps what it announced last.
pub async fn poll(relay: &Relay) {
    let live = relay.live();
    let timeout = std::time::Duration::from_millis(live.config.soap.ping_timeout_ms);
    let ids: Vec<String> = live.providers.ids().map(str::to_owned).collect();
    let replies =
        futures::future::join_all(ids.iter().map(|id| live.providers.describe(id, timeout))).await;
    let now = Utc::now();
    for (id, reply) in ids.iter().zip(replies) {
        let Some(reply) = reply else {
            continue;
        };
        if reply.planned_maintenance.len() > MAX_WINDOWS {
            tracing::warn!(provider = %id, announced = reply.planned_maintenance.len(), taken = MAX_WINDOWS,
                "status: the provider announces more maintenance windows than the relay takes");
        }
        let (good, bad) = windows(id, &reply.planned_maintenance, now);
        for rule in &bad {
            tracing::warn!(provider = %id, by = "provider", rule = %rule,
                "status: an announced maintenance window was left out");
        }
        let before = relay.status.board.announced().await.unwrap_or_default();
        match relay.status.board.announce(id, &good, now).await {
            Ok(true) => {
                for w in &good {
                    let known = before.iter().any(|b| {
                        b.provider == w.provider
                            && b.id == w.id
                            && b.starts_at == w.starts_at
                            && b.ends_at == w.ends_at
                    });
                    if !known && w.ends_at > now {
                        tracing::info!(provider = %id, window = %w.id, "status: the provider announced planned maintenance");
                        crate::outcomes::planned_window(
                            relay,
                            &format!("provider:{id}"),
                            w.starts_at,
                            w.ends_at,
                            &format!("{id} base service: {}", w.text.en),
                        )
                        .await;
                    }
                }
            }
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(provider = %id, error = %e, "status: announced maintenance not stored")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use shs_proto::v1::PlannedMaintenance;

    fn announced(id: &str, start: &str, end: &str, sv: &str) -> PlannedMaintenance {
        PlannedMaintenance {
            id: id.into(),
            starts_at: start.into(),
            ends_at: end.into(),
            description_sv: sv.into(),
            description_en: "Database upgrade".into(),
        }
    }

    #[test]
    fn an_adapters_windows_are_checked_and_bad_ones_left_out_with_the_rule() {
        let now = Utc::now();
        let (good, bad) = windows(
            "SKV",
            &[
                announced(
                    "w-1",
                    "2026-12-08T18:00:00Z",
                    "2026-12-08T20:00:00+00:00",
                    "Uppgradering",
                ),
                announced("w 2", "2026-12-08T18:00:00Z", "2026-12-08T20:00:00Z", ""),
                announced("w-3", "tomorrow", "2026-12-08T20:00:00Z", ""),
                announced("w-4", "2026-12-08T20:00:00Z", "2026-12-08T18:00:00Z", ""),
                announced("w-5", "2026-12-01T00:00:00Z", "2026-12-09T00:00:01Z", ""),
                announced("w-1", "2026-12-09T18:00:00Z", "2026-12-09T20:00:00Z", ""),
                announced(
                    &"x".repeat(65),
                    "2026-12-08T18:00:00Z",
                    "2026-12-08T20:00:00Z",
                    "",
                ),
            ],
            now,
        );
        assert_eq!(good.len(), 1);
        assert_eq!(good[0].text.sv, "Uppgradering");
        assert_eq!(good[0].text.en, "Database upgrade");
        assert_eq!(
            bad,
            vec![
                BadWindow::Id,
                BadWindow::Time,
                BadWindow::Length,
                BadWindow::Length,
                BadWindow::Duplicate,
                BadWindow::Id
            ]
        );
    }

    #[test]
    fn a_text_naming_an_organisation_or_a_person_is_replaced_by_the_standard_text() {
        let w = window(
            "FK",
            &announced(
                "w",
                "2026-12-08T18:00:00Z",
                "2026-12-08T19:00:00Z",
                "Ring 2120002411 om 191212121212",
            ),
            Utc::now(),
        )
        .unwrap();
        assert!(w.text.sv.starts_with("Planerat underhåll av FKs bastjänst"));
        assert!(!w.text.sv.contains("2120002411"));
    }

    #[test]
    fn at_most_twenty_windows_are_taken() {
        let many: Vec<_> = (0..50)
            .map(|n| {
                announced(
                    &format!("w{n}"),
                    "2026-12-08T18:00:00Z",
                    "2026-12-08T19:00:00Z",
                    "",
                )
            })
            .collect();
        assert_eq!(windows("SO", &many, Utc::now()).0.len(), MAX_WINDOWS);
    }
}
