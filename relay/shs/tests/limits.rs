//! Hostile documents: every bound of [`DocumentLimits`] and [`Limits`] is
//! refused with `IllegalMessageStructure`, in linear time, and no input
//! panics (including the inputs the fuzzer found, replayed from
//! `fuzz/regressions/`).

use std::time::{Duration, Instant};

use relay_shs::*;

/// A valid label with `extra` inserted just before `</shs.label>` and
/// `root_attrs` added to the root element.
fn label_with(root_attrs: &str, extra: &str) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<shs.label version=\"1.2\" tx.id=\"4c9fd3e8-b4c4-49aa-926a-52a68864a7b8\" corr.id=\"5a01ff87-e641-486e-8521-8e82d1ee1052\" sequence-type=\"event\"{root_attrs}><from>urn:X-shs:5565317129</from><to>urn:X-shs:0000000000</to><product>urn:X-shs:error</product><datetime>2013-06-17T14:57:20</datetime><content content.id=\"82b9c7e7-59ab-4d5d-b430-d5101c8b690b\"><data datapartType=\"txt\"/></content>{extra}</shs.label>\n"
    )
}

fn refused_as_structure<T>(r: Result<T, ShsError>, why: &str) -> String {
    match r {
        Err(e) => {
            assert_eq!(e.code, ErrorCode::IllegalMessageStructure, "{why}: {e}");
            e.info
        }
        Ok(_) => panic!("{why}: accepted"),
    }
}

#[test]
fn the_base_label_is_valid() {
    Label::parse(label_with("", "").as_bytes()).unwrap();
}

