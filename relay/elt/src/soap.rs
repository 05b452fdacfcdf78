//! `SkickaTidredovisning` over SOAP 1.1 (SHS e-mottagning basic profile 1.0): the
//! request the vendor sends, the response with `tx-id`, and the faults
//! (`XmlValidationError`, `SignatureValidationError`, and the relay's
//! `PolicyError` for the service's rules).

use base64::Engine;
use chrono::NaiveDate;
use zeroize::Zeroizing;

use crate::xml::{Element, XmlLimits, envelope_limits};

pub const SOAP11: &str = "http://schemas.xmlsoap.org/soap/envelope/";
const SOAP12: &str = "http://www.w3.org/2003/05/soap-envelope";
/// Namespace of the request, response and fault elements.
pub const NS: &str = "urn:shs:emottagning:SkickaTidredovisning:1";
/// Namespace of the relay's policy fault detail.
pub const NS_POLICY: &str = "urn:shs-relay:elt:1";
pub const SOAP_ACTION: &str =
    "urn:shs:emottagning:SkickaTidredovisningResponder:1:SkickaTidredovisning";
const XMIME: &str = "http://www.w3.org/2005/05/xmlmime";

/// The bundled contract: (name, bytes). `?wsdl` serves the first.
pub const CONTRACT: &[(&str, &str)] = &[
    (
        "SkickaTidredovisningInteraction_1.0_shsbp10.wsdl",
        include_str!("../wsdl/SkickaTidredovisningInteraction_1.0_shsbp10.wsdl"),
    ),
    (
        "SkickaTidredovisningResponder_1.0.xsd",
        include_str!("../wsdl/SkickaTidredovisningResponder_1.0.xsd"),
    ),
    ("xmlmime.xsd", include_str!("../wsdl/xmlmime.xsd")),
    ("tidredovisning_1.xsd", crate::TIDREDOVISNING_XSD),
];

/// One signature block of the request.
#[derive(Debug, Clone)]
pub struct SignatureBlock {
    /// DER of the detached CMS SignedData.
    pub signature: Vec<u8>,
    pub ocsp_response: Option<Vec<u8>>,
    pub datum_for_signatur: NaiveDate,
}

/// A decoded request.
pub struct Request {
    /// The report's exact bytes (what the signatures cover).
    pub tidredovisning: Zeroizing<Vec<u8>>,
    pub content_type: Option<String>,
    pub assistent: SignatureBlock,
    pub anordnare: SignatureBlock,
}

/// Why a request could not be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestError {
    /// Not SOAP 1.1 (`soap:VersionMismatch`).
    VersionMismatch(String),
    /// A header with `mustUnderstand="1"`.
    MustUnderstand,
    /// The envelope does not hold a valid SkickaTidredovisning (XmlValidationError).
    Xml(String),
    /// More than one `tidredovisning` in the call.
    MoreThanOneReport,
}

fn xml(m: impl Into<String>) -> RequestError {
    RequestError::Xml(m.into())
}

/// An ISO-8859-1 envelope (declared so) as UTF-8 with its declaration
/// rewritten; anything else as it is. The report inside is base64 and keeps
/// its exact bytes either way.
fn as_utf8(bytes: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    let head = bytes.get(..bytes.len().min(100)).unwrap_or(bytes);
    let head = String::from_utf8_lossy(head).to_ascii_lowercase();
    let declared_latin1 = head.starts_with("<?xml")
        && head.split("?>").next().is_some_and(|decl| {
            decl.contains("iso-8859-1") || decl.contains("latin1") || decl.contains("latin-1")
        });
    if !declared_latin1 {
        return std::borrow::Cow::Borrowed(bytes);
    }
    let text: String = bytes.iter().map(|&b| char::from(b)).collect();
    let rest = text
        .split_once("?>")
        .map_or(text.as_str(), |(_, rest)| rest);
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
    out.push_str(rest);
    std::borrow::Cow::Owned(out.into_bytes())
}

/// Reads a SkickaTidredovisning envelope (UTF-8, or declared ISO-8859-1)
/// carrying a report of at most [`crate::report::DEFAULT_MAX_REPORT_BYTES`].
pub fn parse_request(bytes: &[u8]) -> Result<Request, RequestError> {
    parse_request_within(
        bytes,
        &envelope_limits(crate::report::DEFAULT_MAX_REPORT_BYTES),
    )
}

