//! The kit's report: one [`CaseReport`] per named case, rendered as a readable
//! summary, as JUnit XML (for the agency's CI) or as JSON.

use std::fmt::Write as _;
use std::time::Duration;

use serde::Serialize;

/// What a case came to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Pass,
    Fail,
    /// Not applicable to this adapter or this run; the reason says why.
    Skipped,
}

/// One named case and why it came out as it did.
#[derive(Debug, Clone, Serialize)]
pub struct CaseReport {
    pub name: &'static str,
    pub outcome: Outcome,
    pub reason: String,
    #[serde(rename = "duration_ms")]
    #[serde(serialize_with = "millis")]
    pub duration: Duration,
}

fn millis<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(d.as_millis() as u64)
}

impl CaseReport {
    pub fn pass(name: &'static str, reason: impl Into<String>) -> Self {
        Self::new(name, Outcome::Pass, reason)
    }
    pub fn fail(name: &'static str, reason: impl Into<String>) -> Self {
        Self::new(name, Outcome::Fail, reason)
    }
    pub fn skipped(name: &'static str, reason: impl Into<String>) -> Self {
        Self::new(name, Outcome::Skipped, reason)
    }
    fn new(name: &'static str, outcome: Outcome, reason: impl Into<String>) -> Self {
        Self {
            name,
            outcome,
            reason: reason.into(),
            duration: Duration::ZERO,
        }
    }
}

/// The whole run.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub endpoint: String,
    pub slot: String,
    /// True when every applicable case passed.
    pub passed: bool,
    pub cases: Vec<CaseReport>,
}

impl Report {
    pub fn new(endpoint: &str, slot: &str, cases: Vec<CaseReport>) -> Self {
        Self {
            endpoint: endpoint.to_owned(),
            slot: slot.to_owned(),
            passed: cases.iter().all(|c| c.outcome != Outcome::Fail),
            cases,
        }
    }

    fn count(&self, outcome: Outcome) -> usize {
        self.cases.iter().filter(|c| c.outcome == outcome).count()
    }

    /// The terminal summary: one line per case, then the totals.
    pub fn to_text(&self) -> String {
        let mut out = format!("shs-conformance: {} (slot {})\n", self.endpoint, self.slot);
        let width = self.cases.iter().map(|c| c.name.len()).max().unwrap_or(0);
        for c in &self.cases {
            let tag = match c.outcome {
                Outcome::Pass => "PASS",
                Outcome::Fail => "FAIL",
                Outcome::Skipped => "SKIP",
            };
            let _ = writeln!(
                out,
                "  {tag}  {:width$}  {} ({} ms)",
                c.name,
                c.reason,
                c.duration.as_millis()
            );
        }
        let _ = writeln!(
            out,
            "{} passed, {} failed, {} skipped (not applicable): {}",
            self.count(Outcome::Pass),
            self.count(Outcome::Fail),
            self.count(Outcome::Skipped),
            if self.passed {
                "the adapter keeps the provider contract"
            } else {
                "the adapter does NOT keep the provider contract"
            }
        );
        out
    }

    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).unwrap_or_else(|_| "{}".to_owned())
    }

    /// JUnit XML: one `testsuite` with one `testcase` per case.
    pub fn to_junit(&self) -> String {
        let total: f64 = self.cases.iter().map(|c| c.duration.as_secs_f64()).sum();
        let mut out = format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites>\n  <testsuite name=\"shs-conformance {slot}\" tests=\"{}\" failures=\"{}\" skipped=\"{}\" errors=\"0\" time=\"{total:.3}\">\n    <properties><property name=\"endpoint\" value=\"{}\"/><property name=\"slot\" value=\"{slot}\"/></properties>\n",
            self.cases.len(),
            self.count(Outcome::Fail),
            self.count(Outcome::Skipped),
            esc(&self.endpoint),
            slot = esc(&self.slot),
        );
        for c in &self.cases {
            let _ = write!(
                out,
                "    <testcase classname=\"shs-conformance.{}\" name=\"{}\" time=\"{:.3}\"",
                esc(&self.slot),
                c.name,
                c.duration.as_secs_f64()
            );
            match c.outcome {
                Outcome::Pass => {
                    let _ = writeln!(
                        out,
                        "><system-out>{}</system-out></testcase>",
                        esc(&c.reason)
                    );
                }
                Outcome::Fail => {
                    let _ = writeln!(
                        out,
                        "><failure message=\"{0}\">{0}</failure></testcase>",
                        esc(&c.reason)
                    );
                }
                Outcome::Skipped => {
                    let _ = writeln!(out, "><skipped message=\"{}\"/></testcase>", esc(&c.reason));
                }
            }
        }
        out.push_str("  </testsuite>\n</testsuites>\n");
        out
    }
}

/// Escapes text for XML content and attribute values (the project's one
/// escaper).
use relay_xml::escape_attr as esc;

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Report {
        Report::new(
            "https://localhost:7001",
            "CSN",
            vec![
                CaseReport::pass("describe", "CSN, shs_relay.provider.v1"),
                CaseReport::fail("deadline", "no DEADLINE_EXCEEDED <after> 2000 ms"),
                CaseReport::skipped("submit", "not offered"),
            ],
        )
    }

    #[test]
    fn one_failed_case_fails_the_run_and_skipped_cases_do_not() {
        let r = sample();
        assert!(!r.passed);
        let ok = Report::new("e", "CSN", vec![CaseReport::skipped("x", "n/a")]);
        assert!(ok.passed);
        let text = r.to_text();
        assert!(text.contains("FAIL  deadline"), "{text}");
        assert!(text.contains("1 passed, 1 failed, 1 skipped"), "{text}");
    }

    #[test]
    fn junit_counts_and_escapes() {
        let x = sample().to_junit();
        assert!(
            x.contains("tests=\"3\" failures=\"1\" skipped=\"1\""),
            "{x}"
        );
        assert!(x.contains("&lt;after&gt;"), "{x}");
        assert!(x.contains("<skipped message=\"not offered\"/>"), "{x}");
        let json: serde_json::Value = serde_json::from_str(&sample().to_json()).unwrap();
        assert_eq!(json["cases"][1]["outcome"], "fail");
        assert_eq!(json["passed"], false);
    }
}
