//! Behaviour of the SHS 1.2 library against Axel-shaped test vectors (written as
//! our own fixtures) and generated messages.

// A test: a panic is its failure. clippy.toml lifts these lints in #[test]
// functions only, not in this crate's helpers and support modules.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::string_slice
)]

use bytes::Bytes;
use proptest::prelude::*;
use relay_shs::*;

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

fn fixture(name: &str) -> Vec<u8> {
    std::fs::read(format!("{FIXTURES}/{name}")).unwrap()
}

fn rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

fn parse(bytes: &[u8]) -> Result<ShsMessage, ShsError> {
    rt().block_on(ShsMessage::parse(bytes, None, Limits::default()))
}

fn structure_error(r: Result<ShsMessage, ShsError>) -> String {
    let e = r.expect_err("must be refused");
    assert_eq!(e.code, ErrorCode::IllegalMessageStructure, "{e}");
    e.info
}

#[test]
fn an_axel_text_message_with_lf_line_ends_parses() {
    let m = parse(&fixture("text-message.mime")).unwrap();
    assert_eq!(m.label.tx_id, "4c9fd3e8-b4c4-49aa-926a-52a68864a7b8");
    assert_eq!(m.label.corr_id, "5a01ff87-e641-486e-8521-8e82d1ee1052");
    assert_eq!(m.label.sequence_type, Some(SequenceType::Event));
    assert_eq!(m.label.document_type, MessageType::Simple);
    assert_eq!(m.label.from_address().unwrap().as_str(), "5565317129");
    assert_eq!(m.label.product_id(), Some(ProductId::Error));
    assert_eq!(m.label.history.len(), 1);
    assert_eq!(m.parts.len(), 1);
    assert_eq!(m.parts[0].headers.mime_type, "text/plain");
    assert_eq!(
        m.parts[0].headers.transfer_encoding,
        TransferEncoding::SevenBit
    );
    assert_eq!(m.parts[0].headers.filename, None);
    assert!(m.parts[0].body.starts_with(b"Lorem ipsum"));
    assert!(m.parts[0].body.ends_with(b"magna aliqua.\n"));
}

#[test]
fn a_swedish_filename_in_iso_8859_1_bytes_decodes() {
    let m = parse(&fixture("swedish-filename.mime")).unwrap();
    assert_eq!(
        m.parts[0].headers.filename.as_deref(),
        Some("filnamn-med-åäö.xml")
    );
    assert_eq!(
        m.label.data()[0].filename.as_deref(),
        Some("filnamn-med-åäö.xml")
    );
}

#[test]
fn a_message_without_closing_boundary_is_illegal_message_structure_but_its_label_reads() {
    let bytes = fixture("truncated.mime");
    let info = structure_error(parse(&bytes));
    assert!(info.contains("closing"), "{info}");
    let label = Label::from_message_prefix(&bytes).unwrap();
    assert_eq!(label.tx_id, "4c9fd3e8-b4c4-49aa-926a-52a68864a7b8");
}

#[test]
fn a_totally_broken_message_has_no_label_either() {
    let bytes = fixture("totally-broken.mime");
    structure_error(parse(&bytes));
    assert_eq!(
        Label::from_message_prefix(&bytes).unwrap_err().code,
        ErrorCode::IllegalMessageStructure
    );
}

#[test]
fn non_mime_text_and_binary_are_refused() {
    structure_error(parse(b"hello, this is not a MIME message\n\n"));
    let jpeg: Vec<u8> = [
        0xFF, 0xD8, 0xFF, 0xE0, 0x00, 0x10, b'J', b'F', b'I', b'F', 0,
    ]
    .into_iter()
    .chain((0..2000).map(|i| (i * 7 % 251) as u8))
    .collect();
    structure_error(parse(&jpeg));
    structure_error(parse(b""));
}

fn simple_label(parts: usize) -> Label {
    let mut label = Label::new(
        "2120002411",
        Some("2021005489"),
        ProductId::Uuid(uuid::Uuid::nil()),
        SequenceType::Request,
        TransferType::Synch,
    );
    label.content.body = ContentBody::Data(
        (0..parts)
            .map(|_| DataRef {
                datapart_type: "xml".into(),
                ..DataRef::default()
            })
            .collect(),
    );
    label
}

