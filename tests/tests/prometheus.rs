//! The alert and recording rules in `deploy/prometheus/`: `promtool check
//! rules` accepts them, `promtool test rules` passes the unit tests in
//! `deploy/prometheus/tests/`, every alert has a test in which it fires and one
//! in which it stays quiet, and every alert names its severity and a runbook
//! section of `docs/operations.md` that exists.
//!
//! Needs `promtool` (Debian: `apt-get install -y prometheus`; `.ci/run`
//! installs it). The real-Prometheus end-to-end test is `alerting.rs`.

// A test: a panic is its failure. clippy.toml lifts these lints in #[test]
// functions only, not in this crate's helpers and support modules.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::string_slice
)]

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::Command;

fn deploy(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../deploy/prometheus")
        .join(path)
}

fn promtool(args: &[&str], dir: &Path) -> String {
    let out = Command::new("promtool")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "promtool could not be run ({e}): install Prometheus's tools \
                 (Debian: `apt-get install -y prometheus`; .ci/run does)"
            )
        });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.status.success(),
        "promtool {} failed:\n{text}",
        args.join(" ")
    );
    text
}

/// `(name, lines of its rule)` for every `- alert:` in rules.yml.
fn alerts() -> Vec<(String, Vec<String>)> {
    let text = std::fs::read_to_string(deploy("rules.yml")).expect("rules.yml");
    let mut out: Vec<(String, Vec<String>)> = Vec::new();
    let mut in_alert = false;
    for line in text.lines().map(str::trim) {
        if let Some(name) = line.strip_prefix("- alert:") {
            out.push((name.trim().to_owned(), Vec::new()));
            in_alert = true;
        } else if line.starts_with("- record:") || line.starts_with("- name:") {
            in_alert = false;
        } else if in_alert && let Some((_, lines)) = out.last_mut() {
            lines.push(line.to_owned());
        }
    }
    out
}

#[test]
fn the_shipped_rules_pass_promtool_check() {
    let text = promtool(
        &["check", "rules", "recording.yml", "rules.yml"],
        &deploy(""),
    );
    assert!(text.contains("SUCCESS"), "{text}");
}

#[test]
fn every_alert_has_a_passing_promtool_unit_test_that_fires_and_one_that_stays_quiet() {
    let tests = deploy("tests");
    let files: Vec<String> = std::fs::read_dir(&tests)
        .expect("deploy/prometheus/tests")
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".yml"))
        .collect();
    assert!(!files.is_empty(), "no unit tests in {}", tests.display());
    let mut args = vec!["test", "rules"];
    args.extend(files.iter().map(String::as_str));
    let text = promtool(&args, &tests);
    assert!(text.contains("SUCCESS"), "{text}");

    // Which alerts a test expects to fire, and which to stay quiet.
    let mut fires = BTreeSet::new();
    let mut quiet = BTreeSet::new();
    for file in &files {
        let text = std::fs::read_to_string(tests.join(file)).expect("a test file");
        let mut current: Option<String> = None;
        for line in text.lines().map(str::trim) {
            if let Some(name) = line.strip_prefix("alertname:") {
                current = Some(name.trim().to_owned());
            } else if let Some(name) = &current {
                if line == "exp_alerts: []" {
                    quiet.insert(name.clone());
                    current = None;
                } else if line.starts_with("- exp_labels:") {
                    fires.insert(name.clone());
                    current = None;
                }
            }
        }
    }
    let names: Vec<String> = alerts().into_iter().map(|(n, _)| n).collect();
    assert!(names.len() >= 15, "rules.yml has {names:?}");
    for name in &names {
        assert!(fires.contains(name), "no unit test where {name} fires");
        assert!(
            quiet.contains(name),
            "no unit test where {name} stays quiet"
        );
    }
}

/// GitHub's anchor for a Markdown heading: lower case, spaces to dashes,
/// punctuation other than dashes and underscores dropped.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

#[test]
fn every_alert_has_a_severity_and_a_runbook_section_in_the_operations_guide() {
    let docs = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/operations.md"),
    )
    .expect("docs/operations.md");
    let anchors: BTreeSet<String> = docs
        .lines()
        .filter(|l| l.starts_with('#'))
        .map(|l| anchor(l.trim_start_matches('#')))
        .collect();
    for (name, lines) in alerts() {
        let severity: Vec<&String> = lines
            .iter()
            .filter(|l| l.starts_with("severity:"))
            .collect();
        assert_eq!(
            severity.len(),
            2,
            "{name}: a severity label and annotation: {lines:?}"
        );
        assert!(
            severity
                .iter()
                .all(|s| s.ends_with("critical") || s.ends_with("warning")),
            "{name}: severity is critical or warning: {severity:?}"
        );
        let url = lines
            .iter()
            .find_map(|l| l.strip_prefix("runbook_url:"))
            .unwrap_or_else(|| panic!("{name}: no runbook_url"))
            .trim()
            .trim_matches('"');
        let (page, section) = url
            .split_once('#')
            .unwrap_or_else(|| panic!("{name}: runbook_url {url} names no section"));
        assert_eq!(page, "docs/operations.md", "{name}");
        assert_eq!(
            section,
            name.to_lowercase(),
            "{name}: its section is named after it"
        );
        assert!(
            anchors.contains(section),
            "{name}: docs/operations.md has no section #{section}"
        );
    }
}