#[test]
fn an_encoding_declaration_with_a_non_ascii_quote_is_illegal_message_structure() {
    // `encoding=` followed by a two- or three-byte character used to be cut
    // inside the character (a panic that dropped the connection).
    for quote in ["«", "“", "é", "\u{2028}", "😀"] {
        let doc = format!(
            "<?xml version=\"1.0\" encoding={quote}UTF-8{quote}?><shs.label tx.id=\"a\" corr.id=\"b\"/>"
        );
        let info = refused_as_structure(Label::parse(doc.as_bytes()), quote);
        assert!(!info.contains("UTF-8"), "{info}");
    }
    // The same through the MIME reader, as a client would send it.
    let label = label_with("", "").replacen("encoding=\"UTF-8\"", "encoding=«UTF-8»", 1);
    let message = format!(
        "Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/xml\r\n\r\n{label}\r\n--b\r\nContent-Type: text/plain\r\n\r\nhej\r\n--b--\r\n"
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    refused_as_structure(
        rt.block_on(ShsMessage::parse(
            message.as_bytes(),
            None,
            Limits::default(),
        )),
        "MIME",
    );
    // An unquoted or unterminated value is refused too; a quoted one still reads.
    for bad in ["encoding=UTF-8", "encoding=\"UTF-8", "encoding"] {
        let doc = format!("<?xml version=\"1.0\" {bad}?><shs.label/>");
        refused_as_structure(Label::parse(doc.as_bytes()), bad);
    }
    Label::parse(label_with("", "").replace('"', "'").as_bytes()).unwrap();
}

#[test]
fn every_document_limit_of_a_label_is_illegal_message_structure() {
    let limits = LABEL_LIMITS;
    let deep = format!(
        "{}{}",
        "<history>".repeat(limits.max_depth),
        "</history>".repeat(limits.max_depth)
    );
    let many = "<meta name=\"x\">v</meta>".repeat(limits.max_elements);
    let attrs: String = (0..=limits.max_attributes)
        .map(|i| format!(" a{i}=\"v\""))
        .collect();
    let long_name = format!("<{n}>v</{n}>", n = "n".repeat(limits.max_name_bytes + 1));
    let long_attr_name = format!(" {}=\"v\"", "n".repeat(limits.max_name_bytes + 1));
    let long_text = format!(
        "<subject>{}</subject>",
        "t".repeat(limits.max_text_bytes + 1)
    );
    let long_value = format!(" x=\"{}\"", "t".repeat(limits.max_text_bytes + 1));
    let long_refs = format!(
        "<subject>{}</subject>",
        "&amp;".repeat(limits.max_text_bytes + 1)
    );
    let cases = [
        ("depth", label_with("", &deep), "nested deeper"),
        ("elements", label_with("", &many), "elements"),
        ("attributes", label_with(&attrs, ""), "attributes"),
        ("element name", label_with("", &long_name), "name longer"),
        (
            "attribute name",
            label_with(&long_attr_name, ""),
            "name longer",
        ),
        ("text", label_with("", &long_text), "text longer"),
        (
            "attribute value",
            label_with(&long_value, ""),
            "value longer",
        ),
        (
            "text from references",
            label_with("", &long_refs),
            "text longer",
        ),
    ];
    let wide = DocumentLimits {
        max_bytes: usize::MAX,
        ..limits
    };
    for (name, doc, expected) in cases {
        let info = refused_as_structure(Label::parse_with(doc.as_bytes(), &wide), name);
        assert!(info.contains(expected), "{name}: {info}");
    }
    let big = label_with("", &" ".repeat(limits.max_bytes));
    let info = refused_as_structure(Label::parse(big.as_bytes()), "size");
    assert!(info.contains("larger than"), "{info}");
}

#[test]
fn the_mime_reader_applies_the_label_document_limits() {
    let attrs: String = (0..5).map(|i| format!(" a{i}=\"v\"")).collect();
    let label = label_with(&attrs, "");
    let message = format!(
        "Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/xml\r\n\r\n{label}\r\n--b\r\nContent-Type: text/plain\r\n\r\nhej\r\n--b--\r\n"
    );
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let parse = |limits: Limits| rt.block_on(ShsMessage::parse(message.as_bytes(), None, limits));
    parse(Limits::default()).unwrap();
    let tight = Limits {
        label_document: DocumentLimits {
            max_attributes: 8,
            ..LABEL_LIMITS
        },
        ..Limits::default()
    };
    let info = refused_as_structure(parse(tight), "tight");
    assert!(info.contains("more than 8 attributes"), "{info}");
}

#[test]
fn management_and_message_list_documents_have_limits_too() {
    let management = |extra: &str| {
        format!(
            "<?xml version=\"1.0\"?><shs.management corr.id=\"c\" content.id=\"i\"><datetime>2013-06-17</datetime><error errorcode=\"OtherError\">{extra}</error></shs.management>"
        )
    };
    Management::parse(management("").as_bytes()).unwrap();
    let appinfo = "<appinfo name=\"n\">v</appinfo>".repeat(100);
    let tight = DocumentLimits {
        max_elements: 50,
        ..MANAGEMENT_LIMITS
    };
    let info = refused_as_structure(
        Management::parse_with(management(&appinfo).as_bytes(), &tight),
        "management",
    );
    assert!(info.contains("more than 50 elements"), "{info}");
    let huge = management(&" ".repeat(MANAGEMENT_LIMITS.max_bytes));
    refused_as_structure(Management::parse(huge.as_bytes()), "management size");

    let list = |messages: usize| {
        format!(
            "<?xml version=\"1.0\"?><shs.message-list version=\"1.2\">{}</shs.message-list>",
            "<message tx.id=\"t\" timestamp=\"2013-06-17T14:57:20\" sequence-type=\"event\"/>"
                .repeat(messages)
        )
    };
    assert_eq!(
        MessageList::parse(list(3).as_bytes())
            .unwrap()
            .messages
            .len(),
        3
    );
    let tight = DocumentLimits {
        max_bytes: 1024,
        ..MESSAGE_LIST_LIMITS
    };
    let info = refused_as_structure(
        MessageList::parse_with(list(100).as_bytes(), &tight),
        "list size",
    );
    assert!(info.contains("larger than 1024"), "{info}");
    let deep = DocumentLimits {
        max_depth: 1,
        ..MESSAGE_LIST_LIMITS
    };
    refused_as_structure(
        MessageList::parse_with(list(1).as_bytes(), &deep),
        "list depth",
    );
}

#[test]
fn a_label_with_two_hundred_thousand_attributes_is_refused_in_linear_time() {
    let attrs: String = (0..200_000).map(|i| format!(" a{i}=\"v\"")).collect();
    let doc = label_with(&attrs, "");
    assert!(doc.len() > 2_000_000);
    // Within the default bounds: refused at the 33rd attribute.
    let started = Instant::now();
    refused_as_structure(
        Label::parse_with(
            doc.as_bytes(),
            &DocumentLimits {
                max_bytes: usize::MAX,
                ..LABEL_LIMITS
            },
        ),
        "attributes",
    );
    // Without an attribute bound, every name is checked once against a set:
    // the whole tag is read in linear time (a repeated name at the end is
    // still found).
    let repeated = label_with(&format!("{attrs} a7=\"again\""), "");
    let unbounded = DocumentLimits {
        max_bytes: usize::MAX,
        max_attributes: usize::MAX,
        ..LABEL_LIMITS
    };
    refused_as_structure(
        Label::parse_with(repeated.as_bytes(), &unbounded),
        "repeated",
    );
    // Debug builds with optimised dependencies take well under a second; the
    // bound is generous for a loaded 2-core machine.
    let took = started.elapsed();
    assert!(took < Duration::from_secs(10), "took {took:?}");
}

/// Every input the fuzzer found (`fuzz/regressions/shs_*/`) is read again
/// here, so CI replays them without fuzzing: none may panic.
#[test]
fn fuzz_regression_inputs_do_not_panic() {
    let root = concat!(env!("CARGO_MANIFEST_DIR"), "/../../fuzz/regressions");
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    for target in [
        "shs_label",
        "shs_mime",
        "shs_management",
        "shs_message_list",
    ] {
        let Ok(dir) = std::fs::read_dir(format!("{root}/{target}")) else {
            continue;
        };
        for entry in dir {
            let path = entry.unwrap().path();
            let data = std::fs::read(&path).unwrap();
            match target {
                "shs_label" => {
                    let _ = Label::parse(&data);
                    let _ = Label::from_message_prefix(&data);
                }
                "shs_mime" => {
                    let _ = rt.block_on(ShsMessage::parse(&data, None, Limits::default()));
                }
                "shs_management" => {
                    let _ = Management::parse(&data);
                }
                _ => {
                    let _ = MessageList::parse(&data);
                }
            }
        }
    }
}