/// As [`parse_request`], within `limits` (use [`envelope_limits`] with
/// the configured largest report). The size is checked before anything else.
pub fn parse_request_within(bytes: &[u8], limits: &XmlLimits) -> Result<Request, RequestError> {
    if bytes.len() > limits.max_bytes {
        return Err(xml(format!(
            "the request is larger than {} bytes",
            limits.max_bytes
        )));
    }
    let bytes = as_utf8(bytes);
    // A declared ISO-8859-1 envelope grows when transcoded; the size was
    // checked on what was sent.
    let limits = XmlLimits {
        max_bytes: usize::MAX,
        ..*limits
    };
    let root = crate::xml::parse(&bytes, &limits).map_err(|e| xml(e.to_string()))?;
    if root.namespace() == SOAP12 {
        return Err(RequestError::VersionMismatch(
            "SOAP 1.2 is not supported; use SOAP 1.1".into(),
        ));
    }
    if root.namespace() != SOAP11 || root.local != "Envelope" {
        return Err(RequestError::VersionMismatch(
            "not a SOAP 1.1 envelope".into(),
        ));
    }
    let mut body = None;
    for child in &root.children {
        match (child.namespace(), child.local.as_str()) {
            (SOAP11, "Header") => {
                let must = child.children.iter().any(|h| {
                    crate::xml::attributes(h).any(|a| {
                        a.is(SOAP11, "mustUnderstand") && matches!(a.value.trim(), "1" | "true")
                    })
                });
                if must {
                    return Err(RequestError::MustUnderstand);
                }
            }
            (SOAP11, "Body") => body = Some(child),
            _ => {
                return Err(xml(
                    "the envelope holds an element other than Header and Body",
                ));
            }
        }
    }
    let body = body.ok_or_else(|| xml("the envelope has no Body"))?;
    let calls: Vec<&Element> = body.children.iter().collect();
    let call = match calls.as_slice() {
        [one] => *one,
        [] => return Err(xml("the Body is empty")),
        many if many.iter().all(|c| c.local == "SkickaTidredovisning") => {
            return Err(RequestError::MoreThanOneReport);
        }
        _ => return Err(xml("the Body must hold exactly one SkickaTidredovisning")),
    };
    if call.namespace() != NS || call.local != "SkickaTidredovisning" {
        return Err(xml(format!(
            "unknown operation: the Body must hold SkickaTidredovisning in namespace {NS}"
        )));
    }
    let reports = call
        .children
        .iter()
        .filter(|c| c.local == "tidredovisning")
        .count();
    if reports > 1 {
        return Err(RequestError::MoreThanOneReport);
    }
    let mut items = call.children.iter().peekable();
    // The WSDL's children are unqualified; children qualified with the
    // service's namespace are accepted too (some toolkits write them so).
    let unqualified = |el: &Element, name: &str| el.local == name && ours(el);
    let report_el = items
        .next()
        .filter(|e| unqualified(e, "tidredovisning"))
        .ok_or_else(|| xml("SkickaTidredovisning: tidredovisning must come first (unqualified)"))?;
    let content_type = crate::xml::attributes(report_el)
        .find(|a| a.is(XMIME, "contentType"))
        .map(|a| a.value.to_string());
    if let Some(a) = crate::xml::attributes(report_el).find(|a| !a.is(XMIME, "contentType")) {
        return Err(xml(format!(
            "tidredovisning: attribute {} is not allowed",
            a.local
        )));
    }
    let tidredovisning = Zeroizing::new(decode_b64("tidredovisning", report_el)?);
    let assistent = signature_block(
        items
            .next()
            .filter(|e| unqualified(e, "assistent-signatur"))
            .ok_or_else(|| xml("SkickaTidredovisning: assistent-signatur is missing"))?,
    )?;
    let anordnare = signature_block(
        items
            .next()
            .filter(|e| unqualified(e, "anordnare-signatur"))
            .ok_or_else(|| xml("SkickaTidredovisning: anordnare-signatur is missing"))?,
    )?;
    for rest in items {
        if ours(rest) {
            return Err(xml(format!(
                "SkickaTidredovisning: unexpected element {}",
                rest.local
            )));
        }
    }
    Ok(Request {
        tidredovisning,
        content_type,
        assistent,
        anordnare,
    })
}

