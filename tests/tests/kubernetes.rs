//! The Kubernetes manifests in `deploy/kubernetes/`: they validate offline
//! against the Kubernetes schemas (PyPI's `kubernetes-validate`, pinned in
//! `deploy/kubernetes/requirements.txt`, in the shared venv `target/venv`),
//! the configuration in their ConfigMaps passes the relay's and the adapters'
//! own checkers, and they hold what the operations guide promises: the relay
//! with two or more hardened replicas, probes and a disruption budget, every
//! adapter with its own Deployment and Service, and network policies that let
//! only the relay reach the adapters.

// A test: a panic is its failure. clippy.toml lifts these lints in #[test]
// functions only, not in this crate's helpers and support modules.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::string_slice
)]

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

const AGENCIES: [&str; 7] = ["af", "csn", "fk", "skv", "so", "tns", "miv"];
/// The Kubernetes version the manifests are checked against.
const KUBERNETES: &str = "1.30.0";

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn manifests() -> Vec<PathBuf> {
    let dir = workspace().join("deploy/kubernetes");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("deploy/kubernetes")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 5, "{files:?}");
    files
}

/// The venv's interpreter ($SHS_PYTHON, else target/venv/bin/python3).
fn python() -> PathBuf {
    let path = std::env::var_os("SHS_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target/venv/bin/python3"));
    assert!(
        path.is_file(),
        "{} is missing: create the test venv with `python3 -m venv target/venv && \
         target/venv/bin/pip install -r deploy/kubernetes/requirements.txt` (.ci/run does)",
        path.display()
    );
    path
}

/// Every object of every manifest, as JSON (read by the venv's PyYAML).
fn objects() -> Vec<Value> {
    let script = "import json, sys, yaml\n\
                  docs = [d for f in sys.argv[1:] for d in yaml.safe_load_all(open(f)) if d]\n\
                  print(json.dumps(docs))";
    let out = Command::new(python())
        .arg("-c")
        .arg(script)
        .args(manifests())
        .output()
        .expect("python runs");
    assert!(
        out.status.success(),
        "reading the manifests failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

fn find<'a>(objects: &'a [Value], kind: &str, name: &str) -> &'a Value {
    objects
        .iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

#[test]
fn the_manifests_validate_against_the_kubernetes_schemas() {
    let tool = python().with_file_name("kubernetes-validate");
    let out = Command::new(&tool)
        .args(["--strict", "--kubernetes-version", KUBERNETES])
        .args(manifests())
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "{} could not run ({e}): `target/venv/bin/pip install -r \
                 deploy/kubernetes/requirements.txt` (.ci/run does)",
                tool.display()
            )
        });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "kubernetes-validate:\n{text}");
    assert!(!text.contains("ERROR"), "{text}");
    let passed = text.matches(" passed for resource ").count();
    assert_eq!(passed, objects().len(), "every object checked:\n{text}");
}

#[test]
fn the_configuration_in_the_configmaps_passes_the_real_checkers() {
    let objects = objects();
    let dir = tempfile::tempdir().expect("tempdir");
    let data = |name: &str, key: &str| -> PathBuf {
        let cm = find(&objects, "ConfigMap", name);
        let text = cm["data"][key]
            .as_str()
            .unwrap_or_else(|| panic!("{name} has no {key}"));
        let path = dir.path().join(format!("{name}-{key}"));
        std::fs::write(&path, text).expect("write");
        path
    };
    let relay = data("shs-relay-config", "relay.toml");
    let config = relay_server::config::Config::check_file(&relay, providers_sdk::FileCheck::Skip)
        .unwrap_or_else(|e| panic!("the relay's ConfigMap: {e}"));
    // One provider per agency (the one list, `Slot::ALL`).
    let ids: Vec<_> = config.providers.iter().map(|p| p.id).collect();
    assert_eq!(ids, relay_ssbtek::Slot::ALL);
    for p in &config.providers {
        let want = format!("https://shs-adapter-{}.", p.id.as_str().to_lowercase());
        assert!(
            p.urls().iter().all(|u| u.starts_with(&want)),
            "{}: the relay calls its adapter's Service: {:?}",
            p.id,
            p.urls()
        );
    }
    let admin = config.admin.as_ref().expect("[admin]");
    assert_eq!(
        admin.probe_listen.map(|a| a.port()),
        Some(9090),
        "the probes' port"
    );
    for a in AGENCIES {
        let path = data(&format!("shs-adapter-{a}-config"), "adapter.toml");
        providers_sdk::AdapterConfig::check_file(&path, providers_sdk::FileCheck::Skip)
            .unwrap_or_else(|e| panic!("adapter {a}'s ConfigMap: {e}"));
    }
}

