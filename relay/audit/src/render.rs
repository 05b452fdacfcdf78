//! Text forms of the reports: Markdown tables, JSON (serde of the report), and
//! for the service-level report one self-contained HTML file (inline CSS, SVG
//! charts drawn here; no scripts, no links, nothing fetched).

use std::fmt::Write as _;

use crate::error::{AuditError, Result};
use crate::record::{OutageKind, Outcome};
use crate::sla::{AnsweredBasis, SlaReport};
use crate::who_asked::WhoAskedReport;

/// How a report is rendered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    Md,
    Json,
    Html,
}

impl std::str::FromStr for OutputFormat {
    type Err = AuditError;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "md" | "markdown" => Ok(Self::Md),
            "json" => Ok(Self::Json),
            "html" => Ok(Self::Html),
            _ => Err(AuditError::Format(s.to_owned())),
        }
    }
}

/// Renders the who-asked answer (Markdown or JSON).
pub fn who_asked(report: &WhoAskedReport, format: OutputFormat) -> Result<String> {
    match format {
        OutputFormat::Json => Ok(serde_json::to_string_pretty(report)? + "\n"),
        OutputFormat::Html => Err(AuditError::FormatNotSupported("html")),
        OutputFormat::Md => {
            let mut s = String::new();
            let _ = writeln!(s, "# Who asked\n");
            let _ = writeln!(
                s,
                "{} request(s) found in {} file(s).\n",
                report.hits.len(),
                report.read.files_read
            );
            if !report.hits.is_empty() {
                table(
                    &mut s,
                    &[
                        "time (UTC)",
                        "organisation",
                        "case worker",
                        "case",
                        "product",
                        "purpose",
                        "transaction",
                        "result",
                    ],
                    report.hits.iter().map(|h| {
                        vec![
                            h.time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true),
                            h.caller_org.clone(),
                            h.case_worker.clone(),
                            h.case_id.clone(),
                            h.product.clone(),
                            h.purpose.clone(),
                            h.tx_id.clone(),
                            h.result.clone(),
                        ]
                    }),
                );
                s.push('\n');
            }
            warnings(&mut s, report.read.skipped_lines, &report.unsearched_by_key);
            Ok(s)
        }
    }
}

fn warnings(s: &mut String, skipped: u64, unsearched: &std::collections::BTreeMap<String, u64>) {
    if skipped > 0 {
        let _ = writeln!(
            s,
            "**Warning:** {skipped} line(s) were not records (torn or unknown kind) and were skipped.\n"
        );
    }
    for (key, n) in unsearched {
        let key = if key.is_empty() { "(none)" } else { key };
        let _ = writeln!(
            s,
            "**Warning:** {n} request(s) were pseudonymised with key id {} and could not be searched; supply that key file.\n",
            md_cell(key)
        );
    }
}

/// Renders the service-level report.
pub fn sla(report: &SlaReport, format: OutputFormat) -> Result<String> {
    match format {
        OutputFormat::Json => Ok(serde_json::to_string_pretty(report)? + "\n"),
        OutputFormat::Md => Ok(sla_md(report)),
        OutputFormat::Html => Ok(sla_html(report)),
    }
}

fn pct(p: Option<f64>) -> String {
    p.map_or_else(|| "–".to_owned(), |p| format!("{p:.2} %"))
}

fn ms(v: Option<u64>) -> String {
    v.map_or_else(|| "–".to_owned(), |v| format!("{v} ms"))
}

fn met(m: Option<bool>) -> &'static str {
    match m {
        Some(true) => "met",
        Some(false) => "NOT met",
        None => "no data",
    }
}

/// Minutes as hours and minutes (`62 h 05 min`).
pub fn hm(minutes: u64) -> String {
    format!("{} h {:02} min", minutes / 60, minutes % 60)
}

fn when(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

fn basis(b: AnsweredBasis) -> &'static str {
    match b {
        AnsweredBasis::AnsweredInTime => "complete and partial answers in time",
        AnsweredBasis::Complete => "complete answers in time",
    }
}

