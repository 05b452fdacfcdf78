//! Hostile and ordinary documents against the one bounded reader: every
//! bound is refused with the error that names it, in every dialect, and the
//! dialects differ only where they say they do.

use relay_xml::{Dialect, Doctype, Encoding, Limits, Select, XmlError, read};

const LIMITS: Limits = Limits {
    max_bytes: 4096,
    max_depth: 4,
    max_elements: 8,
    max_attributes: 2,
    max_name_bytes: 8,
    max_text_bytes: 16,
};

const LAX: Dialect = Dialect {
    encoding: Encoding::Lenient,
    doctype: Doctype::ExternalOnly,
    namespaces: false,
    strict: false,
};

const STRICT: Dialect = Dialect {
    encoding: Encoding::Utf8OrLatin1,
    doctype: Doctype::Refused,
    namespaces: true,
    strict: true,
};

fn refused(doc: &str, dialect: &Dialect) -> XmlError {
    match read(doc.as_bytes(), &LIMITS, dialect, Select::Root) {
        Err(e) => e,
        Ok(_) => panic!("accepted: {doc}"),
    }
}

#[test]
fn every_bound_is_refused_with_the_error_that_names_it_in_both_dialects() {
    let cases = [
        (
            "<a><a><a><a><a/></a></a></a></a>",
            XmlError::TooDeep { limit: 4 },
        ),
        (
            "<a><b/><b/><b/><b/><b/><b/><b/><b/></a>",
            XmlError::TooManyElements { limit: 8 },
        ),
        (
            "<a x='1' y='2' z='3'/>",
            XmlError::TooManyAttributes { limit: 2 },
        ),
        ("<abcdefghi/>", XmlError::NameTooLong { limit: 8 }),
        ("<a abcdefghi='1'/>", XmlError::NameTooLong { limit: 8 }),
        (
            "<a>0123456789abcdefg</a>",
            XmlError::TextTooLong { limit: 16 },
        ),
        // Text split by a child element and references still adds up.
        (
            "<a>01234567<b/>89&amp;&#65;cdefg</a>",
            XmlError::TextTooLong { limit: 16 },
        ),
        (
            "<a x='0123456789abcdefg'/>",
            XmlError::ValueTooLong { limit: 16 },
        ),
    ];
    for dialect in [LAX, STRICT] {
        for (doc, expected) in &cases {
            assert_eq!(&refused(doc, &dialect), expected, "{doc}");
            assert!(expected.is_limit());
        }
    }
    let big = format!("<a>{}</a>", " ".repeat(LIMITS.max_bytes));
    assert_eq!(refused(&big, &STRICT), XmlError::TooLarge { limit: 4096 });
}

#[test]
fn no_dtd_is_resolved_and_no_entity_other_than_the_predefined_is_expanded() {
    let xxe = "<!DOCTYPE a [<!ENTITY x SYSTEM \"file:///etc/passwd\">]><a>&x;</a>";
    assert_eq!(refused(xxe, &LAX), XmlError::InternalSubset);
    assert_eq!(refused(xxe, &STRICT), XmlError::Doctype);
    assert_eq!(refused("<a>&x;</a>", &LAX), XmlError::UndeclaredEntity);
    let external = "<!DOCTYPE a SYSTEM \"a.dtd\"><a>&lt;&#x41;</a>";
    let root = read(external.as_bytes(), &LIMITS, &LAX, Select::Root).unwrap();
    assert_eq!(root.text.as_str(), "<A");
    assert_eq!(refused(external, &STRICT), XmlError::Doctype);
}

#[test]
fn malformed_documents_are_refused_not_panicked_on() {
    for doc in [
        "",
        "<a>",
        "</a>",
        "<a></b>",
        "<a/><b/>",
        "text<a/>",
        "<a/>text",
        "<a x='<'/>",
        "<a x='1' x='2'/>",
        "<a>]]></a>",
        "<\u{0}/>",
    ] {
        for dialect in [LAX, STRICT] {
            let e = refused(doc, &dialect);
            assert!(!e.is_limit(), "{doc}: {e}");
        }
    }
}