/// Unqualified, or in the service's namespace.
fn ours(el: &Element) -> bool {
    matches!(el.namespace(), "" | NS)
}

fn decode_b64(name: &str, el: &Element) -> Result<Vec<u8>, RequestError> {
    if !el.children.is_empty() {
        return Err(xml(format!("{name} must hold base64 text only")));
    }
    let compact: String = el
        .text
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact.as_bytes())
        .map_err(|_| xml(format!("{name} is not valid base64")))
}

fn next_named<'a>(
    items: &mut std::iter::Peekable<std::slice::Iter<'a, Element>>,
    wanted: &str,
) -> Option<&'a Element> {
    if items.peek().is_some_and(|e| e.local == wanted && ours(e)) {
        items.next()
    } else {
        None
    }
}

fn signature_block(el: &Element) -> Result<SignatureBlock, RequestError> {
    let name = el.local.clone();
    let mut items = el.children.iter().peekable();
    let signature = next_named(&mut items, "signature")
        .ok_or_else(|| xml(format!("{name}: signature is missing")))?;
    let signature = decode_b64(&format!("{name}/signature"), signature)?;
    let ocsp_response = next_named(&mut items, "ocspResponse")
        .map(|e| decode_b64(&format!("{name}/ocspResponse"), e))
        .transpose()?;
    let datum = next_named(&mut items, "datumForSignatur")
        .ok_or_else(|| xml(format!("{name}: datumForSignatur is missing")))?;
    let datum_for_signatur =
        NaiveDate::parse_from_str(datum.text.trim(), "%Y-%m-%d").map_err(|_| {
            xml(format!(
                "{name}/datumForSignatur must be a date (YYYY-MM-DD)"
            ))
        })?;
    for rest in items {
        if ours(rest) {
            return Err(xml(format!("{name}: unexpected element {}", rest.local)));
        }
    }
    Ok(SignatureBlock {
        signature,
        ocsp_response,
        datum_for_signatur,
    })
}

/// A whole request envelope, as a vendor's system sends it.
pub fn request_xml(
    report: &[u8],
    assistent: &SignatureBlock,
    anordnare: &SignatureBlock,
) -> Vec<u8> {
    let b64 = &base64::engine::general_purpose::STANDARD;
    let block = |name: &str, s: &SignatureBlock| {
        let ocsp = s
            .ocsp_response
            .as_ref()
            .map(|o| format!("<ocspResponse>{}</ocspResponse>", b64.encode(o)))
            .unwrap_or_default();
        format!(
            "<{name}><signature>{}</signature>{ocsp}<datumForSignatur>{}</datumForSignatur></{name}>",
            b64.encode(&s.signature),
            s.datum_for_signatur.format("%Y-%m-%d")
        )
    };
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<soap:Envelope xmlns:soap=\"{SOAP11}\"><soap:Body><ns:SkickaTidredovisning xmlns:ns=\"{NS}\" xmlns:xmime=\"{XMIME}\"><tidredovisning xmime:contentType=\"text/xml\">{}</tidredovisning>{}{}</ns:SkickaTidredovisning></soap:Body></soap:Envelope>\n",
        b64.encode(report),
        block("assistent-signatur", assistent),
        block("anordnare-signatur", anordnare)
    )
    .into_bytes()
}

fn envelope(body: &str) -> Vec<u8> {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<soap:Envelope xmlns:soap=\"{SOAP11}\"><soap:Body>{body}</soap:Body></soap:Envelope>\n"
    )
    .into_bytes()
}

/// The success response: `tx-id`, then the whole receipt (repeat and late
/// markers included) in its own namespace, which the response type's `xs:any`
/// admits.
pub fn response_xml(receipt: &crate::Receipt) -> Vec<u8> {
    envelope(&format!(
        "<ns:SkickaTidredovisningResponse xmlns:ns=\"{NS}\"><tx-id>{}</tx-id>{}</ns:SkickaTidredovisningResponse>",
        relay_xml::escape_text(&receipt.tx_id),
        receipt.element()
    ))
}

