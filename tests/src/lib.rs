//! # shs-tests
//!
//! Helpers for the end-to-end tests in `tests/tests/`: they start the same
//! binaries an operator deploys (`shs-sim`, the seven `shs-adapter-*`, `shs-relay`)
//! through the demo launcher, talk to them over real mutual TLS, and validate
//! every SSBTEK document with `xmllint` against the real v10 XSD.
//!
//! [`collector`] is an OTLP trace collector for the tracing tests;
//! [`fault_proxy`] a TCP proxy that makes the network to the database refuse,
//! drop silently, delay or cut, for the store fault tests.
//! [`conformance`] runs `shs-conformance` against an adapter of a stack.
//!
//! The binaries must be built first (`cargo build --workspace --bins`); the
//! README's test command does that.

// The end-to-end tests' support library: a panic is a test failure.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::string_slice
)]

pub mod collector;
pub mod conformance;
pub mod fault_proxy;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use relay_demo::{Demo, DemoClient, DemoOptions};

/// The contracts vendored in the repository (`contracts/` at its root).
pub fn shared_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The SSBTEK v10 XSD.
pub fn ssbtek_xsd() -> PathBuf {
    shared_dir().join(
        "contracts/ssbtek-v10/schemas/se/forsakringskassan/schema/integration/ssbt/_10/sammansatt_bastjanst_v10.xsd",
    )
}

/// Validates `xml` with `xmllint --schema`; the error carries xmllint's output.
pub fn xmllint(xml: &[u8], xsd: &Path) -> Result<(), String> {
    let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
    let file = dir.path().join("doc.xml");
    std::fs::write(&file, xml).map_err(|e| e.to_string())?;
    let out = Command::new("xmllint")
        .arg("--noout")
        .arg("--schema")
        .arg(xsd)
        .arg(&file)
        .output()
        .map_err(|e| format!("cannot run xmllint (apt-get install libxml2-utils): {e}"))?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).into_owned())
    }
}

/// The peak resident memory (`VmHWM`, KiB) of process `pid`; 0 when unknown.
pub fn vm_hwm_kb(pid: u32) -> u64 {
    proc_status_kb(pid, "VmHWM")
}

/// The resident memory now (`VmRSS`, KiB) of process `pid`; 0 when unknown.
pub fn vm_rss_kb(pid: u32) -> u64 {
    proc_status_kb(pid, "VmRSS")
}

/// Sets the peak resident memory (`VmHWM`) of process `pid` back to its
/// resident memory now, so that a later peak is one of what follows; false
/// when the kernel refused (then `VmHWM` still holds any earlier peak, which
/// only makes a growth measured from it larger).
pub fn reset_peak_rss(pid: u32) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

fn proc_status_kb(pid: u32, field: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| s.lines().find(|l| l.starts_with(field)).map(str::to_owned))
        .and_then(|l| l.split_whitespace().nth(1).and_then(|v| v.parse().ok()))
        .unwrap_or(0)
}

/// An SHS message with `label_xml` and one data part of `size` bytes,
/// streamed in 64 KiB chunks (never held whole in the test's memory).
pub fn streamed_message(label_xml: &str, size: usize) -> reqwest::Body {
    let full = shs_message(label_xml, &[("application/octet-stream", b"@@BODY@@")]);
    let at = full
        .windows(8)
        .position(|w| w == b"@@BODY@@")
        .expect("the placeholder");
    let (head, tail) = full.split_at(at);
    let tail = tail.get(8..).unwrap_or_default().to_vec();
    let chunk = bytes::Bytes::from(vec![b'z'; 64 * 1024]);
    let stream = futures::stream::iter(
        std::iter::once(bytes::Bytes::from(head.to_vec()))
            .chain(std::iter::repeat_n(chunk.clone(), size / chunk.len()))
            .chain(std::iter::once(bytes::Bytes::from(tail)))
            .map(Ok::<_, std::io::Error>),
    );
    reqwest::Body::wrap_stream(stream)
}

/// Reads a response body to its end without keeping it; its length.
pub async fn drained(mut r: reqwest::Response) -> usize {
    let mut total = 0usize;
    while let Some(c) = r.chunk().await.expect("the body") {
        total += c.len();
    }
    total
}

/// The `shs` client of the workspace, pointed at the stack's `demo.json`.
pub fn shs_command(stack: &Stack) -> Command {
    let mut c = Command::new(relay_demo::default_bin_dir().expect("bin dir").join("shs"));
    c.arg("--demo").arg(stack.dir());
    c
}