#[test]
fn names_resolve_against_namespaces_and_an_attribute_repeated_under_two_prefixes_is_refused() {
    let roomy = Limits {
        max_attributes: 4,
        ..LIMITS
    };
    let doc = "<p:a xmlns:p='urn:p' xmlns:q='urn:p' p:x='1'><b q:y='2'/></p:a>";
    let root = read(doc.as_bytes(), &roomy, &STRICT, Select::Root).unwrap();
    assert!(root.is("urn:p", "a"));
    assert_eq!(root.name, "p:a");
    assert_eq!(root.attrs.len(), 1, "namespace declarations are left out");
    assert!(root.attrs[0].is("urn:p", "x"));
    assert!(root.children[0].attrs[0].is("urn:p", "y"));
    let repeated = "<a xmlns:p='urn:p' xmlns:q='urn:p' p:x='1' q:x='2'/>";
    assert_eq!(
        read(repeated.as_bytes(), &roomy, &STRICT, Select::Root).err(),
        Some(XmlError::RepeatedAttribute)
    );
    assert!(matches!(
        refused("<p:a/>", &STRICT),
        XmlError::NotWellFormed(_)
    ));
    // Without namespaces the names are kept as written.
    let root = read(b"<p:a xmlns:p='urn:p'/>", &roomy, &LAX, Select::Root).unwrap();
    assert_eq!(
        (root.ns, root.local.as_str(), root.attrs.len()),
        (None, "p:a", 1)
    );
}

#[test]
fn a_selected_element_is_found_where_it_must_be() {
    let envelope = b"<e xmlns='urn:e'><h>x</h><b><q xmlns='urn:q'><i>1</i></q></b></e>";
    let q = read(
        envelope,
        &LIMITS,
        &STRICT,
        Select::First {
            ns: "urn:q",
            local: "q",
        },
    )
    .unwrap();
    assert_eq!((q.local.as_str(), q.children.len()), ("q", 1));
    let missing = read(
        envelope,
        &LIMITS,
        &STRICT,
        Select::First {
            ns: "urn:x",
            local: "q",
        },
    );
    assert_eq!(missing.err(), Some(XmlError::NotFound));
    let wrong = |ns, local| read(envelope, &LIMITS, &STRICT, Select::RootNamed { ns, local }).err();
    assert_eq!(wrong("urn:x", "e"), Some(XmlError::WrongNamespace));
    assert_eq!(wrong("urn:e", "x"), Some(XmlError::WrongRoot));
    assert_eq!(wrong("urn:e", "e"), None);
}

#[test]
fn encodings_are_read_as_each_dialect_says() {
    let latin1 = b"<?xml version='1.0' encoding='ISO-8859-1'?><a>\xE5</a>";
    for dialect in [LAX, STRICT] {
        let root = read(latin1, &LIMITS, &dialect, Select::Root).unwrap();
        assert_eq!(root.text.as_str(), "å");
    }
    let utf8_only = Dialect {
        encoding: Encoding::Utf8,
        ..STRICT
    };
    assert_eq!(
        read(latin1, &LIMITS, &utf8_only, Select::Root).err(),
        Some(XmlError::UnsupportedEncoding)
    );
    // Undeclared bytes that are not UTF-8: ISO-8859-1 when lenient only.
    assert!(read(b"<a>\xE5</a>", &LIMITS, &LAX, Select::Root).is_ok());
    assert_eq!(
        read(b"<a>\xE5</a>", &LIMITS, &STRICT, Select::Root).err(),
        Some(XmlError::InvalidEncoding)
    );
    assert_eq!(
        read(
            b"<?xml version='1.0' encoding=UTF-8?><a/>",
            &LIMITS,
            &LAX,
            Select::Root
        )
        .err(),
        Some(XmlError::MalformedDeclaration)
    );
    assert_eq!(
        read(
            "\u{FEFF}<a>\u{1}</a>".as_bytes(),
            &LIMITS,
            &STRICT,
            Select::Root
        )
        .err(),
        Some(XmlError::InvalidCharacter)
    );
    assert!(read("<a>\u{1}</a>".as_bytes(), &LIMITS, &LAX, Select::Root).is_ok());
}

#[test]
fn a_huge_hostile_document_is_refused_in_one_linear_pass() {
    // Half a million attributes with every bound but the count wide open: the
    // repeat at the very end is found through the set, not by comparing pairs.
    let attrs: String = (0..500_000).map(|i| format!(" a{i}='v'")).collect();
    let doc = format!("<a{attrs} a0='x'/>");
    let wide = Limits {
        max_bytes: usize::MAX,
        max_attributes: usize::MAX,
        ..LIMITS
    };
    let started = std::time::Instant::now();
    assert_eq!(
        read(doc.as_bytes(), &wide, &STRICT, Select::Root).err(),
        Some(XmlError::RepeatedAttribute)
    );
    // Generous: quadratic work would take hours.
    assert!(started.elapsed() < std::time::Duration::from_secs(60));
}
