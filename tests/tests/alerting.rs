//! The shipped monitoring against a real Prometheus (Debian's `prometheus`
//! server, started by the test on a free port): it scrapes the demo's relay and
//! adapters (their admin listeners, from `demo.json`) with the rules of
//! `deploy/prometheus/`, every query of the Grafana dashboard in
//! `deploy/grafana/` parses and returns series, an agency taken down in the
//! simulator makes its alert fire (Prometheus's `/api/v1/alerts`), and bringing
//! it back resolves it.
//!
//! The test's copy of the rules has every `for:` shortened to
//! [`TEST_FOR`] and Prometheus scrapes and evaluates every second; the
//! shipped files are otherwise used as they are.
//!
//! Needs `prometheus` on PATH (Debian: `apt-get install -y prometheus`;
//! `.ci/run` installs it) and the binaries (`cargo build --workspace --bins`).

// A test: a panic is its failure. clippy.toml lifts these lints in #[test]
// functions only, not in this crate's helpers and support modules.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::string_slice
)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use relay_ssbtek::Slot;
use shs_tests::*;

const SUNDSVALL: &str = "2120002411";
/// What every rule's `for:` becomes in the test's copy.
const TEST_FOR: &str = "1s";
/// How long any one thing may take to show in Prometheus (generous: a loaded
/// CI machine; scrapes and evaluations are every second, the relay looks
/// every 10 s, the adapters poll their base service every 2 s).
const WAIT: Duration = Duration::from_secs(120);

fn repo(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..").join(path)
}

