//! What the relay binary's `audit who-asked` and `audit sla-report` subcommands
//! call: parse the arguments' text, run the query, return the rendered text.
//! No printing and no exiting here; the binary owns its terminal.

use std::path::PathBuf;

use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use relay_ident::Personnummer;

use crate::calendar;
use crate::error::{AuditError, Result};
use crate::files::expand_paths;
use crate::pseudonym::load_keys;
use crate::render::{self, OutputFormat};
use crate::sla::{SlaConfig, sla_report};
use crate::who_asked::who_asked;

/// `who-asked`: `paths` are audit files or directories (a directory means all
/// its audit files), `key_files` every key that may have been in use, `person`
/// a personnummer in any accepted form. `from` and `to` are RFC 3339 instants or
/// dates; a date means Stockholm local midnight, and `to` as a date includes that
/// whole day. Markdown or JSON.
pub fn run_who_asked(
    paths: &[PathBuf],
    key_files: &[PathBuf],
    person: &str,
    from: Option<&str>,
    to: Option<&str>,
    format: OutputFormat,
) -> Result<String> {
    let person = Personnummer::parse(person)?;
    let from = from.map(|s| parse_time(s, "from", false)).transpose()?;
    let to = to.map(|s| parse_time(s, "to", true)).transpose()?;
    let keys = load_keys(key_files)?;
    let files = expand_paths(paths)?;
    let report = who_asked(&files, &keys, &person, from, to)?;
    render::who_asked(&report, format)
}

/// `sla-report`: the month (`YYYY-MM`) against `config` (the relay's
/// configured service levels, or [`SlaConfig::default`], the terms') as
/// Markdown, JSON or one self-contained HTML file, as of now (the current month
/// stops at now).
pub fn run_sla_report(
    paths: &[PathBuf],
    month: &str,
    format: OutputFormat,
    config: &SlaConfig,
) -> Result<String> {
    run_sla_report_at(paths, month, format, config, Utc::now())
}

/// [`run_sla_report`] with an explicit `now`.
pub fn run_sla_report_at(
    paths: &[PathBuf],
    month: &str,
    format: OutputFormat,
    config: &SlaConfig,
    now: DateTime<Utc>,
) -> Result<String> {
    let files = expand_paths(paths)?;
    let report = sla_report(&files, month, config, now)?;
    render::sla(&report, format)
}

/// An RFC 3339 instant, or a date (`YYYY-MM-DD`) meaning its Stockholm local
/// midnight; as an end (`end_of_day`) a date means the midnight after it.
pub fn parse_time(s: &str, what: &'static str, end_of_day: bool) -> Result<DateTime<Utc>> {
    let s = s.trim();
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    let date = NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|_| AuditError::Time { what })?;
    let date = if end_of_day {
        date.succ_opt().ok_or(AuditError::Time { what })?
    } else {
        date
    };
    Ok(calendar::stockholm(date, NaiveTime::MIN))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn dates_are_stockholm_days_and_an_end_date_includes_its_day() {
        assert_eq!(
            parse_time("2026-11-02", "from", false).unwrap(),
            Utc.with_ymd_and_hms(2026, 11, 1, 23, 0, 0).unwrap()
        );
        assert_eq!(
            parse_time("2026-07-02", "to", true).unwrap(),
            Utc.with_ymd_and_hms(2026, 7, 2, 22, 0, 0).unwrap()
        );
        assert_eq!(
            parse_time("2026-11-02T08:00:00+01:00", "from", false).unwrap(),
            Utc.with_ymd_and_hms(2026, 11, 2, 7, 0, 0).unwrap()
        );
        assert!(parse_time("yesterday", "from", false).is_err());
    }
}