fn message_with(parts: &[(&str, &[u8])], label: &Label, boundary: &str) -> Vec<u8> {
    let mut out = format!(
        "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"{boundary}\"\r\n\r\n"
    )
    .into_bytes();
    for (i, (ct, body)) in [("text/xml", label.to_xml().as_slice())]
        .iter()
        .chain(parts.iter())
        .enumerate()
    {
        let _ = i;
        out.extend_from_slice(format!("--{boundary}\r\nContent-Type: {ct}\r\n\r\n").as_bytes());
        out.extend_from_slice(body);
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    out
}

#[test]
fn the_label_must_be_the_first_part() {
    let label = simple_label(1);
    let mut bytes =
        b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b1\r\n\r\n".to_vec();
    bytes.extend_from_slice(
        b"--b1\r\nContent-Type: text/plain\r\n\r\nfirst\r\n--b1\r\nContent-Type: text/xml\r\n\r\n",
    );
    bytes.extend_from_slice(&label.to_xml());
    bytes.extend_from_slice(b"\r\n--b1--\r\n");
    let info = structure_error(parse(&bytes));
    assert!(info.contains("First bodypart is not text/xml"), "{info}");
}

#[test]
fn a_missing_boundary_is_refused() {
    let bytes =
        b"MIME-Version: 1.0\r\nContent-Type: multipart/mixed\r\n\r\n--x\r\n\r\nhello\r\n--x--\r\n";
    structure_error(parse(bytes));
}

#[test]
fn fewer_parts_than_the_label_lists_is_refused_and_extra_parts_are_ignored() {
    let label = simple_label(2);
    let bytes = message_with(&[("text/plain", b"one")], &label, "bb");
    let info = structure_error(parse(&bytes));
    assert!(info.contains("lists 2 data parts"), "{info}");
    let label = simple_label(1);
    let bytes = message_with(
        &[("text/plain", b"one"), ("text/plain", b"extra")],
        &label,
        "bb",
    );
    let m = parse(&bytes).unwrap();
    assert_eq!(m.parts.len(), 1);
    assert_eq!(&m.parts[0].body[..], b"one");
}

#[test]
fn a_label_without_data_parts_is_refused() {
    let label = simple_label(0);
    let bytes = message_with(&[], &label, "bb");
    let info = structure_error(parse(&bytes));
    assert!(info.contains("at least two"), "{info}");
}

#[test]
fn every_size_limit_is_illegal_message_structure() {
    let label = simple_label(1);
    let big = vec![b'a'; 10_000];
    let bytes = message_with(&[("text/plain", &big)], &label, "bb");
    let run = |limits: Limits| rt().block_on(ShsMessage::parse(&bytes, None, limits));
    let info = structure_error(run(Limits {
        max_part_bytes: 5_000,
        ..Limits::default()
    }));
    assert!(info.contains("data part larger"), "{info}");
    let info = structure_error(run(Limits {
        max_total_bytes: 5_000,
        ..Limits::default()
    }));
    assert!(info.contains("message larger"), "{info}");
    let info = structure_error(run(Limits {
        max_label_bytes: 100,
        ..Limits::default()
    }));
    assert!(info.contains("label larger"), "{info}");
    let many = simple_label(3);
    let bytes3 = message_with(&[("a/b", b"1"), ("a/b", b"2"), ("a/b", b"3")], &many, "bb");
    let info = structure_error(rt().block_on(ShsMessage::parse(
        &bytes3,
        None,
        Limits {
            max_parts: 2,
            ..Limits::default()
        },
    )));
    assert!(info.contains("more than 2 data parts"), "{info}");
}

#[test]
fn xxe_and_entity_expansion_are_refused() {
    let xxe = br#"<?xml version="1.0"?>
<!DOCTYPE shs.label [<!ENTITY x SYSTEM "file:///etc/passwd">]>
<shs.label tx.id="a" corr.id="a" sequence-type="event"><from commonName="">&x;</from><product>confirm</product><datetime>2024-01-01T00:00:00</datetime><content content.id="c"><data datapartType="t"/></content></shs.label>"#;
    assert_eq!(
        Label::parse(xxe).unwrap_err().code,
        ErrorCode::IllegalMessageStructure
    );
    let laughs = br#"<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]>
<shs.label tx.id="a" corr.id="a" sequence-type="event"><from commonName="">&lol2;</from><product>confirm</product><datetime>2024-01-01T00:00:00</datetime><content content.id="c"><data datapartType="t"/></content></shs.label>"#;
    assert_eq!(
        Label::parse(laughs).unwrap_err().code,
        ErrorCode::IllegalMessageStructure
    );
    // An undeclared entity without a DOCTYPE is refused too.
    let undeclared = br#"<shs.label tx.id="a" corr.id="a" sequence-type="event"><from commonName="">&x;</from><product>confirm</product><datetime>2024-01-01T00:00:00</datetime><content content.id="c"><data datapartType="t"/></content></shs.label>"#;
    assert!(Label::parse(undeclared).is_err());
}

#[test]
fn label_rules_give_their_error_codes() {
    let mut l = simple_label(1);
    assert!(l.validate().is_ok());
    l.from = None;
    assert_eq!(l.validate().unwrap_err().code, ErrorCode::IllegalSender);
    l.originator = Some(Originator {
        value: "  ".into(),
        ..Originator::default()
    });
    assert_eq!(l.validate().unwrap_err().code, ErrorCode::IllegalSender);
    l.originator = Some(Originator {
        value: "mailto:kurt@example.com".into(),
        ..Originator::default()
    });
    assert!(l.validate().is_ok(), "originator without from is allowed");

    let mut l = simple_label(1);
    l.product.value = "00000000-0000-0000-0000 000000000000".into();
    assert_eq!(
        l.validate().unwrap_err().code,
        ErrorCode::IllegalProductType
    );
    l.product.value.clear();
    assert_eq!(
        l.validate().unwrap_err().code,
        ErrorCode::IllegalProductType
    );

    let mut l = simple_label(1);
    l.sequence_type = None;
    assert_eq!(
        l.validate().unwrap_err().code,
        ErrorCode::IllegalMessageStructure
    );

    let mut l = simple_label(1);
    l.sequence_type = Some(SequenceType::Adm);
    assert_eq!(
        l.validate().unwrap_err().code,
        ErrorCode::IllegalMessageStructure
    );
    l.transfer_type = TransferType::Asynch;
    assert!(l.validate().is_ok());

    let mut l = simple_label(1);
    l.message_type = MessageType::Compound;
    assert_eq!(
        l.validate().unwrap_err().code,
        ErrorCode::IllegalMessageStructure
    );
}

#[test]
fn two_from_elements_are_illegal_sender() {
    let xml = br#"<shs.label tx.id="a" corr.id="a" sequence-type="event"><from commonName="">1</from><from commonName="">2</from><product>confirm</product><datetime>2024-01-01T00:00:00</datetime><content content.id="c"><data datapartType="t"/></content></shs.label>"#;
    assert_eq!(
        Label::parse(xml).unwrap_err().code,
        ErrorCode::IllegalSender
    );
}

#[test]
fn dtd_defaults_apply_when_attributes_are_absent() {
    let xml = br#"<shs.label tx.id="a" corr.id="b" sequence-type="event"><from commonName="">urn:x-shs:1</from><product>urn:X-SHS:confirm</product><datetime>2024-01-01T00:00:00</datetime><content content.id="c"><data datapartType="t"/></content></shs.label>"#;
    let l = Label::parse(xml).unwrap();
    assert_eq!(l.transfer_type, TransferType::Asynch);
    assert_eq!(l.message_type, MessageType::Simple);
    assert_eq!(l.status, Status::Production);
    assert_eq!(l.product_id(), Some(ProductId::Confirm));
}

#[test]
fn labels_are_written_in_iso_8859_1_with_doctype_and_dtd_order() {
    let mut l = simple_label(1);
    l.subject = Some("Förfrågan ekonomiskt bistånd".into());
    l.meta.push(Meta {
        name: "ärendenummer".into(),
        value: "2024/123".into(),
    });
    l.end_recipient = Some(EndRecipient {
        value: "orgno:5555555555".into(),
        ..EndRecipient::default()
    });
    l.originator = Some(Originator {
        value: "mailto:kurt@example.com".into(),
        ..Originator::default()
    });
    let xml = l.to_xml();
    let text: String = xml.iter().map(|&b| char::from(b)).collect();
    assert!(text.starts_with("<?xml version=\"1.0\" encoding=\"ISO-8859-1\"?>\n<!DOCTYPE shs.label SYSTEM \"shs-label-1.2.dtd\">"));
    assert!(xml.contains(&0xF6), "ö as one ISO-8859-1 byte");
    let order = [
        "<originator",
        "<from",
        "<to",
        "<end-recipient",
        "<product",
        "<meta",
        "<subject",
        "<datetime",
        "<content",
    ];
    let positions: Vec<usize> = order.iter().map(|t| text.find(t).unwrap()).collect();
    assert!(positions.windows(2).all(|w| w[0] < w[1]), "{text}");
    assert!(text.contains("<from commonName=\"\">urn:X-shs:2120002411</from>"));
    assert_eq!(Label::parse(&xml).unwrap(), l);
}

#[test]
fn a_synch_reply_keeps_ids_and_swaps_the_parties() {
    let mut request = simple_label(1);
    request.from.as_mut().unwrap().common_name = "Sundsvalls kommun".into();
    request.originator = Some(Originator {
        value: "handlaggare-7".into(),
        ..Originator::default()
    });
    let reply = request.synch_reply(label::now());
    assert_eq!(reply.tx_id, request.tx_id);
    assert_eq!(reply.corr_id, request.corr_id);
    assert_eq!(reply.sequence_type, Some(SequenceType::Reply));
    assert_eq!(reply.from_address().unwrap().as_str(), "2021005489");
    assert_eq!(reply.to_address().unwrap().as_str(), "2120002411");
    assert_eq!(
        reply.to.as_ref().unwrap().common_name.as_deref(),
        Some("Sundsvalls kommun")
    );
    assert_eq!(reply.end_recipient.as_ref().unwrap().value, "handlaggare-7");
    assert!(reply.history.is_empty());
}

#[test]
fn confirm_and_error_messages_follow_the_reply_label_rules() {
    let mut request = simple_label(1);
    request.transfer_type = TransferType::Asynch;
    request.content.content_id = "x".repeat(50);
    let error = ShsError::from(ErrorCode::MissingAgreement);
    let m = adm_message(&request, AdmKind::Error, Some(&error));
    assert_ne!(
        m.label.tx_id, request.tx_id,
        "asynch adm messages get a new tx.id"
    );
    assert_eq!(m.label.corr_id, request.corr_id);
    assert_eq!(m.label.content.content_id.len(), 36);
    assert_eq!(m.label.sequence_type, Some(SequenceType::Adm));
    assert_eq!(m.label.product_id(), Some(ProductId::Error));
    assert_eq!(m.parts[0].datapart_type, "error");
    assert_eq!(m.parts[0].headers.filename.as_deref(), Some("error.xml"));
    let doc = Management::parse(&m.parts[0].body).unwrap();
    assert_eq!(doc.error_code(), Some(ErrorCode::MissingAgreement));
    assert_eq!(doc.corr_id, request.corr_id);
    let text = String::from_utf8_lossy(&m.parts[0].body);
    assert!(text.contains("<!DOCTYPE shs.management SYSTEM \"shs-management-1.2.dtd\">"));

    let confirm = adm_message(&request, AdmKind::Confirm, None);
    let doc = Management::parse(&confirm.parts[0].body).unwrap();
    assert!(matches!(doc.body, ManagementBody::Confirmation { .. }));
}

#[test]
fn management_documents_with_a_date_only_datetime_are_read() {
    let xml = br#"<shs.management corr.id="a" content.id="b"><datetime>2013-06-17</datetime><error errorcode="MissingAgreement" errorinfo="No valid agreement found for the message"/></shs.management>"#;
    let m = Management::parse(xml).unwrap();
    assert_eq!(m.datetime, "2013-06-17");
    assert_eq!(m.error_code(), Some(ErrorCode::MissingAgreement));
}

#[test]
fn a_message_list_round_trips() {
    let list = MessageList {
        messages: vec![ListedMessage {
            tx_id: "e41a8be7-5e81-46cd-8418-11a250348c29".into(),
            timestamp: "2013-06-01T23:44:05".into(),
            corr_id: Some("e41a8be7-5e81-46cd-8418-11a250348c29".into()),
            from: Some("0000000000".into()),
            to: Some("1111111111".into()),
            product: Some("00000000-0000-0000-0000-000000000000".into()),
            sequence_type: "request".into(),
            status: "production".into(),
            subject: Some("Ärende åäö".into()),
            data: vec![DataRef {
                datapart_type: "properties".into(),
                filename: Some("config.properties".into()),
                ..DataRef::default()
            }],
            ..ListedMessage::default()
        }],
    };
    let xml = list.to_xml();
    let text: String = xml.iter().map(|&b| char::from(b)).collect();
    assert!(text.contains("from=\"urn:X-shs:0000000000\""));
    assert!(text.contains("<!DOCTYPE shs.message-list SYSTEM \"shs-message-list-1.2.01.dtd\">"));
    assert_eq!(MessageList::parse(&xml).unwrap(), list);
    let empty = MessageList::default().to_xml();
    assert!(MessageList::parse(&empty).unwrap().messages.is_empty());
}

#[test]
fn a_bare_multipart_body_takes_its_boundary_from_the_http_content_type() {
    let label = simple_label(1);
    let full = message_with(&[("text/plain", b"body")], &label, "zz");
    let start = full.windows(4).position(|w| w == b"--zz").unwrap();
    let bare = &full[start..];
    let m = rt()
        .block_on(ShsMessage::parse(
            bare,
            Some("multipart/mixed; boundary=zz"),
            Limits::default(),
        ))
        .unwrap();
    assert_eq!(&m.parts[0].body[..], b"body");
    // Without the HTTP header the first line tells the boundary.
    let m = parse(bare).unwrap();
    assert_eq!(&m.parts[0].body[..], b"body");
}

#[test]
fn rfc_2231_and_2047_filenames_decode() {
    assert_eq!(
        mime::param("attachment; filename*=UTF-8''r%C3%A4kning.pdf", "filename").as_deref(),
        Some("räkning.pdf")
    );
    assert_eq!(
        mime::param(
            "attachment; filename=\"=?utf-8?B?csOka25pbmcucGRm?=\"",
            "filename"
        )
        .as_deref(),
        Some("räkning.pdf")
    );
    assert_eq!(mime::param("*/*;", "name"), None);
    assert_eq!(
        mime::param("text/plain; charset=us-ascii; name=a.txt;", "name").as_deref(),
        Some("a.txt")
    );
}

fn arb_encoding() -> impl Strategy<Value = TransferEncoding> {
    prop_oneof![
        Just(TransferEncoding::Binary),
        Just(TransferEncoding::Base64),
        Just(TransferEncoding::EightBit),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn labels_round_trip(
        subject in "[ -~åäöÅÄÖ]{0,40}",
        meta_value in "[ -~åäö]{0,20}",
        common_name in "[a-zA-Z åäö]{0,20}",
        test_status in any::<bool>(),
    ) {
        let mut l = simple_label(1);
        l.subject = Some(subject);
        l.meta.push(Meta { name: "m".into(), value: meta_value });
        l.from.as_mut().unwrap().common_name = common_name;
        if test_status { l.status = Status::Test; }
        for enc in [OutputEncoding::Iso88591, OutputEncoding::Utf8] {
            prop_assert_eq!(Label::parse(&l.to_xml_with(enc)).unwrap(), l.clone());
        }
    }

    #[test]
    fn messages_round_trip(
        bodies in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 0..3000), 1..4),
        encodings in proptest::collection::vec(arb_encoding(), 4),
        tricky in any::<bool>(),
    ) {
        let mut label = simple_label(0);
        label.tx_id = "t".into();
        let parts: Vec<DataPart> = bodies.iter().enumerate().map(|(i, b)| {
            let mut body = b.clone();
            if tricky { body.extend_from_slice(b"\r\n--not-the-boundary\r\n--"); }
            DataPart {
                headers: PartHeaders {
                    mime_type: "application/octet-stream".into(),
                    charset: None,
                    transfer_encoding: encodings[i],
                    filename: Some(format!("del-{i}.bin")),
                },
                datapart_type: "bin".into(),
                body: Bytes::from(body),
            }
        }).collect();
        let message = ShsMessage { label, parts };
        let bytes = rt().block_on(message.to_bytes());
        let back = parse(&bytes).unwrap();
        prop_assert_eq!(back.parts.len(), message.parts.len());
        for (a, b) in back.parts.iter().zip(&message.parts) {
            prop_assert_eq!(&a.body, &b.body);
            prop_assert_eq!(&a.headers.filename, &b.headers.filename);
        }
        // LF line ends instead of CRLF (binary bodies without CR are unchanged).
        if bodies.iter().all(|b| !b.contains(&b'\r')) && !tricky {
            let lf: Vec<u8> = String::from_utf8_lossy(&bytes).into_owned().into_bytes();
            if lf == bytes {
                let lf = bytes.iter().copied().filter(|b| *b != b'\r').collect::<Vec<u8>>();
                if encodings.iter().take(bodies.len()).all(|e| *e == TransferEncoding::Base64) {
                    let back = parse(&lf).unwrap();
                    for (a, b) in back.parts.iter().zip(&message.parts) {
                        prop_assert_eq!(&a.body, &b.body);
                    }
                }
            }
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..2000)) {
        let _ = parse(&bytes);
        let _ = Label::parse(&bytes);
        let _ = Label::from_message_prefix(&bytes);
    }
}