/// A running stack for one test; stopped (every process killed) on drop.
pub struct Stack {
    pub demo: Option<Demo>,
    _dir: tempfile::TempDir,
}

impl Stack {
    /// Starts the stack with the default scenario.
    pub async fn start() -> Stack {
        Self::start_with(|_| {}).await
    }

    /// Starts the stack after letting the test adjust the options.
    pub async fn start_with(adjust: impl FnOnce(&mut DemoOptions)) -> Stack {
        relay_pki::tls::install_crypto_provider();
        let dir = tempfile::tempdir().expect("tempdir");
        let mut opts = DemoOptions::new(dir.path()).expect("bin dir");
        adjust(&mut opts);
        let demo = Demo::start(opts).await.expect("the demo stack starts");
        Stack {
            demo: Some(demo),
            _dir: dir,
        }
    }

    pub fn demo(&self) -> &Demo {
        self.demo.as_ref().expect("running")
    }

    pub fn dir(&self) -> &Path {
        &self.demo().dir
    }

    /// The demo client of organisation `org`.
    pub fn client_info(&self, org: &str) -> DemoClient {
        self.demo()
            .info
            .clients
            .iter()
            .find(|c| c.org == org)
            .cloned()
            .unwrap_or_else(|| panic!("no demo client {org}"))
    }

    /// An HTTPS client presenting `org`'s certificate.
    pub fn client(&self, org: &str) -> reqwest::Client {
        let c = self.client_info(org);
        https_client(&self.demo().info.relay.ca, Some((&c.cert, &c.key)))
    }

    pub fn relay_url(&self) -> &str {
        &self.demo().info.relay.url
    }

    /// Everything the stack's processes logged so far, concatenated.
    pub fn all_logs(&self) -> String {
        let mut all = String::new();
        if let Ok(entries) = std::fs::read_dir(&self.demo().info.logs) {
            for e in entries.flatten() {
                if let Ok(text) = std::fs::read_to_string(e.path()) {
                    all.push_str(&text);
                }
            }
        }
        all
    }

    /// Kills the relay (SIGKILL, as a crash would) and waits until it has exited.
    pub async fn kill_relay(&mut self) {
        self.demo
            .as_mut()
            .expect("running")
            .kill("shs-relay")
            .await
            .expect("the relay is killed");
    }

    /// Starts the relay again from the same configuration, store and audit
    /// trail (after [`Stack::kill_relay`]); [`Stack::relay_url`] follows it.
    pub async fn restart_relay(&mut self) {
        self.demo
            .as_mut()
            .expect("running")
            .restart_relay()
            .await
            .expect("the relay starts again");
    }

    /// Stops every process gracefully.
    pub async fn stop(mut self) {
        if let Some(d) = self.demo.take() {
            d.stop().await;
        }
    }
}

/// An HTTPS client trusting `ca`, presenting `identity` when given.
pub fn https_client(ca: &Path, identity: Option<(&Path, &Path)>) -> reqwest::Client {
    let tls = relay_pki::tls::client_config(ca, identity, &[b"http/1.1"]).expect("tls config");
    reqwest::Client::builder()
        .use_preconfigured_tls(tls)
        .timeout(Duration::from_secs(60))
        .build()
        .expect("client")
}

/// An SSBTEK question from `org` about `person` for `slots` over the last three
/// months; `echo` asks for the question back in the answer.
pub fn question(person: &str, org: &str, slots: &[relay_ssbtek::Slot], echo: bool) -> Vec<u8> {
    let today = chrono::Local::now().date_naive();
    let period = relay_ssbtek::Period::new(today - chrono::Months::new(3), today).unwrap();
    relay_ssbtek::QuestionBuilder::new(
        relay_ident::Personnummer::parse(person).unwrap(),
        relay_ssbtek::Ingivare::new(
            relay_ident::Organisationsnummer::parse(org).unwrap(),
            "Kommunen",
            "handlaggare-7",
        ),
        "ARENDE-2026-1",
        period,
    )
    .include_all(slots.iter().copied())
    .fragan_skall_inkluderas(echo)
    .build()
    .unwrap()
    .to_xml(true)
    .to_vec()
}

/// The relay's answer to one SHS message.
pub struct Reply {
    pub status: u16,
    /// `X-shs-errorcode`, when the relay refused.
    pub errorcode: Option<String>,
    pub body: Vec<u8>,
}