/// The receipt inside a success response, when there is one.
pub fn receipt_of_response(bytes: &[u8]) -> Option<crate::Receipt> {
    let root = crate::xml::parse(bytes, &envelope_limits(64 * 1024)).ok()?;
    let body = root.children.iter().find(|c| c.local == "Body")?;
    let response = body.children.first()?;
    response
        .children
        .iter()
        .find_map(crate::Receipt::from_element)
}

/// What a fault says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultKind {
    /// `detail/XmlValidationError`.
    XmlValidation,
    /// `detail/SignatureValidationError`.
    SignatureValidation,
    /// `detail/elt:PolicyError` with the rule's code (and a retry hint).
    Policy {
        code: String,
        retry_after_s: Option<u64>,
    },
    /// A server-side failure (`soap:Server`), with a code.
    Server { code: String },
    /// A SOAP-level fault (`VersionMismatch`, `MustUnderstand`) without detail.
    Soap { faultcode: String },
}

/// A fault envelope. The faultstring starts with the code (`ELT-...:`).
pub fn fault_xml(kind: &FaultKind, message: &str) -> Vec<u8> {
    let m = relay_xml::escape_text(message);
    let (faultcode, faultstring, detail) = match kind {
        FaultKind::XmlValidation => (
            "soap:Client".to_owned(),
            format!("ELT-XML: {m}"),
            format!(
                "<ns:XmlValidationError xmlns:ns=\"{NS}\"><message>{m}</message></ns:XmlValidationError>"
            ),
        ),
        FaultKind::SignatureValidation => (
            "soap:Client".to_owned(),
            format!("ELT-SIGNATURE: {m}"),
            format!(
                "<ns:SignatureValidationError xmlns:ns=\"{NS}\"><message>{m}</message></ns:SignatureValidationError>"
            ),
        ),
        FaultKind::Policy {
            code,
            retry_after_s,
        } => (
            "soap:Client".to_owned(),
            format!("{code}: {m}"),
            format!(
                "<elt:PolicyError xmlns:elt=\"{NS_POLICY}\"><elt:code>{code}</elt:code><elt:message>{m}</elt:message>{}</elt:PolicyError>",
                retry_after_s
                    .map(|s| format!("<elt:retryAfterSeconds>{s}</elt:retryAfterSeconds>"))
                    .unwrap_or_default()
            ),
        ),
        FaultKind::Server { code } => (
            "soap:Server".to_owned(),
            format!("{code}: {m}"),
            format!(
                "<elt:PolicyError xmlns:elt=\"{NS_POLICY}\"><elt:code>{code}</elt:code><elt:message>{m}</elt:message></elt:PolicyError>"
            ),
        ),
        FaultKind::Soap { faultcode } => (faultcode.clone(), m.to_string(), String::new()),
    };
    let detail = if detail.is_empty() {
        String::new()
    } else {
        format!("<detail>{detail}</detail>")
    };
    envelope(&format!(
        "<soap:Fault><faultcode>{faultcode}</faultcode><faultstring>{faultstring}</faultstring>{detail}</soap:Fault>"
    ))
}

/// A response as the vendor reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    TxId(String),
    Fault {
        faultcode: String,
        faultstring: String,
        /// `XmlValidationError`, `SignatureValidationError`, `PolicyError` or empty.
        detail: String,
        message: String,
    },
}

/// Reads a response envelope.
pub fn parse_response(bytes: &[u8]) -> Option<Response> {
    let root = crate::xml::parse(bytes, &envelope_limits(0)).ok()?;
    let body = root.children.iter().find(|c| c.local == "Body")?;
    let first = body.children.first()?;
    let text_of = |el: &Element, name: &str| {
        el.children
            .iter()
            .find(|c| c.local == name)
            .map(|c| c.text.to_string())
    };
    if first.local == "Fault" {
        let detail_el = first
            .children
            .iter()
            .find(|c| c.local == "detail")
            .and_then(|d| d.children.first());
        return Some(Response::Fault {
            faultcode: text_of(first, "faultcode").unwrap_or_default(),
            faultstring: text_of(first, "faultstring").unwrap_or_default(),
            detail: detail_el.map(|d| d.local.clone()).unwrap_or_default(),
            message: detail_el
                .and_then(|d| text_of(d, "message"))
                .unwrap_or_default(),
        });
    }
    text_of(first, "tx-id").map(Response::TxId)
}