fn container(deployment: &Value) -> &Value {
    &deployment["spec"]["template"]["spec"]["containers"][0]
}

fn is_hardened(c: &Value) -> bool {
    let s = &c["securityContext"];
    s["runAsNonRoot"] == true
        && s["readOnlyRootFilesystem"] == true
        && s["allowPrivilegeEscalation"] == false
        && s["capabilities"]["drop"] == serde_json::json!(["ALL"])
}

#[test]
fn the_relay_runs_hardened_replicas_with_probes_and_a_disruption_budget() {
    let objects = objects();
    let relay = find(&objects, "Deployment", "shs-relay");
    assert!(relay["spec"]["replicas"].as_u64() >= Some(2), "{relay}");
    let c = container(relay);
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz");
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/livez");
    assert!(is_hardened(c), "{}", c["securityContext"]);
    for init in relay["spec"]["template"]["spec"]["initContainers"]
        .as_array()
        .into_iter()
        .flatten()
    {
        assert!(is_hardened(init), "{}", init["securityContext"]);
    }
    let pdb = find(&objects, "PodDisruptionBudget", "shs-relay");
    assert_eq!(
        pdb["spec"]["selector"]["matchLabels"],
        relay["spec"]["selector"]["matchLabels"]
    );
    assert!(pdb["spec"]["minAvailable"].as_u64() >= Some(1));
}

#[test]
fn each_adapter_has_its_own_hardened_deployment_service_and_secret() {
    let objects = objects();
    for a in AGENCIES {
        let name = format!("shs-adapter-{a}");
        let d = find(&objects, "Deployment", &name);
        let c = container(d);
        assert!(is_hardened(c), "{name}: {}", c["securityContext"]);
        assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/readyz", "{name}");
        assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/livez", "{name}");
        let s = find(&objects, "Service", &name);
        assert_eq!(
            s["spec"]["selector"], d["spec"]["selector"]["matchLabels"],
            "{name}"
        );
        find(&objects, "Secret", &format!("{name}-tls"));
    }
    find(&objects, "Secret", "shs-relay-tls");
    find(&objects, "Service", "shs-postgres");
}

#[test]
fn only_the_relay_reaches_the_adapters_and_only_adapters_reach_the_base_services() {
    let objects = objects();
    let deny = find(&objects, "NetworkPolicy", "default-deny");
    assert_eq!(deny["spec"]["podSelector"], serde_json::json!({}));
    assert_eq!(
        deny["spec"]["policyTypes"],
        serde_json::json!(["Ingress", "Egress"])
    );
    for a in AGENCIES {
        let p = find(&objects, "NetworkPolicy", &format!("shs-adapter-{a}"));
        let d = find(&objects, "Deployment", &format!("shs-adapter-{a}"));
        let grpc = container(d)["ports"][0]["containerPort"].clone();
        let ingress = p["spec"]["ingress"].as_array().expect("ingress rules");
        for rule in ingress {
            let from = &rule["from"][0];
            let by_relay =
                from["podSelector"]["matchLabels"]["app.kubernetes.io/name"] == "shs-relay";
            let ports: Vec<&Value> = rule["ports"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|p| &p["port"])
                .collect();
            // The gRPC port is open to the relay's pods and to nothing else.
            assert!(
                by_relay || !ports.contains(&&grpc),
                "adapter {a}: its gRPC port is open to {from}"
            );
            assert!(!ports.is_empty(), "adapter {a}: a rule without ports");
        }
        let egress = p["spec"]["egress"].as_array().expect("egress rules");
        assert!(
            egress
                .iter()
                .all(|r| r["to"].as_array().is_some_and(|t| !t.is_empty())),
            "adapter {a}: egress only to named destinations"
        );
    }
    // No other policy lets anything in to the adapters.
    for p in objects.iter().filter(|o| o["kind"] == "NetworkPolicy") {
        let selects_adapters = p["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/name"]
            == "shs-adapter"
            || p["spec"]["podSelector"] == serde_json::json!({});
        let name = p["metadata"]["name"].as_str().unwrap_or_default();
        if selects_adapters && !name.starts_with("shs-adapter-") {
            assert!(
                p["spec"]["ingress"].is_null(),
                "{name} lets traffic in to the adapters"
            );
        }
    }
}
