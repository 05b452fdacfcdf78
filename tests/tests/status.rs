//! The status feed for connected parties, end to end against the demo stack:
//! two agencies down in the simulator open an incident with their components in
//! `/status/v1/summary.json`, an operator updates it through the admin API, it
//! resolves by itself when the agencies are back, and the Atom history keeps
//! it; an unchanged feed answers 304 to its ETag; a caller without an
//! agreement is refused; nothing in the feed names a municipality or a person;
//! an agency's announced maintenance shows as that component's scheduled
//! maintenance and is counted as planned in the audit trail.

// A test: a panic is its failure. clippy.toml lifts these lints in #[test]
// functions only, not in this crate's helpers and support modules.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::string_slice
)]

use std::time::{Duration, Instant};

use relay_demo::{NODE_ORG, SSBTEK_PRODUCT};
use shs_tests::*;

const SUNDSVALL: &str = "2120002411";
const PERSON: &str = "191212121212";

const COMPONENTS: [&str; 8] = [
    "ssbtek-af",
    "ssbtek-csn",
    "ssbtek-fk",
    "ssbtek-skv",
    "ssbtek-so",
    "ssbtek-tns",
    "ssbtek-miv",
    "elt-fk",
];

fn start_options(o: &mut relay_demo::DemoOptions) {
    o.probe_extra = "interval_s = 1\n".into();
    o.relay_extra = "\n[status]\nmaintenance_poll_s = 1\n\n[disturbance]\nwindow_s = 10\n".into();
}

struct Feed {
    status: u16,
    etag: Option<String>,
    cache_control: Option<String>,
    body: String,
}