/// The rows every format shows, as (measure, value, target, status).
fn summary_rows(r: &SlaReport) -> Vec<[String; 4]> {
    let t = &r.answer_times;
    let c = &r.config;
    let a = &r.answered_share;
    let av = &r.availability;
    let rel = &r.reliability;
    let per = format!(
        "+{:.1} s per extra person",
        c.per_extra_person_ms as f64 / 1000.0
    );
    let both = |m: bool| met(Some(m)).to_owned();
    vec![
        [
            format!("Answered within {:.1} s ({per})", c.fast_ms as f64 / 1000.0),
            format!(
                "{} ({} of {})",
                pct(t.fast_percent),
                t.within_fast,
                t.measured
            ),
            format!("≥ {:.0} %", t.fast_target_percent),
            met(t.fast_met).to_owned(),
        ],
        [
            format!("Answered within {:.1} s ({per})", c.slow_ms as f64 / 1000.0),
            format!(
                "{} ({} of {})",
                pct(t.slow_percent),
                t.within_slow,
                t.measured
            ),
            format!("≥ {:.0} %", t.slow_target_percent),
            met(t.slow_met).to_owned(),
        ],
        [
            format!("Calls answered ({})", basis(a.basis)),
            format!(
                "{} ({} of {})",
                pct(match a.basis {
                    AnsweredBasis::AnsweredInTime => a.answered_percent,
                    AnsweredBasis::Complete => a.complete_percent,
                }),
                match a.basis {
                    AnsweredBasis::AnsweredInTime => a.answered,
                    AnsweredBasis::Complete => a.complete,
                },
                a.eligible
            ),
            format!("≥ {:.0} %", a.target_percent),
            met(a.met).to_owned(),
        ],
        [
            "Calls answered completely (every provider data or its own answer)".to_owned(),
            format!(
                "{} ({} of {})",
                pct(a.complete_percent),
                a.complete,
                a.eligible
            ),
            String::new(),
            String::new(),
        ],
        [
            "Availability in opening hours".to_owned(),
            format!(
                "{} (available {} of {} measured)",
                pct(av.percent),
                hm(av.available_minutes),
                hm(av.measured_minutes)
            ),
            format!("≥ {:.0} %", av.target_percent),
            met(av.met).to_owned(),
        ],
        [
            "Unavailability in opening hours".to_owned(),
            hm(av.unavailable_minutes),
            String::new(),
            String::new(),
        ],
        [
            "Unplanned outages this month".to_owned(),
            rel.unplanned_outages_month.to_string(),
            format!("≤ {}", rel.max_per_month),
            both(rel.month_met),
        ],
        [
            "Unplanned outages this year".to_owned(),
            rel.unplanned_outages_year.to_string(),
            format!("≤ {}", rel.max_per_year),
            both(rel.year_met),
        ],
        [
            "Down time this year (opening hours)".to_owned(),
            hm(rel.down_minutes_year),
            format!("≤ {}", hm(rel.max_down_minutes_year)),
            both(rel.down_met),
        ],
        [
            "Disturbances (≥ 2 providers failing)".to_owned(),
            r.incidents.len().to_string(),
            String::new(),
            String::new(),
        ],
        [
            "Answer time p50 / p90 / p99".to_owned(),
            format!("{} / {} / {}", ms(t.p50_ms), ms(t.p90_ms), ms(t.p99_ms)),
            String::new(),
            String::new(),
        ],
    ]
}

fn request_rows(r: &SlaReport) -> Vec<[String; 2]> {
    let q = &r.requests;
    let av = &r.availability;
    let v = &r.volumes;
    vec![
        ["Opening days".into(), r.opening_days.to_string()],
        [
            "Requests in opening hours".into(),
            q.in_opening_hours.to_string(),
        ],
        ["Answered complete".into(), q.complete.to_string()],
        [
            "Answered partial (relay-side slot errors)".into(),
            q.partial.to_string(),
        ],
        [
            "Answered with nothing delivered (not answered)".into(),
            q.nothing_delivered.to_string(),
        ],
        [
            "Answered after the deadline (not in time)".into(),
            q.late.to_string(),
        ],
        [
            "Refused, caller's fault".into(),
            q.refused_caller_fault.to_string(),
        ],
        ["Failed (relay side)".into(), q.failed.to_string()],
        ["Overloaded".into(), q.overloaded.to_string()],
        ["Deadline passed".into(), q.deadline_passed.to_string()],
        [
            "Outside opening hours (not measured)".into(),
            q.outside_opening_hours.to_string(),
        ],
        [
            "Opening time: measured / planned maintenance / unmeasured".into(),
            format!(
                "{} / {} / {}",
                hm(av.measured_minutes),
                hm(av.planned_minutes),
                hm(av.unmeasured_minutes)
            ),
        ],
        [
            "Probes (failed)".into(),
            format!("{} ({})", v.probes, v.probes_failed),
        ],
        [
            "Delivery-service fetches (delivered)".into(),
            format!("{} ({})", v.fetches, v.fetches_delivered),
        ],
    ]
}