/// POSTs an SHS message to the relay at `url`.
pub async fn post(client: &reqwest::Client, url: &str, message: Vec<u8>) -> Reply {
    let r = client
        .post(format!("{url}/shs/rs"))
        .header("Content-Type", "message/rfc822")
        .body(message)
        .send()
        .await
        .expect("the relay answers");
    Reply {
        status: r.status().as_u16(),
        errorcode: r
            .headers()
            .get("X-shs-errorcode")
            .map(|v| v.to_str().unwrap().to_owned()),
        body: r.bytes().await.unwrap().to_vec(),
    }
}

/// Sends `questions` (one data part each) to SSBTEK as `from`, synchronously.
pub async fn ask(stack: &Stack, from: &str, questions: &[Vec<u8>]) -> Reply {
    ask_with(&stack.client(from), stack.relay_url(), from, questions).await
}

/// [`ask`] with `from`'s client ([`Stack::client`]) and the relay's URL, for a
/// task that does not hold the stack.
pub async fn ask_with(
    client: &reqwest::Client,
    url: &str,
    from: &str,
    questions: &[Vec<u8>],
) -> Reply {
    let spec = LabelSpec::synch_request(
        from,
        relay_demo::NODE_ORG,
        relay_demo::SSBTEK_PRODUCT,
        questions.len(),
    );
    let parts: Vec<(&str, &[u8])> = questions
        .iter()
        .map(|q| ("text/xml; charset=UTF-8", q.as_slice()))
        .collect();
    post(client, url, shs_message(&spec.to_xml(), &parts)).await
}

/// The SSBTEK answers of a 200 reply, one per question.
pub fn answers_of(reply: &Reply) -> Vec<String> {
    assert_eq!(
        reply.status,
        200,
        "{}",
        String::from_utf8_lossy(&reply.body)
    );
    split_message(&reply.body)
        .into_iter()
        .skip(1)
        .map(|p| String::from_utf8(p.body).unwrap())
        .collect()
}

/// The XML of `slot` (`CSN`, ...) in one answer.
pub fn slot_xml<'a>(answer: &'a str, slot: &str) -> &'a str {
    let open = format!("<ssbt:{slot}>");
    let close = format!("</ssbt:{slot}>");
    let start = answer
        .find(&open)
        .unwrap_or_else(|| panic!("no {slot} slot in {answer}"));
    let end = answer[start..].find(&close).unwrap() + start;
    &answer[start..end]
}

/// An SHS 1.2 label as an external client would write it (ISO-8859-1 prolog,
/// DOCTYPE, URN addresses). `to` and `product` are plain ids.
pub struct LabelSpec<'a> {
    pub tx_id: String,
    pub corr_id: String,
    pub from: &'a str,
    pub to: Option<&'a str>,
    pub product: &'a str,
    pub transfer_type: &'a str,
    pub sequence_type: &'a str,
    pub status: &'a str,
    pub datapart_types: Vec<&'a str>,
}

impl<'a> LabelSpec<'a> {
    /// A synchronous request from `from` to `to` for `product` with `parts` data parts.
    pub fn synch_request(from: &'a str, to: &'a str, product: &'a str, parts: usize) -> Self {
        let tx = uuid::Uuid::new_v4().to_string();
        Self {
            tx_id: tx.clone(),
            corr_id: tx,
            from,
            to: Some(to),
            product,
            transfer_type: "synch",
            sequence_type: "request",
            status: "production",
            datapart_types: vec!["xml"; parts],
        }
    }

    /// An asynchronous message from `from` to `to` for `product`, with
    /// `parts` data parts and `sequence` as its sequence type.
    pub fn asynch(
        from: &'a str,
        to: &'a str,
        product: &'a str,
        parts: usize,
        sequence: &'a str,
    ) -> Self {
        let mut spec = Self::synch_request(from, to, product, parts);
        spec.transfer_type = "asynch";
        spec.sequence_type = sequence;
        spec
    }