#[test]
fn quoted_printable_parts_decode() {
    let label = simple_label(1);
    let mut bytes =
        b"Content-Type: multipart/mixed; boundary=q\n\n--q\nContent-Type: text/xml\n\n".to_vec();
    bytes.extend_from_slice(&label.to_xml());
    bytes.extend_from_slice(b"\n--q\nContent-Type: text/plain\nContent-Transfer-Encoding: quoted-printable\n\nr=E4kning =\nnummer=3D7\n--q--\n");
    let m = parse(&bytes).unwrap();
    assert_eq!(&m.parts[0].body[..], b"r\xe4kning nummer=7");
}

#[test]
fn a_large_part_streams_in_chunks() {
    // 8 MB through the streaming reader: chunks are bounded, the sum is exact.
    let label = simple_label(1);
    let size = 8 * 1024 * 1024;
    let mut bytes = b"Content-Type: multipart/mixed; boundary=big\r\n\r\n--big\r\nContent-Type: text/xml\r\n\r\n".to_vec();
    bytes.extend_from_slice(&label.to_xml());
    bytes.extend_from_slice(b"\r\n--big\r\nContent-Type: application/octet-stream\r\n\r\n");
    bytes.extend(std::iter::repeat_n(b'x', size));
    bytes.extend_from_slice(b"\r\n--big--\r\n");
    rt().block_on(async {
        let (mut reader, _label) = MessageReader::open(bytes.as_slice(), None, Limits::default())
            .await
            .unwrap();
        reader.next_part().await.unwrap().unwrap();
        let (mut total, mut largest) = (0, 0);
        while let Some(chunk) = reader.read_chunk().await.unwrap() {
            total += chunk.len();
            largest = largest.max(chunk.len());
        }
        assert_eq!(total, size);
        assert!(largest <= 128 * 1024, "chunks are bounded: {largest}");
        assert!(reader.next_part().await.unwrap().is_none());
    });
}