const OUTAGE_HEADER: [&str; 7] = [
    "kind",
    "start (UTC)",
    "end (UTC)",
    "duration",
    "in opening hours",
    "recorded by",
    "reason",
];

fn outage_rows(r: &SlaReport) -> Vec<[String; 7]> {
    r.outages
        .iter()
        .map(|o| {
            [
                match o.kind {
                    OutageKind::Planned => "planned",
                    OutageKind::Unplanned => "unplanned",
                }
                .to_owned(),
                when(o.start),
                when(o.end),
                hm(o.minutes),
                hm(o.opening_minutes),
                o.sources.join(", "),
                o.reasons.join("; "),
            ]
        })
        .collect()
}

const INCIDENT_HEADER: [&str; 4] = ["start (UTC)", "end (UTC)", "duration", "providers failing"];

fn incident_rows(r: &SlaReport) -> Vec<[String; 4]> {
    r.incidents
        .iter()
        .map(|d| {
            [
                when(d.start),
                match d.end {
                    None => "ongoing".to_owned(),
                    Some(e) if d.closed_by_silence => format!("{} (relay stopped)", when(e)),
                    Some(e) => when(e),
                },
                hm(d.minutes),
                d.providers.join(", "),
            ]
        })
        .collect()
}

fn provider_header() -> Vec<String> {
    let mut h = vec!["provider".to_owned(), "calls".to_owned()];
    h.extend(Outcome::ALL.iter().map(|o| o.label().to_owned()));
    h.extend([
        "relay errors".to_owned(),
        "p50".to_owned(),
        "p90".to_owned(),
        "p99".to_owned(),
    ]);
    h
}

fn provider_rows(r: &SlaReport) -> Vec<Vec<String>> {
    r.providers
        .iter()
        .map(|p| {
            let mut row = vec![p.provider.clone(), p.calls.to_string()];
            row.extend(
                Outcome::ALL
                    .iter()
                    .map(|o| p.outcomes.get(o.label()).copied().unwrap_or(0).to_string()),
            );
            row.extend([
                pct(p.relay_error_percent),
                ms(p.p50_ms),
                ms(p.p90_ms),
                ms(p.p99_ms),
            ]);
            row
        })
        .collect()
}

fn daily_rows(r: &SlaReport) -> Vec<[String; 9]> {
    r.daily
        .iter()
        .map(|d| {
            [
                d.date.to_string(),
                d.requests.to_string(),
                d.answered.to_string(),
                d.complete.to_string(),
                d.partial.to_string(),
                ms(d.p50_ms),
                ms(d.p90_ms),
                hm(d.unavailable_minutes),
                pct(d.availability_percent),
            ]
        })
        .collect()
}

const DAILY_HEADER: [&str; 9] = [
    "date",
    "requests",
    "answered",
    "complete",
    "partial",
    "p50",
    "p90",
    "unavailable",
    "availability",
];

/// Where the period stops, and what the report cannot hold.
fn period_note(r: &SlaReport) -> String {
    let period = if r.month_to_date {
        format!(
            "Month to date: up to {} (the rest of the month has not happened).",
            when(r.period_end)
        )
    } else {
        "The whole month.".to_owned()
    };
    format!(
        "{period} Availability is measured by the relay's prober. Not in this report \
         (the relay cannot know them): support cases and orders, problems, planned changes \
         and their status, response and resolution times, security and continuity."
    )
}