    pub fn to_xml(&self) -> String {
        let to = self
            .to
            .map(|t| format!("    <to>urn:X-shs:{t}</to>\n"))
            .unwrap_or_default();
        let data: String = self
            .datapart_types
            .iter()
            .map(|t| format!("        <data datapartType=\"{t}\"/>\n"))
            .collect();
        format!(
            "<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\n<!DOCTYPE shs.label SYSTEM \"shs-label-1.2.dtd\">\n<shs.label version=\"1.2\" tx.id=\"{tx}\" corr.id=\"{corr}\" transfer-type=\"{tt}\" message-type=\"simple\" document-type=\"simple\" sequence-type=\"{st}\" status=\"{status}\">\n    <from commonName=\"\">urn:X-shs:{from}</from>\n{to}    <product>urn:X-shs:{product}</product>\n    <datetime>{now}</datetime>\n    <content content.id=\"{content}\">\n{data}    </content>\n</shs.label>\n",
            tx = self.tx_id,
            corr = self.corr_id,
            tt = self.transfer_type,
            st = self.sequence_type,
            status = self.status,
            from = self.from,
            product = self.product,
            now = chrono::Local::now().format("%Y-%m-%dT%H:%M:%S"),
            content = uuid::Uuid::new_v4(),
        )
    }
}

/// A complete SHS message (`multipart/mixed`, label first), as bytes with its
/// top-level headers, ready to POST as `message/rfc822`.
pub fn shs_message(label_xml: &str, parts: &[(&str, &[u8])]) -> Vec<u8> {
    let boundary = format!("----=_Part_{}", uuid::Uuid::new_v4().simple());
    let mut out = Vec::new();
    out.extend_from_slice(
        format!(
            "Subject: SHS Message\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; \r\n\tboundary=\"{boundary}\"\r\n\r\n--{boundary}\r\nContent-Type: text/xml; charset=ISO-8859-1\r\nContent-Transfer-Encoding: binary\r\n\r\n"
        )
        .as_bytes(),
    );
    out.extend_from_slice(label_xml.as_bytes());
    for (content_type, body) in parts {
        out.extend_from_slice(
            format!(
                "\r\n--{boundary}\r\nContent-Type: {content_type}\r\nContent-Transfer-Encoding: binary\r\nContent-Disposition: attachment\r\n\r\n"
            )
            .as_bytes(),
        );
        out.extend_from_slice(body);
    }
    out.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    out
}

/// One MIME part of a reply: its headers (lower-cased names) and body.
pub struct Part {
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Part {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Splits a `multipart/mixed` message with top-level headers into its parts
/// (a deliberately independent, simple reader for tests; binary bodies only).
pub fn split_message(message: &[u8]) -> Vec<Part> {
    let text = String::from_utf8_lossy(message);
    let header_end = text
        .find("\r\n\r\n")
        .map(|i| (i, 4))
        .or_else(|| text.find("\n\n").map(|i| (i, 2)));
    let (end, _) = header_end.expect("message headers");
    let headers = &text[..end];
    let unfolded = headers
        .replace("\r\n\t", " ")
        .replace("\r\n ", " ")
        .replace("\n\t", " ")
        .replace("\n ", " ");
    let boundary = unfolded
        .split("boundary=")
        .nth(1)
        .expect("boundary parameter")
        .trim_start_matches('"')
        .split(['"', ';', '\r', '\n'])
        .next()
        .unwrap()
        .to_owned();
    let delimiter = format!("--{boundary}");
    let bytes = message;
    let mut parts = Vec::new();
    let positions: Vec<usize> = find_all(bytes, delimiter.as_bytes());
    for pair in positions.windows(2) {
        let start = pair[0] + delimiter.len();
        let mut chunk = &bytes[start..pair[1]];
        chunk = chunk
            .strip_prefix(b"\r\n")
            .or_else(|| chunk.strip_prefix(b"\n"))
            .unwrap_or(chunk);
        chunk = chunk
            .strip_suffix(b"\r\n")
            .or_else(|| chunk.strip_suffix(b"\n"))
            .unwrap_or(chunk);
        let split = find_all(chunk, b"\r\n\r\n")
            .first()
            .map(|&i| (i, 4))
            .or_else(|| find_all(chunk, b"\n\n").first().map(|&i| (i, 2)));
        let (i, n) = split.expect("part headers");
        let headers = String::from_utf8_lossy(&chunk[..i])
            .lines()
            .filter_map(|l| l.split_once(':'))
            .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
            .collect();
        parts.push(Part {
            headers,
            body: chunk[i + n..].to_vec(),
        });
    }
    parts
}

fn find_all(haystack: &[u8], needle: &[u8]) -> Vec<usize> {
    haystack
        .windows(needle.len())
        .enumerate()
        .filter(|(_, w)| *w == needle)
        .map(|(i, _)| i)
        .collect()
}