/// A Prometheus server for one test; killed on drop.
struct Prometheus {
    child: Child,
    url: String,
    dir: PathBuf,
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn host_port(url: &str) -> String {
    url.trim_start_matches("http://")
        .trim_start_matches("https://")
        .trim_end_matches('/')
        .to_owned()
}

/// The shipped rules with every `for:` set to [`TEST_FOR`].
fn test_copy_of_rules(from: &Path, to: &Path) {
    let text = std::fs::read_to_string(from).expect("a rule file");
    let out: String = text
        .lines()
        .map(|line| match line.trim_start().strip_prefix("for:") {
            Some(_) => {
                let indent = &line[..line.len() - line.trim_start().len()];
                format!("{indent}for: {TEST_FOR}\n")
            }
            None => format!("{line}\n"),
        })
        .collect();
    std::fs::write(to, out).expect("write the rules");
}

impl Prometheus {
    /// Starts Prometheus scraping the stack's relay (job `shs-relay`) and its
    /// adapters (job `shs-adapter`, each with its `provider` label), as
    /// deploy/prometheus/prometheus.yml describes, with the shipped rules.
    async fn start(stack: &Stack) -> Prometheus {
        let dir = stack.dir().join("prometheus");
        std::fs::create_dir_all(dir.join("data")).expect("mkdir");
        for file in ["recording.yml", "rules.yml"] {
            test_copy_of_rules(&repo(&format!("deploy/prometheus/{file}")), &dir.join(file));
        }
        let info = &stack.demo().info;
        let mut adapters = String::new();
        for p in &info.providers {
            adapters.push_str(&format!(
                "      - targets: [\"{}\"]\n        labels: {{ provider: {} }}\n",
                host_port(&p.admin),
                p.id
            ));
        }
        let config = format!(
            "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
             rule_files:\n  - {rec}\n  - {rules}\n\
             scrape_configs:\n  - job_name: shs-relay\n    static_configs:\n      - targets: [\"{relay}\"]\n\
             \x20 - job_name: shs-adapter\n    static_configs:\n{adapters}",
            rec = dir.join("recording.yml").display(),
            rules = dir.join("rules.yml").display(),
            // The read-only probe listener, as a cluster's Prometheus scrapes it.
            relay = host_port(&info.admin["probe"]),
        );
        std::fs::write(dir.join("prometheus.yml"), &config).expect("write the config");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let log = std::fs::File::create(dir.join("prometheus.log")).expect("the log");
        let child = Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "the Prometheus server could not be started ({e}): install it \
                     (Debian: `apt-get install -y prometheus`; .ci/run does)"
                )
            });
        let prometheus = Prometheus {
            child,
            url: format!("http://127.0.0.1:{port}"),
            dir,
        };
        let deadline = Instant::now() + WAIT;
        loop {
            let ready = reqwest::get(format!("{}/-/ready", prometheus.url)).await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "Prometheus did not become ready:\n{}",
                prometheus.log()
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        prometheus
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("prometheus.log")).unwrap_or_default()
    }

    async fn api(&self, path: &str, query: &[(&str, &str)]) -> serde_json::Value {
        let r = reqwest::Client::new()
            .get(format!("{}{path}", self.url))
            .query(query)
            .send()
            .await
            .expect("Prometheus answers");
        let v: serde_json::Value = r.json().await.expect("JSON");
        assert_eq!(v["status"], "success", "{path} {query:?}: {v}");
        v["data"].clone()
    }

    /// The result of an instant query: fails the test if it does not parse.
    async fn query(&self, expr: &str) -> Vec<serde_json::Value> {
        let data = self.api("/api/v1/query", &[("query", expr)]).await;
        match &data["result"] {
            serde_json::Value::Array(series) => series.clone(),
            // A scalar (`time()`, ...) is one value.
            other => vec![other.clone()],
        }
    }

    /// Waits until `expr` returns at least one series.
    async fn series_of(&self, expr: &str, what: &str) -> Vec<serde_json::Value> {
        let deadline = Instant::now() + WAIT;
        loop {
            let series = self.query(expr).await;
            if !series.is_empty() {
                return series;
            }
            assert!(
                Instant::now() < deadline,
                "{what}: `{expr}` returned no series within {WAIT:?}"
            );
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }

    /// The alerts (pending or firing) named `name` with `label` = `value`.
    async fn alerts(&self, name: &str, label: &str, value: &str) -> Vec<serde_json::Value> {
        let data = self.api("/api/v1/alerts", &[]).await;
        data["alerts"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|a| a["labels"]["alertname"] == name && a["labels"][label] == value)
            .collect()
    }

    /// Waits until the alert is firing, or (with `firing` false) gone.
    async fn wait_alert(&self, name: &str, label: &str, value: &str, firing: bool) {
        let deadline = Instant::now() + WAIT;
        loop {
            let alerts = self.alerts(name, label, value).await;
            let is_firing = alerts.iter().any(|a| a["state"] == "firing");
            if firing == is_firing && (firing || alerts.is_empty()) {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{name}{{{label}=\"{value}\"}} did not {} within {WAIT:?}: {alerts:?}\n\
                 all alerts: {}",
                if firing { "fire" } else { "resolve" },
                self.api("/api/v1/alerts", &[]).await
            );
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

/// Every query of every panel of the dashboards in deploy/grafana/, with the
/// panel's title.
fn dashboard_queries() -> Vec<(String, String)> {
    fn walk(v: &serde_json::Value, title: &str, out: &mut Vec<(String, String)>) {
        match v {
            serde_json::Value::Object(o) => {
                let title = o.get("title").and_then(|t| t.as_str()).unwrap_or(title);
                if let Some(expr) = o.get("expr").and_then(|e| e.as_str()) {
                    out.push((title.to_owned(), expr.to_owned()));
                }
                for child in o.values() {
                    walk(child, title, out);
                }
            }
            serde_json::Value::Array(a) => a.iter().for_each(|c| walk(c, title, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    for entry in std::fs::read_dir(repo("deploy/grafana")).expect("deploy/grafana") {
        let path = entry.expect("an entry").path();
        if path.extension().is_some_and(|e| e == "json") {
            let text = std::fs::read_to_string(&path).expect("a dashboard");
            let v: serde_json::Value = serde_json::from_str(&text)
                .unwrap_or_else(|e| panic!("{}: not JSON: {e}", path.display()));
            walk(&v["panels"], "", &mut out);
        }
    }
    out
}

/// Some SSBTEK questions and an ELT time report, so that every traffic
/// metric has series.
async fn traffic(stack: &Stack) {
    for person in ["191212121212", "201901012391"] {
        let q = question(person, SUNDSVALL, &Slot::ALL, false);
        let reply = ask(stack, SUNDSVALL, &[q]).await;
        assert_eq!(
            reply.status,
            200,
            "{}",
            String::from_utf8_lossy(&reply.body)
        );
    }
    let report = stack.dir().join("report.xml");
    let run = |args: &[&str]| {
        let out = shs_command(stack).args(args).output().expect("shs runs");
        assert!(
            out.status.success(),
            "shs {}: {}{}",
            args.join(" "),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    };
    let report_path = report.display().to_string();
    run(&[
        "elt",
        "example",
        "--person",
        "19121212-1212",
        "--out",
        &report_path,
    ]);
    run(&["elt", "submit", "--in", &report_path]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_real_prometheus_runs_the_dashboard_and_alerts_on_an_agency_down_until_it_returns() {
    // The status feed follows the disturbance tracker; a short window keeps
    // the test brief.
    let stack = Stack::start_with(|o| {
        o.relay_extra =
            "\n[status]\nmaintenance_poll_s = 1\n\n[disturbance]\nwindow_s = 10\n".into();
    })
    .await;
    let prometheus = Prometheus::start(&stack).await;
    let info = stack.demo().info.clone();

    // Every target scraped: the relay and the seven adapters.
    let deadline = Instant::now() + WAIT;
    loop {
        let up = prometheus.query("up == 1").await;
        if up.len() == 1 + info.providers.len() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "not every target is up: {up:?}\n{}",
            prometheus.api("/api/v1/targets", &[]).await
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }

    // 1. Every dashboard query parses and returns series.
    traffic(&stack).await;
    let queries = dashboard_queries();
    assert!(queries.len() >= 20, "{queries:?}");
    for (panel, expr) in &queries {
        prometheus.series_of(expr, panel).await;
    }
    // What the rules read: the answers counted as complete, every certificate
    // and CRL in use (the demo's run for years, its CRL for 30 days: no
    // expiry alert), the store answering.
    prometheus
        .series_of(
            r#"shs_relay_ssbtek_requests_total{outcome="complete"} >= 2"#,
            "complete SSBTEK answers",
        )
        .await;
    let expiry = prometheus
        .series_of(
            "shs_relay_certificate_expiry_timestamp_seconds - time() > 21 * 86400",
            "certificates and CRLs",
        )
        .await;
    let has = |which: &str, provider: Option<&str>| {
        expiry.iter().any(|s| {
            s["metric"]["which"] == which && provider.is_none_or(|p| s["metric"]["provider"] == p)
        })
    };
    for which in ["front", "client_ca", "crl"] {
        assert!(has(which, None), "no {which} expiry: {expiry:?}");
    }
    for p in &info.providers {
        assert!(has("provider_client", Some(&p.id)), "{}: {expiry:?}", p.id);
        assert!(has("provider_ca", Some(&p.id)), "{}: {expiry:?}", p.id);
    }
    prometheus
        .series_of("shs_relay_store_up == 1", "the store answering")
        .await;
    // Nothing personal or municipal in any label Prometheus holds. The one
    // exception by design: `org` of the register's party certificate metric
    // (issue 31), an organisation number (a public legal entity's, never a
    // person's) for the operators' certificate alert; checked below that it
    // holds nothing else.
    let names = prometheus.api("/api/v1/labels", &[]).await;
    let mut values = vec![names.to_string()];
    for name in names
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|n| n.as_str())
    {
        let v = prometheus
            .api(&format!("/api/v1/label/{name}/values"), &[])
            .await;
        if name == "org" {
            for org in v.as_array().into_iter().flatten() {
                let org = org.as_str().unwrap_or_default();
                assert!(
                    org.len() == 10 && org.bytes().all(|b| b.is_ascii_digit()),
                    "only organisation numbers in `org`: {v}"
                );
            }
            continue;
        }
        values.push(v.to_string());
    }
    for forbidden in [
        SUNDSVALL,
        "191212121212",
        "19121212-1212",
        "Sundsvall",
        "kommun",
    ] {
        assert!(
            values.iter().all(|v| !v.contains(forbidden)),
            "{forbidden} in a label: {values:?}"
        );
    }

    // 2. CSN and TNS down in the simulator: their alerts fire, and no other
    // agency's; two agencies down is a disturbance (seed 002, appendix 4 §3.8).
    let sim = reqwest::Client::new();
    let r = sim
        .put(format!("{}/admin/scenario", info.sim.admin))
        .body("[agency.CSN]\ndown = true\n\n[agency.TNS]\ndown = true\n")
        .send()
        .await
        .expect("the simulator's admin endpoint");
    assert!(
        r.status().is_success(),
        "{}",
        r.text().await.unwrap_or_default()
    );
    prometheus
        .wait_alert("ShsAgencyUnreachable", "provider", "CSN", true)
        .await;
    prometheus
        .wait_alert("ShsAdapterNotReady", "provider", "CSN", true)
        .await;
    prometheus
        .wait_alert("ShsAgencyUnreachable", "provider", "TNS", true)
        .await;
    for other in ["AF", "FK", "SKV", "SO", "MIV"] {
        assert!(
            prometheus
                .alerts("ShsAgencyUnreachable", "provider", other)
                .await
                .is_empty(),
            "{other} is up, yet alerted"
        );
    }

    // An answer without CSN is partial, and counted so.
    let q = question("191212121212", SUNDSVALL, &Slot::ALL, false);
    let reply = ask(&stack, SUNDSVALL, &[q]).await;
    assert_eq!(reply.status, 200);
    prometheus
        .series_of(
            r#"shs_relay_ssbtek_requests_total{outcome="partial"} >= 1"#,
            "a partial SSBTEK answer",
        )
        .await;
    // The connected parties see the same outage in the status feed: both
    // components out and an open incident naming them.
    let down = feed_until(&stack, "CSN and TNS out with an incident", |v| {
        ["ssbtek-csn", "ssbtek-tns"]
            .iter()
            .all(|id| component(v, id)["status"] != "operational")
            && v["incidents"].as_array().is_some_and(|i| {
                i.iter().any(|i| {
                    i["status"] != "resolved" && i["components"].to_string().contains("ssbtek-csn")
                })
            })
    })
    .await;
    assert_eq!(
        component(&down, "ssbtek-af")["status"],
        "operational",
        "{down:#}"
    );

    // 3. CSN back: the alert resolves.
    let r = sim
        .post(format!("{}/admin/reset", info.sim.admin))
        .send()
        .await
        .expect("the simulator's admin endpoint");
    assert!(r.status().is_success());
    prometheus
        .wait_alert("ShsAgencyUnreachable", "provider", "CSN", false)
        .await;
    prometheus
        .wait_alert("ShsAdapterNotReady", "provider", "CSN", false)
        .await;
    prometheus
        .wait_alert("ShsAgencyUnreachable", "provider", "TNS", false)
        .await;
    // And the feed's: both components operational, no open incident.
    feed_until(&stack, "CSN and TNS back with the incident resolved", |v| {
        ["ssbtek-csn", "ssbtek-tns"]
            .iter()
            .all(|id| component(v, id)["status"] == "operational")
            && v["incidents"]
                .as_array()
                .is_some_and(|i| i.iter().all(|i| i["status"] == "resolved"))
    })
    .await;
}

/// Polls the status feed (as a municipality, over mutual TLS) until `pred`
/// holds, or fails with the last one.
async fn feed_until(
    stack: &Stack,
    what: &str,
    pred: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let url = format!("{}/status/v1/summary.json", stack.relay_url());
    let client = stack.client(SUNDSVALL);
    let deadline = Instant::now() + WAIT;
    loop {
        let r = client.get(&url).send().await.expect("the status feed");
        assert_eq!(r.status(), 200);
        let v: serde_json::Value = r.json().await.expect("summary.json");
        if pred(&v) {
            return v;
        }
        assert!(Instant::now() < deadline, "never {what}:\n{v:#}");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn component<'a>(v: &'a serde_json::Value, id: &str) -> &'a serde_json::Value {
    v["components"]
        .as_array()
        .and_then(|c| c.iter().find(|c| c["id"] == id))
        .unwrap_or_else(|| panic!("no component {id}: {v:#}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_probe_listener_serves_health_and_metrics_and_nothing_of_the_admin_api() {
    let stack = Stack::start().await;
    let probe = stack.demo().info.admin["probe"].clone();
    let http = reqwest::Client::new();
    for (path, want) in [
        ("/livez", "ok"),
        ("/readyz", "ready"),
        ("/metrics", "shs_relay_ready"),
    ] {
        let r = http.get(format!("{probe}{path}")).send().await.unwrap();
        assert_eq!(r.status(), 200, "{path}");
        let body = r.text().await.unwrap();
        assert!(body.contains(want), "{path}: {body}");
    }
    // The console, its JSON, the status and every state-changing call are
    // the admin listener's alone.
    for path in ["/", "/admin/console", "/admin/status", "/admin/providers"] {
        let r = http.get(format!("{probe}{path}")).send().await.unwrap();
        assert_eq!(r.status(), 404, "GET {path}");
    }
    for path in [
        "/admin/maintenance/on",
        "/admin/reload",
        "/admin/suspend?org=2120002411",
    ] {
        let r = http
            .post(format!("{probe}{path}"))
            .header("X-SHS-Admin", "1")
            .send()
            .await
            .unwrap();
        assert!(
            r.status() == 404 || r.status() == 405,
            "POST {path}: {}",
            r.status()
        );
    }
    let (_, text) = {
        let r = http
            .get(format!(
                "{}/admin/maintenance",
                stack.demo().info.admin["url"]
            ))
            .send()
            .await
            .unwrap();
        (r.status(), r.text().await.unwrap())
    };
    assert!(text.contains("off"), "nothing changed: {text}");
}