fn sla_md(r: &SlaReport) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# Service levels {}\n", r.month);
    let _ = writeln!(
        s,
        "Opening hours Mon–Fri 08:00–17:00 Europe/Stockholm, excluding Swedish public holidays \
         and midsommarafton, julafton and nyårsafton.\n"
    );
    let _ = writeln!(s, "{}\n", period_note(r));
    table(
        &mut s,
        &["measure", "value", "target", "status"],
        summary_rows(r),
    );
    let _ = writeln!(s, "\n## Requests\n");
    table(&mut s, &["", "count"], request_rows(r));
    let _ = writeln!(s, "\n## Outages\n");
    if r.outages.is_empty() {
        let _ = writeln!(s, "None.");
    } else {
        table(&mut s, &OUTAGE_HEADER, outage_rows(r));
    }
    let _ = writeln!(s, "\n## Incidents (disturbances)\n");
    if r.incidents.is_empty() {
        let _ = writeln!(s, "None.");
    } else {
        table(&mut s, &INCIDENT_HEADER, incident_rows(r));
    }
    let _ = writeln!(s, "\n## Providers\n");
    if r.providers.is_empty() {
        let _ = writeln!(s, "No provider calls.");
    } else {
        let header = provider_header();
        let header: Vec<&str> = header.iter().map(String::as_str).collect();
        table(&mut s, &header, provider_rows(r));
    }
    let _ = writeln!(s, "\n## Daily\n");
    table(&mut s, &DAILY_HEADER, daily_rows(r));
    if r.read.skipped_lines > 0 {
        s.push('\n');
        warnings(&mut s, r.read.skipped_lines, &Default::default());
    }
    s
}

/// A Markdown table; cells cannot break out of it.
fn table<R, C>(s: &mut String, header: &[&str], rows: impl IntoIterator<Item = R>)
where
    R: IntoIterator<Item = C>,
    C: AsRef<str>,
{
    let _ = writeln!(
        s,
        "| {} |",
        header
            .iter()
            .map(|h| md_cell(h))
            .collect::<Vec<_>>()
            .join(" | ")
    );
    let _ = writeln!(s, "|{}", "---|".repeat(header.len()));
    for row in rows {
        let cells: Vec<String> = row.into_iter().map(|c| md_cell(c.as_ref())).collect();
        let _ = writeln!(s, "| {} |", cells.join(" | "));
    }
}

fn md_cell(s: &str) -> String {
    s.replace('\\', "\\\\")
        .replace('|', "\\|")
        .replace(['\n', '\r'], " ")
}

// HTML text and attribute values escape as XML attribute values do (both
// quotes included): the project's one escaper.
use relay_xml::escape_attr as esc;

fn html_table<R, C>(s: &mut String, header: &[&str], rows: impl IntoIterator<Item = R>)
where
    R: IntoIterator<Item = C>,
    C: AsRef<str>,
{
    s.push_str("<table><thead><tr>");
    for h in header {
        let _ = write!(s, "<th>{}</th>", esc(h));
    }
    s.push_str("</tr></thead><tbody>\n");
    for row in rows {
        s.push_str("<tr>");
        for c in row {
            let c = c.as_ref();
            let class = if c == "NOT met" {
                " class=\"bad\""
            } else if c == "met" {
                " class=\"ok\""
            } else {
                ""
            };
            let _ = write!(s, "<td{class}>{}</td>", esc(c));
        }
        s.push_str("</tr>\n");
    }
    s.push_str("</tbody></table>\n");
}

const CSS: &str = "body{font-family:system-ui,-apple-system,'Segoe UI',sans-serif;margin:2em auto;max-width:1000px;color:#1b1b1b;padding:0 1em}\
h1{font-size:1.6em}h2{font-size:1.2em;margin-top:1.8em;border-bottom:1px solid #ccc}\
table{border-collapse:collapse;margin:.5em 0;font-size:.9em}\
th,td{border:1px solid #ccc;padding:.25em .6em;text-align:left}th{background:#f0f0f0}\
td.ok{color:#176117;font-weight:bold}td.bad{color:#a11;font-weight:bold}\
.note{color:#555;font-size:.9em}svg{background:#fff;border:1px solid #ddd;margin:.5em 0}\
svg text{font-size:11px;fill:#333}";

