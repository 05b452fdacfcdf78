//! The Python reference adapter (`providers/python/adapter.py`, Transportstyrelsen)
//! in the TNS slot of a real stack (`DemoOptions::python_adapters`, what
//! `shs-relay demo --python-adapter tns` does): it passes `shs-conformance`
//! with the same cases as the Rust adapters, and a municipality's SSBTEK
//! question is answered through the relay with its payload in the TNS slot.
//!
//! It runs on the suite's Python environment, `target/venv` (or `$SHS_PYTHON`);
//! without it the stack does not start and the failure names the command that
//! creates it.

// A test: a panic is its failure. clippy.toml lifts these lints in #[test]
// functions only, not in this crate's helpers and support modules.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::string_slice
)]

use relay_ssbtek::Slot;
use shs_tests::*;

const SUNDSVALL: &str = "2120002411";
const TOLVAN: &str = "191212121212";

async fn stack_with_python_tns() -> Stack {
    Stack::start_with(|o| o.python_adapters = vec!["TNS".into()]).await
}

fn tns_url(stack: &Stack) -> String {
    let tns = stack
        .demo()
        .info
        .providers
        .iter()
        .find(|p| p.id == "TNS")
        .expect("a TNS provider")
        .clone();
    assert_eq!(
        tns.implementation.as_deref(),
        Some("python"),
        "the Python adapter serves TNS"
    );
    tns.url
}

#[tokio::test(flavor = "multi_thread")]
async fn the_python_adapter_passes_the_kit_with_the_same_cases_as_the_rust_one() {
    let stack = stack_with_python_tns().await;
    let demo_json = std::fs::read_to_string(stack.dir().join("demo.json")).unwrap();
    assert!(
        demo_json.contains("\"implementation\": \"python\""),
        "demo.json marks the Python adapter: {demo_json}"
    );
    let url = tns_url(&stack);
    let python = conformance::run_kit(&stack, &url, "TNS").await;
    assert_eq!(
        python.not("pass"),
        ["submit.receipt", "submit.typed_refusal"],
        "{:#?}",
        python.cases
    );
    for s in ["submit.receipt", "submit.typed_refusal"] {
        assert_eq!(python.cases[s].0, "skipped", "{:#?}", python.cases);
    }
    assert_eq!(python.code, 0, "exit status");
    assert!(
        python.junit.contains("<testsuite") && python.junit.contains("name=\"cancellation\""),
        "the JUnit report names every case: {}",
        python.junit
    );

    // The same cases, by name, as the Rust adapter for the same slot reports
    // (the AF adapter of this stack stands in: every Rust adapter runs the
    // same kit in conformance.rs).
    let af = stack
        .demo()
        .info
        .providers
        .iter()
        .find(|p| p.id == "AF")
        .unwrap()
        .url
        .clone();
    let rust = conformance::run_kit(&stack, &af, "AF").await;
    assert_eq!(
        python.cases.keys().collect::<Vec<_>>(),
        rust.cases.keys().collect::<Vec<_>>(),
        "same case names"
    );
    assert_eq!(rust.code, 0, "{:#?}", rust.cases);
    stack.stop().await;
}

