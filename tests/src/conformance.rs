//! Runs the real `shs-conformance` binary against an adapter of a running
//! stack, the way an agency would (with the simulator's admin endpoint, the
//! demo's ELT signers and the SDK's default concurrency limit), and reads its
//! JSON and JUnit reports.

use std::collections::BTreeMap;

use crate::Stack;

/// The concurrency limit the demo's adapters declare (the SDK's and the
/// Python adapter's default `limits.max_concurrent`).
pub const DEMO_MAX_CONCURRENT: u64 = 64;

/// A kit run: its exit code and the cases (name → (outcome, reason)).
pub struct KitRun {
    pub code: i32,
    pub cases: BTreeMap<String, (String, String)>,
    /// The JUnit report, checked to be well-formed XML.
    pub junit: String,
}

impl KitRun {
    /// The names of the cases whose outcome is not `outcome`.
    pub fn not(&self, outcome: &str) -> Vec<&str> {
        self.cases
            .iter()
            .filter(|(_, (o, _))| o != outcome)
            .map(|(n, _)| n.as_str())
            .collect()
    }
}

/// Runs the kit against `endpoint` for `slot`.
pub async fn run_kit(stack: &Stack, endpoint: &str, slot: &str) -> KitRun {
    let bin_dir = relay_demo::default_bin_dir().expect("bin dir");
    let pki = stack.dir().join("pki");
    let junit = stack.dir().join(format!("junit-{slot}.xml"));
    // The demo's ELT signers, which Försäkringskassan's adapter trusts: the
    // kit signs its example report with them (`submit.receipt`).
    let signer = |role: &str| {
        let s = stack
            .demo()
            .info
            .elt
            .signers
            .iter()
            .find(|s| s.role == role)
            .expect("the demo has ELT signers");
        (s.cert.clone(), s.key.clone())
    };
    let (assistant_cert, assistant_key) = signer("assistant");
    let (anordnare_cert, anordnare_key) = signer("anordnare");
    let out = tokio::process::Command::new(bin_dir.join("shs-conformance"))
        .arg("--assistant-signer-cert")
        .arg(assistant_cert)
        .arg("--assistant-signer-key")
        .arg(assistant_key)
        .arg("--anordnare-signer-cert")
        .arg(anordnare_cert)
        .arg("--anordnare-signer-key")
        .arg(anordnare_key)
        .args(["--endpoint", endpoint, "--slot", slot, "--json"])
        .args(["--max-concurrent", &DEMO_MAX_CONCURRENT.to_string()])
        .arg("--ca")
        .arg(pki.join("ca.pem"))
        .arg("--cert")
        .arg(pki.join("relay.pem"))
        .arg("--key")
        .arg(pki.join("relay-key.pem"))
        .arg("--sim-admin")
        .arg(&stack.demo().info.sim.admin)
        .arg("--junit")
        .arg(&junit)
        .output()
        .await
        .expect("shs-conformance runs (cargo build --bins first)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap_or_else(|e| {
        panic!(
            "{slot}: no JSON report ({e}): {stdout}\n{}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    let junit = std::fs::read(&junit).expect("the JUnit report is written");
    let check = std::process::Command::new("xmllint")
        .arg("--noout")
        .arg("-")
        .stdin(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().expect("stdin").write_all(&junit)?;
            c.wait()
        })
        .expect("xmllint");
    assert!(
        check.success(),
        "{slot}: the JUnit report is well-formed XML"
    );
    let cases = report["cases"]
        .as_array()
        .expect("cases")
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap_or_default().to_owned(),
                (
                    c["outcome"].as_str().unwrap_or_default().to_owned(),
                    c["reason"].as_str().unwrap_or_default().to_owned(),
                ),
            )
        })
        .collect();
    KitRun {
        code: out.status.code().unwrap_or(-1),
        cases,
        junit: String::from_utf8_lossy(&junit).into_owned(),
    }
}