fn sla_html(r: &SlaReport) -> String {
    let mut s = String::new();
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"sv\">\n<head>\n<meta charset=\"utf-8\">\n\
         <title>Service levels {m}</title>\n<style>{CSS}</style>\n</head>\n<body>\n\
         <h1>Service levels {m}</h1>\n<p class=\"note\">Opening hours Mon–Fri 08:00–17:00 \
         Europe/Stockholm, excluding Swedish public holidays and midsommarafton, julafton and \
         nyårsafton. Only requests that arrived in opening hours are measured.</p>\n",
        m = esc(&r.month)
    );
    let _ = writeln!(s, "<p class=\"note\">{}</p>", esc(&period_note(r)));
    html_table(
        &mut s,
        &["measure", "value", "target", "status"],
        summary_rows(r),
    );
    s.push_str("<h2>Daily answer times</h2>\n");
    s.push_str(&latency_chart(r));
    s.push_str("<h2>Daily availability</h2>\n");
    s.push_str(&availability_chart(r));
    s.push_str("<h2>Requests</h2>\n");
    html_table(&mut s, &["", "count"], request_rows(r));
    s.push_str("<h2>Outages</h2>\n");
    if r.outages.is_empty() {
        s.push_str("<p>None.</p>\n");
    } else {
        html_table(&mut s, &OUTAGE_HEADER, outage_rows(r));
    }
    s.push_str("<h2>Incidents (disturbances)</h2>\n");
    if r.incidents.is_empty() {
        s.push_str("<p>None.</p>\n");
    } else {
        html_table(&mut s, &INCIDENT_HEADER, incident_rows(r));
    }
    s.push_str("<h2>Providers</h2>\n");
    if r.providers.is_empty() {
        s.push_str("<p>No provider calls.</p>\n");
    } else {
        let header = provider_header();
        let header: Vec<&str> = header.iter().map(String::as_str).collect();
        html_table(&mut s, &header, provider_rows(r));
    }
    s.push_str("<h2>Daily</h2>\n");
    html_table(&mut s, &DAILY_HEADER, daily_rows(r));
    if r.read.skipped_lines > 0 {
        let _ = writeln!(
            s,
            "<p class=\"note\">{} line(s) of the audit files were not records and were skipped.</p>",
            r.read.skipped_lines
        );
    }
    s.push_str("</body>\n</html>\n");
    s
}

// Chart geometry shared by both charts.
const W: f64 = 900.0;
const H: f64 = 260.0;
const LEFT: f64 = 60.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 20.0;
const BOTTOM: f64 = 40.0;

struct Frame {
    slots: usize,
    max: f64,
}

impl Frame {
    fn slot_width(&self) -> f64 {
        (W - LEFT - RIGHT) / self.slots.max(1) as f64
    }
    fn x(&self, i: usize) -> f64 {
        LEFT + i as f64 * self.slot_width()
    }
    fn y(&self, v: f64) -> f64 {
        TOP + (H - TOP - BOTTOM) * (1.0 - (v / self.max).clamp(0.0, 1.0))
    }
}

fn svg_open(s: &mut String, label: &str) {
    let _ = writeln!(
        s,
        "<svg width=\"{W}\" height=\"{H}\" viewBox=\"0 0 {W} {H}\" role=\"img\" aria-label=\"{}\">",
        esc(label)
    );
}

fn axes(s: &mut String, f: &Frame, r: &SlaReport, ticks: &[(f64, String)]) {
    let bottom = H - BOTTOM;
    let _ = writeln!(
        s,
        "<line x1=\"{LEFT}\" y1=\"{TOP}\" x2=\"{LEFT}\" y2=\"{bottom}\" stroke=\"#333\"/>\
         <line x1=\"{LEFT}\" y1=\"{bottom}\" x2=\"{}\" y2=\"{bottom}\" stroke=\"#333\"/>",
        W - RIGHT
    );
    for (v, label) in ticks {
        let y = f.y(*v);
        let _ = writeln!(
            s,
            "<line x1=\"{}\" y1=\"{y:.1}\" x2=\"{LEFT}\" y2=\"{y:.1}\" stroke=\"#333\"/>\
             <text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
            LEFT - 4.0,
            LEFT - 6.0,
            y + 4.0,
            esc(label)
        );
    }
    for (i, d) in r.daily.iter().enumerate() {
        let _ = writeln!(
            s,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
            f.x(i) + f.slot_width() / 2.0,
            bottom + 14.0,
            d.date.format("%d")
        );
    }
    let _ = writeln!(
        s,
        "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">day of month (opening days)</text>",
        LEFT + (W - LEFT - RIGHT) / 2.0,
        H - 6.0
    );
}