async fn get(client: &reqwest::Client, url: &str, etag: Option<&str>) -> Feed {
    let mut r = client.get(url);
    if let Some(tag) = etag {
        r = r.header("If-None-Match", tag);
    }
    let r = r.send().await.unwrap();
    let header = |n: &str| {
        r.headers()
            .get(n)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    Feed {
        status: r.status().as_u16(),
        etag: header("etag"),
        cache_control: header("cache-control"),
        body: r.text().await.unwrap(),
    }
}

async fn summary(stack: &Stack) -> serde_json::Value {
    let url = format!("{}/status/v1/summary.json", stack.relay_url());
    let f = get(&stack.client(SUNDSVALL), &url, None).await;
    assert_eq!(f.status, 200, "{}", f.body);
    serde_json::from_str(&f.body).unwrap()
}

/// Polls the summary until `pred` holds, or fails with the last one.
async fn summary_until(
    stack: &Stack,
    what: &str,
    pred: impl Fn(&serde_json::Value) -> bool,
) -> serde_json::Value {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let v = summary(stack).await;
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
        .unwrap()
        .iter()
        .find(|c| c["id"] == id)
        .unwrap_or_else(|| panic!("no component {id}: {v:#}"))
}

/// Asks SSBTEK about the test person, so the feed has calls behind it.
async fn ask_once(stack: &Stack) {
    let q = question(
        PERSON,
        SUNDSVALL,
        &[
            relay_ssbtek::Slot::Csn,
            relay_ssbtek::Slot::Tns,
            relay_ssbtek::Slot::Skv,
        ],
        false,
    );
    let spec = LabelSpec::synch_request(SUNDSVALL, NODE_ORG, SSBTEK_PRODUCT, 1);
    let r = stack
        .client(SUNDSVALL)
        .post(format!("{}/shs/rs", stack.relay_url()))
        .header("Content-Type", "message/rfc822")
        .body(shs_message(&spec.to_xml(), &[("text/xml", &q)]))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// Nothing in a feed names a municipality or the person asked about.
fn assert_nothing_personal(stack: &Stack, feed: &str) {
    for c in &stack.demo().info.clients {
        if c.role == "municipality" {
            assert!(!feed.contains(&c.org), "{} in the feed:\n{feed}", c.org);
            assert!(!feed.contains(&c.name), "{} in the feed:\n{feed}", c.name);
        }
    }
    for p in [PERSON, "19121212-1212", "121212-1212"] {
        assert!(!feed.contains(p), "a personnummer in the feed:\n{feed}");
    }
}

/// The Atom document's structure as RFC 4287 requires it (§4.1.1, §4.1.2):
/// a `feed` in the Atom namespace with one `id`, `title`, `updated` and an
/// `author`; each entry with one `id` (an absolute IRI), `title` and `updated`
/// (RFC 3339). Returns each entry's (id, updated, text).
fn atom_entries(xml: &str) -> Vec<(String, String, String)> {
    use quick_xml::events::Event;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("history.atom");
    std::fs::write(&file, xml).unwrap();
    let lint = std::process::Command::new("xmllint")
        .arg("--noout")
        .arg(&file)
        .output()
        .expect("xmllint (apt-get install -y libxml2-utils)");
    assert!(
        lint.status.success(),
        "not well-formed XML: {}",
        String::from_utf8_lossy(&lint.stderr)
    );

    let mut reader = quick_xml::NsReader::from_str(xml);
    let mut path: Vec<String> = Vec::new();
    let mut feed_children: Vec<String> = Vec::new();
    let mut entries = Vec::new();
    let mut entry: Option<(Vec<String>, String, String, String)> = None;
    let mut text = String::new();
    loop {
        match reader.read_resolved_event().unwrap() {
            (ns, Event::Start(e)) => {
                let name = e.local_name().as_ref().to_owned();
                assert_eq!(
                    ns,
                    quick_xml::name::ResolveResult::Bound(quick_xml::name::Namespace(
                        "http://www.w3.org/2005/Atom"
                    )),
                    "{name} is not in the Atom namespace"
                );
                if path.is_empty() {
                    assert_eq!(name, "feed");
                }
                if path.len() == 1 {
                    feed_children.push(name.clone());
                    if name == "entry" {
                        entry = Some((Vec::new(), String::new(), String::new(), String::new()));
                    }
                }
                if path.len() == 2
                    && path[1] == "entry"
                    && let Some(en) = entry.as_mut()
                {
                    en.0.push(name.clone());
                }
                path.push(name);
                text.clear();
            }
            (_, Event::Empty(e)) => {
                let name = e.local_name().as_ref().to_owned();
                if path.len() == 1 {
                    feed_children.push(name);
                } else if path.len() == 2
                    && let Some(en) = entry.as_mut()
                {
                    en.0.push(name);
                }
            }
            (_, Event::Text(t)) => text.push_str(&t.xml10_content()),
            (_, Event::GeneralRef(r)) => match r.resolve_char_ref().unwrap() {
                Some(c) => text.push(c),
                None => text.push_str(
                    quick_xml::escape::resolve_predefined_entity(&r.xml10_content())
                        .expect("only XML's predefined entities"),
                ),
            },
            (_, Event::End(_)) => {
                let name = path.pop().unwrap();
                if path.len() == 2
                    && let Some(en) = entry.as_mut()
                {
                    match name.as_str() {
                        "id" => en.1 = text.clone(),
                        "updated" => en.2 = text.clone(),
                        "content" => en.3 = text.clone(),
                        _ => {}
                    }
                }
                if path.len() == 1 && name == "entry" {
                    let (children, id, updated, content) = entry.take().unwrap();
                    for required in ["id", "title", "updated"] {
                        assert_eq!(
                            children.iter().filter(|c| *c == required).count(),
                            1,
                            "entry {id}: one {required}"
                        );
                    }
                    assert!(
                        id.starts_with("urn:uuid:") || id.starts_with("urn:shs-relay:"),
                        "entry id {id:?} is not an absolute IRI"
                    );
                    chrono::DateTime::parse_from_rfc3339(&updated)
                        .unwrap_or_else(|e| panic!("entry {id}: updated {updated:?}: {e}"));
                    entries.push((id, updated, content));
                }
                text.clear();
            }
            (_, Event::Eof) => break,
            _ => {}
        }
    }
    for required in ["id", "title", "updated"] {
        assert_eq!(
            feed_children.iter().filter(|c| *c == required).count(),
            1,
            "feed: one {required}"
        );
    }
    assert!(feed_children.iter().any(|c| c == "author"), "feed: author");
    entries
}

#[tokio::test(flavor = "multi_thread")]
async fn a_disturbance_opens_an_incident_an_operator_updates_and_it_resolves_when_agencies_are_back()
 {
    let stack = Stack::start_with(start_options).await;
    let info = stack.demo().info.clone();
    let summary_url = format!("{}/status/v1/summary.json", stack.relay_url());
    let atom_url = format!("{}/status/v1/history.atom", stack.relay_url());
    let client = stack.client(SUNDSVALL);
    ask_once(&stack).await;

    // The shape vendors poll: page, status, one component per product × agency.
    let v = summary_until(&stack, "every component operational", |v| {
        COMPONENTS
            .iter()
            .all(|c| component(v, c)["status"] == "operational")
    })
    .await;
    assert_eq!(v["page"]["environment"], "test");
    assert!(v["page"]["name"].is_string() && v["page"]["updated_at"].is_string());
    assert_eq!(v["status"]["indicator"], "none", "{v:#}");
    let ids: Vec<&str> = v["components"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, COMPONENTS);
    assert!(component(&v, "ssbtek-csn")["last_success_at"].is_string());
    assert_eq!(v["incidents"], serde_json::json!([]));
    assert!(v["scheduled_maintenances"].is_array());

    // An unchanged feed: 304 to its ETag, with Cache-Control; a changed one
    // would come with a new ETag.
    let mut tag = None;
    let mut not_modified = false;
    for _ in 0..10 {
        let f = get(&client, &summary_url, tag.as_deref()).await;
        assert!(
            f.cache_control
                .as_deref()
                .is_some_and(|c| c.contains("max-age")),
            "{:?}",
            f.cache_control
        );
        let etag = f.etag.clone().expect("an ETag");
        assert!(etag.starts_with('"'), "a strong ETag: {etag}");
        if f.status == 304 {
            assert!(f.body.is_empty());
            assert_eq!(Some(etag), tag);
            not_modified = true;
            break;
        }
        assert_eq!(f.status, 200);
        assert_ne!(Some(etag.clone()), tag, "a new body has a new ETag");
        tag = Some(etag);
    }
    assert!(not_modified, "an unchanged feed never answered 304");
    let a = get(&client, &atom_url, None).await;
    assert_eq!(a.status, 200);
    let b = get(&client, &atom_url, a.etag.as_deref()).await;
    assert!(
        b.status == 304 || b.etag != a.etag,
        "history.atom: 304 to its ETag"
    );

    // Two agencies down: an incident with their components.
    let r = reqwest::Client::new()
        .put(format!("{}/admin/scenario", info.sim.admin))
        .body("[agency.CSN]\ndown = true\n\n[agency.TNS]\ndown = true\n")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    for _ in 0..4 {
        ask_once(&stack).await;
    }
    let v = summary_until(&stack, "an incident for CSN and TNS", |v| {
        v["incidents"].as_array().is_some_and(|i| {
            i.iter().any(|i| {
                let c = i["components"].to_string();
                c.contains("ssbtek-csn") && c.contains("ssbtek-tns")
            })
        }) && ["ssbtek-csn", "ssbtek-tns"]
            .iter()
            .all(|c| component(v, c)["status"] != "operational")
    })
    .await;
    let incident = &v["incidents"][0];
    assert_eq!(incident["status"], "investigating");
    assert_eq!(incident["impact"], "major");
    assert!(incident["started_at"].is_string());
    assert!(incident["resolved_at"].is_null());
    assert!(incident["updates"][0]["text"]["sv"].is_string());
    assert!(incident["updates"][0]["text"]["en"].is_string());
    assert_ne!(v["status"]["indicator"], "none");
    assert_eq!(
        component(&v, "ssbtek-skv")["status"],
        "operational",
        "{v:#}"
    );
    assert!(component(&v, "ssbtek-csn")["last_failure_at"].is_string());
    let id = incident["id"].as_str().unwrap().to_owned();
    assert_nothing_personal(&stack, &v.to_string());

    // The operator adds an update and changes the status.
    let admin = &info.admin["url"];
    let update = |body: serde_json::Value| {
        reqwest::Client::new()
            .post(format!("{admin}/admin/incidents/{id}/update"))
            .header("X-SHS-Admin", "1")
            .header("X-Operator", "driftledare")
            .json(&body)
            .send()
    };
    let r = update(serde_json::json!({
        "status": "identified",
        "text_sv": "CSN och TNS har avbrott i sina bastjänster.",
        "text_en": "CSN and TNS have outages in their base services."
    }))
    .await
    .unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    let r = update(serde_json::json!({"text_en": "Kontakta 2120002411"}))
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "an organisation number in a public text");
    let r = update(serde_json::json!({"status": "fixed", "text_en": "x"}))
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "an unknown status");
    let r = reqwest::Client::new()
        .post(format!("{admin}/admin/incidents/{id}/update"))
        .json(&serde_json::json!({"text_en": "x"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "without the admin header");
    let v = summary_until(&stack, "the operator's update", |v| {
        v["incidents"][0]["status"] == "identified"
    })
    .await;
    assert_eq!(
        v["incidents"][0]["updates"][0]["text"]["en"],
        "CSN and TNS have outages in their base services."
    );
    assert_eq!(
        v["incidents"][0]["updates"][0]["text"]["sv"],
        "CSN och TNS har avbrott i sina bastjänster."
    );

    // The agencies are back: the incident resolves by itself.
    let r = reqwest::Client::new()
        .post(format!("{}/admin/reset", info.sim.admin))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    let v = summary_until(&stack, "the incident resolved", |v| {
        v["incidents"] == serde_json::json!([])
            && COMPONENTS
                .iter()
                .all(|c| component(v, c)["status"] != "major_outage")
    })
    .await;
    assert_nothing_personal(&stack, &v.to_string());
    let listed: serde_json::Value = reqwest::get(format!("{admin}/admin/incidents"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let resolved = listed
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["id"] == id.as_str())
        .unwrap();
    assert_eq!(resolved["status"], "resolved");
    assert!(resolved["resolved_at"].is_string());

    // The history keeps it, with every update.
    let a = get(&client, &atom_url, None).await;
    assert_eq!(a.status, 200);
    assert_nothing_personal(&stack, &a.body);
    let entries = atom_entries(&a.body);
    let (_, _, content) = entries
        .iter()
        .find(|(entry, _, _)| *entry == format!("urn:uuid:{id}"))
        .unwrap_or_else(|| panic!("no entry for the incident:\n{}", a.body));
    assert!(content.contains("resolved"), "{content}");
    assert!(content.contains("CSN and TNS have outages"), "{content}");

    // An unchanged history: 304.
    let again = get(&client, &atom_url, a.etag.as_deref()).await;
    assert!(again.status == 304 || again.etag != a.etag);

    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_caller_without_an_agreement_is_refused_the_status_feed() {
    let stack = Stack::start().await;
    let pki = stack.dir().join("pki");
    let ca = relay_pki::DevCa::load(
        &std::fs::read_to_string(pki.join("ca.pem")).unwrap(),
        &std::fs::read_to_string(pki.join("ca-key.pem")).unwrap(),
    )
    .unwrap();
    let stranger = ca
        .client_cert(&relay_pki::Subject {
            serial_number: Some("5560000001"),
            organisation: Some("Utan avtal AB"),
            common_name: "utan-avtal",
        })
        .unwrap()
        .write(&pki, "no-agreement")
        .unwrap();
    let client = https_client(
        &stack.demo().info.relay.ca,
        Some((&stranger.cert, &stranger.key)),
    );
    for path in ["summary.json", "history.atom"] {
        let url = format!("{}/status/v1/{path}", stack.relay_url());
        let f = get(&client, &url, None).await;
        assert_eq!(f.status, 403, "{path}: {}", f.body);
        assert!(f.body.contains("no agreement"), "{}", f.body);
        assert!(!f.body.contains("components"));
    }
    // Without a client certificate the handshake itself fails.
    let anonymous = https_client(&stack.demo().info.relay.ca, None);
    assert!(
        anonymous
            .get(format!("{}/status/v1/summary.json", stack.relay_url()))
            .send()
            .await
            .is_err()
    );
    // A vendor with an agreement (ELT only) may read it.
    let vendor = stack
        .demo()
        .info
        .clients
        .iter()
        .find(|c| c.role == "elt-vendor")
        .unwrap()
        .org
        .clone();
    let f = get(
        &stack.client(&vendor),
        &format!("{}/status/v1/summary.json", stack.relay_url()),
        None,
    )
    .await;
    assert_eq!(f.status, 200, "{}", f.body);
    let (_, metrics) = (
        (),
        reqwest::get(format!("{}/metrics", stack.demo().info.admin["url"]))
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    );
    assert!(
        metrics.contains("route=\"status\""),
        "the refusal is counted"
    );
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agencys_announced_maintenance_is_the_components_scheduled_maintenance() {
    let stack = Stack::start_with(start_options).await;
    let info = stack.demo().info.clone();
    let skv = info.providers.iter().find(|p| p.id == "SKV").unwrap();
    let start = chrono::Utc::now() + chrono::TimeDelta::hours(2);
    let end = start + chrono::TimeDelta::hours(3);
    let at =
        |t: chrono::DateTime<chrono::Utc>| t.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    std::fs::write(
        &skv.maintenance_file,
        format!(
            "[[window]]\nid = \"db-upgrade\"\nstart = \"{}\"\nend = \"{}\"\nsv = \"Uppgradering av databasen.\"\nen = \"Database upgrade.\"\n",
            at(start),
            at(end)
        ),
    )
    .unwrap();

    let v = summary_until(&stack, "SKV's scheduled maintenance", |v| {
        v["scheduled_maintenances"]
            .as_array()
            .is_some_and(|m| !m.is_empty())
    })
    .await;
    let m = &v["scheduled_maintenances"][0];
    assert_eq!(m["scheduled_for"], at(start));
    assert_eq!(m["scheduled_until"], at(end));
    assert_eq!(m["status"], "scheduled");
    assert_eq!(m["source"], "agency");
    assert_eq!(m["text"]["sv"], "Uppgradering av databasen.");
    assert_eq!(m["text"]["en"], "Database upgrade.");
    assert_eq!(
        m["components"],
        serde_json::json!([{"id": "ssbtek-skv", "name": "SSBTEK × SKV"}])
    );
    assert_eq!(component(&v, "ssbtek-skv")["status"], "operational");

    // Counted as planned in the audit trail the service-level report reads.
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let audit = std::fs::read_to_string(&info.audit["file"]).unwrap_or_default();
        if audit.lines().any(|l| {
            l.contains("\"outage\"") && l.contains("planned") && l.contains("provider:SKV")
        }) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no planned outage record:\n{audit}"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }

    // In the history too, under a stable id.
    let url = format!("{}/status/v1/history.atom", stack.relay_url());
    let a = get(&stack.client(SUNDSVALL), &url, None).await;
    let entries = atom_entries(&a.body);
    assert!(
        entries
            .iter()
            .any(|(id, _, _)| id == "urn:shs-relay:maintenance:SKV:db-upgrade"),
        "{}",
        a.body
    );

    // Withdrawn by the agency before it began: cancelled.
    std::fs::write(&skv.maintenance_file, "").unwrap();
    summary_until(&stack, "the window cancelled", |v| {
        v["scheduled_maintenances"] == serde_json::json!([])
    })
    .await;
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn two_nodes_on_one_store_open_one_incident_and_answer_the_same_feed() {
    let url = std::env::var("SHS_TEST_POSTGRES_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/test".to_owned());
    let stack = Stack::start_with(|o| {
        start_options(o);
        o.nodes = 2;
        o.postgres = Some(url);
    })
    .await;
    let info = stack.demo().info.clone();
    let nodes = info.relays.clone().expect("demo.json lists the relays");
    assert_eq!(nodes.len(), 2);
    let r = reqwest::Client::new()
        .put(format!("{}/admin/scenario", info.sim.admin))
        .body("[agency.CSN]\ndown = true\n\n[agency.TNS]\ndown = true\n")
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
    // Both nodes see the disturbance (their probes' health checks) and both
    // open the incident: the store keeps one.
    let v = summary_until(&stack, "an incident", |v| {
        v["incidents"].as_array().is_some_and(|i| !i.is_empty())
    })
    .await;
    let id = v["incidents"][0]["id"].clone();
    let client = stack.client(SUNDSVALL);
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let mut bodies = Vec::new();
        for node in &nodes {
            let f = get(
                &client,
                &format!("{}/status/v1/summary.json", node.url),
                None,
            )
            .await;
            assert_eq!(f.status, 200);
            bodies.push(f);
        }
        let second: serde_json::Value = serde_json::from_str(&bodies[1].body).unwrap();
        if second["incidents"].as_array().map(Vec::len) == Some(1)
            && second["incidents"][0]["id"] == id
            && bodies[0].etag == bodies[1].etag
        {
            assert_eq!(
                bodies[0].body, bodies[1].body,
                "the same ETag, the same bytes"
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the nodes never answered the same feed:\n{}\n{}",
            bodies[0].body,
            bodies[1].body
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    for node in &nodes {
        let listed: serde_json::Value = reqwest::get(format!("{}/admin/incidents", node.admin))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let automatic = listed
            .as_array()
            .unwrap()
            .iter()
            .filter(|i| i["automatic"] == true)
            .count();
        assert_eq!(automatic, 1, "one incident, opened once: {listed:#}");
    }
    stack.stop().await;
}