#[tokio::test(flavor = "multi_thread")]
async fn a_municipality_gets_the_python_adapters_answer_in_the_tns_slot() {
    let stack = stack_with_python_tns().await;
    let _ = tns_url(&stack);

    // All seven agencies for Tolvan, TNS answered by the Python adapter: the
    // whole answer is valid against the v10 XSD and TNS holds Tolvan's vehicles.
    let reply = ask(
        &stack,
        SUNDSVALL,
        &[question(TOLVAN, SUNDSVALL, &Slot::ALL, false)],
    )
    .await;
    let answers = answers_of(&reply);
    assert_eq!(answers.len(), 1);
    xmllint(answers[0].as_bytes(), &ssbtek_xsd())
        .unwrap_or_else(|e| panic!("valid against the v10 XSD: {e}\n{}", answers[0]));
    for slot in Slot::ALL {
        let xml = slot_xml(&answers[0], slot.as_str());
        assert!(xml.contains("<ssbt:data"), "{slot:?} answered: {xml}");
    }
    let tns = slot_xml(&answers[0], "TNS");
    assert!(tns.contains("resultat") && tns.contains("OK"), "{tns}");
    assert!(
        tns.contains("fordonsinnehav"),
        "Tolvan owns vehicles: {tns}"
    );

    // Ten persons at once, in order, each with a valid TNS slot.
    let persons = [
        "191212121212",
        "190308189802",
        "190312049802",
        "201901012391",
        "201903312385",
        "202601622380",
        "202601612381",
        "202601912393",
        "191401682396",
        "191212121212",
    ];
    let questions: Vec<Vec<u8>> = persons
        .iter()
        .map(|p| question(p, SUNDSVALL, &[Slot::Tns], true))
        .collect();
    let reply = ask(&stack, SUNDSVALL, &questions).await;
    let answers = answers_of(&reply);
    assert_eq!(answers.len(), 10);
    for (answer, person) in answers.iter().zip(persons) {
        xmllint(answer.as_bytes(), &ssbtek_xsd())
            .unwrap_or_else(|e| panic!("valid against the v10 XSD: {e}\n{answer}"));
        assert!(
            answer.contains(&format!(
                "<ssbt:personidentitet>{person}</ssbt:personidentitet>"
            )),
            "order"
        );
        assert!(slot_xml(answer, "TNS").contains("<ssbt:data"), "{answer}");
    }

    // The Python adapter logs JSON lines without the persons asked about.
    let log = std::fs::read_to_string(stack.dir().join("logs/shs-adapter-tns.log")).unwrap();
    assert!(log.contains("\"message\": \"query\""), "{log}");
    for person in persons {
        assert!(
            !log.contains(person),
            "no personnummer in the adapter's log"
        );
        assert!(
            !log.contains(&person[2..]),
            "no personnummer in the adapter's log"
        );
    }
    stack.stop().await;
}

#[test]
fn the_python_adapter_checks_its_configuration_like_the_rust_adapters() {
    let bin_dir = relay_demo::default_bin_dir().unwrap();
    let python = relay_demo::python_interpreter(&bin_dir).unwrap_or_else(|e| panic!("{e}"));
    let script = relay_demo::python_adapter_script(&bin_dir).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("tns.toml");
    std::fs::write(
        &config,
        "listen = \"127.0.0.1:0\"\ncolour = \"blue\"\n[tls]\ncert = \"/nonexistent/adapter.pem\"\nkey = \"k.pem\"\n[backend]\nurl = \"ftp://example\"\n[limits]\nmax_concurrent = 0\n",
    )
    .unwrap();
    let out = std::process::Command::new(&python)
        .arg(&script)
        .arg("--check-config")
        .arg(&config)
        .output()
        .unwrap();
    assert!(!out.status.success());
    let errors = String::from_utf8_lossy(&out.stderr);
    for key in [
        "colour: unknown key",
        "tls.client_ca: missing",
        "backend.url: must be an http(s) URL",
        "limits.max_concurrent: must be a positive integer",
        "tls.cert: cannot read /nonexistent/adapter.pem",
    ] {
        assert!(errors.contains(key), "names `{key}`: {errors}");
    }
    assert!(
        errors
            .lines()
            .all(|l| l.starts_with(&config.display().to_string())),
        "every error names the file: {errors}"
    );
    // --skip-files checks the keys only.
    let out = std::process::Command::new(&python)
        .arg(&script)
        .args(["--check-config"])
        .arg(&config)
        .arg("--skip-files")
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&out.stderr).contains("/nonexistent"));

    // The deployable example configuration of the TNS adapter is valid for it.
    let example = bin_dir.join("../../deploy/config/adapter-tns.toml");
    let text = std::fs::read_to_string(&example).unwrap();
    // Without [admin], which the Python adapter does not serve.
    let without_admin: String = text.split("\n[admin]").next().unwrap().to_owned();
    std::fs::write(&config, without_admin).unwrap();
    let out = std::process::Command::new(&python)
        .arg(&script)
        .arg("--check-config")
        .arg(&config)
        .arg("--skip-files")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).ends_with(": valid\n"));
}