/// Grouped bars of daily p50 and p90 answer times with the 7 s and 12 s limits.
fn latency_chart(r: &SlaReport) -> String {
    let fast = r.config.fast_ms as f64;
    let slow = r.config.slow_ms as f64;
    let highest = r.daily.iter().filter_map(|d| d.p90_ms).max().unwrap_or(0) as f64;
    let max = (slow * 1.15).max(highest * 1.05);
    let f = Frame {
        slots: r.daily.len(),
        max,
    };
    let mut s = String::new();
    svg_open(&mut s, "Daily p50 and p90 answer times with the limits");
    let step = if max > 30_000.0 { 10_000.0 } else { 2_000.0 };
    let ticks: Vec<(f64, String)> = (0..)
        .map(|i| f64::from(i) * step)
        .take_while(|v| *v <= max)
        .map(|v| (v, format!("{} s", v / 1000.0)))
        .collect();
    axes(&mut s, &f, r, &ticks);
    let bar = f.slot_width() * 0.35;
    for (i, d) in r.daily.iter().enumerate() {
        for (k, (v, colour, name)) in [(d.p50_ms, "#4a7fb5", "p50"), (d.p90_ms, "#e08a2c", "p90")]
            .into_iter()
            .enumerate()
        {
            let Some(v) = v else { continue };
            let x = f.x(i) + f.slot_width() * 0.15 + k as f64 * bar;
            let y = f.y(v as f64);
            let _ = writeln!(
                s,
                "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{bar:.1}\" height=\"{:.1}\" fill=\"{colour}\"><title>{} {name} {v} ms</title></rect>",
                (H - BOTTOM - y).max(0.0),
                d.date
            );
        }
    }
    for (limit, colour) in [(fast, "#b58900"), (slow, "#c0392b")] {
        let y = f.y(limit);
        let _ = writeln!(
            s,
            "<line x1=\"{LEFT}\" y1=\"{y:.1}\" x2=\"{}\" y2=\"{y:.1}\" stroke=\"{colour}\" stroke-dasharray=\"6 4\"/>\
             <text x=\"{}\" y=\"{:.1}\" text-anchor=\"end\" fill=\"{colour}\">{} s limit</text>",
            W - RIGHT,
            W - RIGHT - 4.0,
            y - 4.0,
            limit / 1000.0
        );
    }
    let _ = writeln!(
        s,
        "<rect x=\"{}\" y=\"6\" width=\"10\" height=\"10\" fill=\"#4a7fb5\"/><text x=\"{}\" y=\"15\">p50</text>\
         <rect x=\"{}\" y=\"6\" width=\"10\" height=\"10\" fill=\"#e08a2c\"/><text x=\"{}\" y=\"15\">p90</text>",
        LEFT + 10.0,
        LEFT + 24.0,
        LEFT + 60.0,
        LEFT + 74.0
    );
    s.push_str("</svg>\n");
    s
}

/// Bars of daily availability, 0-100 %.
fn availability_chart(r: &SlaReport) -> String {
    let f = Frame {
        slots: r.daily.len(),
        max: 100.0,
    };
    let mut s = String::new();
    svg_open(&mut s, "Daily availability in percent");
    let ticks: Vec<(f64, String)> = (0..=4)
        .map(|i| (f64::from(i) * 25.0, format!("{} %", i * 25)))
        .collect();
    axes(&mut s, &f, r, &ticks);
    let bar = f.slot_width() * 0.7;
    for (i, d) in r.daily.iter().enumerate() {
        let x = f.x(i) + f.slot_width() * 0.15;
        let Some(percent) = d.availability_percent else {
            continue;
        };
        let y = f.y(percent);
        let colour = if d.unavailable_minutes == 0 {
            "#3c8d40"
        } else {
            "#c0392b"
        };
        let _ = writeln!(
            s,
            "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{bar:.1}\" height=\"{:.1}\" fill=\"{colour}\"><title>{} {:.2} % ({} min unavailable)</title></rect>",
            (H - BOTTOM - y).max(0.0),
            d.date,
            percent,
            d.unavailable_minutes
        );
        // On a 0-100 scale a bad day looks almost full: say how bad.
        if d.unavailable_minutes > 0 {
            let _ = writeln!(
                s,
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" fill=\"#c0392b\">{:.1}</text>",
                x + bar / 2.0,
                (y - 3.0).max(10.0),
                percent
            );
        }
    }
    s.push_str("</svg>\n");
    s
}
