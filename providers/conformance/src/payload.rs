//! What a slot's payload must be, checked for real: the relay's own payload
//! check, the SSBTEK v10 XSDs (bundled here, validated with `xmllint`), and the
//! slot's encoding (base64 XML for CSN, base64 LEFI JSON for FK, a string for
//! SKV, inline XML for the rest). Also whether a payload holds any records
//! about the person (for a person the base service does not know, it must not).

use std::path::{Path, PathBuf};
use std::process::Command;

use base64::Engine;
use quick_xml::Reader;
use quick_xml::events::Event;
use relay_ssbtek::Slot;

const NS_SSBT: &str = "http://schema.forsakringskassan.se/integration/ssbt/10";

/// The schema set unpacked into a private directory for `xmllint`.
pub struct Schemas {
    dir: tempfile::TempDir,
    main: PathBuf,
}

impl Schemas {
    pub fn unpack() -> std::io::Result<Self> {
        let dir = tempfile::tempdir()?;
        // The contract's files (relay_ssbtek::contract: each slot's schemas
        // by an exhaustive match on Slot), as the relay serves them.
        for f in relay_ssbtek::contract::files() {
            let file = dir.path().join(f.path);
            if let Some(parent) = file.parent() {
                std::fs::create_dir_all(parent)?;
            }
            std::fs::write(file, f.bytes)?;
        }
        let main = dir.path().join(relay_ssbtek::contract::COMPOSITE_XSD.path);
        Ok(Self { dir, main })
    }

    /// Checks that `payload` is valid for `slot`: the relay would insert it,
    /// it is valid against the v10 XSD as the slot's `<ssbt:data>` content,
    /// and it has the slot's encoding. The error says what is wrong.
    pub fn check(&self, slot: Slot, payload: &[u8]) -> Result<(), String> {
        relay_ssbtek::check_payload(slot, payload)
            .map_err(|e| format!("the relay would refuse it: {e}"))?;
        let text = std::str::from_utf8(payload).map_err(|_| "not UTF-8".to_owned())?;
        let doc = format!(
            "<ssbt:hamtaBastjanstInformationResponse xmlns:ssbt=\"{NS_SSBT}\"><ssbt:svarsdata><ssbt:{s}><ssbt:data>{text}</ssbt:data></ssbt:{s}></ssbt:svarsdata></ssbt:hamtaBastjanstInformationResponse>",
            s = slot.as_str()
        );
        self.xmllint(doc.as_bytes(), Some(&self.main))
            .map_err(|e| format!("not valid against the SSBTEK v10 XSD: {e}"))?;
        match slot {
            Slot::Csn => {
                let xml = base64_leaf(text, "svar")?;
                self.xmllint(&xml, None).map_err(|e| {
                    format!("ssbt:svar does not hold base64 of an XML document: {e}")
                })?;
                let root = element_names(&String::from_utf8_lossy(&xml))
                    .into_iter()
                    .next()
                    .unwrap_or_default();
                if root != "CSNSvar" {
                    return Err(format!(
                        "ssbt:svar holds a <{root}> document, not CSN's <CSNSvar>"
                    ));
                }
            }
            Slot::Fk => {
                let json = base64_leaf(text, "lefiJsonSvar")?;
                match serde_json::from_slice::<serde_json::Value>(&json) {
                    Ok(serde_json::Value::Object(_)) => {}
                    _ => {
                        return Err(
                            "ssbt:lefiJsonSvar does not hold base64 of a LEFI JSON object".into(),
                        );
                    }
                }
            }
            Slot::Skv => {
                if providers_soap::text_of(text, "svar").is_none_or(|s| s.trim().is_empty()) {
                    return Err("svar does not hold Skatteverket's answer as a string".into());
                }
            }
            Slot::Af | Slot::So | Slot::Tns | Slot::Miv => {}
        }
        Ok(())
    }

    /// Runs `xmllint --noout [--schema XSD] FILE`; the error is xmllint's first
    /// lines (without the temporary file's path).
    fn xmllint(&self, doc: &[u8], schema: Option<&Path>) -> Result<(), String> {
        let file = tempfile::Builder::new()
            .suffix(".xml")
            .tempfile_in(self.dir.path())
            .map_err(|e| e.to_string())?;
        std::fs::write(file.path(), doc).map_err(|e| e.to_string())?;
        let mut cmd = Command::new("xmllint");
        cmd.arg("--noout").arg("--nonet");
        if let Some(xsd) = schema {
            cmd.arg("--schema").arg(xsd);
        }
        let out = cmd
            .arg(file.path())
            .output()
            .map_err(|e| format!("cannot run xmllint (install libxml2-utils): {e}"))?;
        if out.status.success() {
            return Ok(());
        }
        let path = file.path().display().to_string();
        let text = String::from_utf8_lossy(&out.stderr).replace(&path, "payload");
        Err(text
            .lines()
            .filter(|l| !l.trim().is_empty() && !l.ends_with("fails to validate"))
            .take(3)
            .map(without_values)
            .collect::<Vec<_>>()
            .join(" | "))
    }
}

/// An xmllint message without the values it quotes from the document (they
/// may be personal data); element names stay.
fn without_values(line: &str) -> String {
    let mut out = String::with_capacity(line.len());
    let mut rest = line;
    while let Some(i) = rest.find("value '") {
        let (head, tail) = rest.split_at(i + "value '".len());
        out.push_str(head);
        match tail.find('\'') {
            Some(end) => {
                out.push_str("…'");
                rest = &tail[end + 1..];
            }
            None => {
                rest = "";
            }
        }
    }
    out.push_str(rest);
    // "'X' is not a valid value of the atomic type ..."
    const TAIL: &str = "' is not a valid value";
    if let Some(end) = out.find(TAIL)
        && let Some(start) = out[..end].rfind(": '")
    {
        out.replace_range(start + 3..end, "…");
    }
    out
}

/// The base64 content of the single element `name`, decoded.
fn base64_leaf(payload: &str, name: &str) -> Result<Vec<u8>, String> {
    let text = providers_soap::text_of(payload, name)
        .ok_or_else(|| format!("no {name} element with text"))?;
    let compact: String = text.split_whitespace().collect();
    base64::engine::general_purpose::STANDARD
        .decode(compact)
        .map_err(|_| format!("{name} is not base64"))
}

/// Local names of every element, in document order.
fn element_names(xml: &str) -> Vec<String> {
    let mut reader = Reader::from_str(xml);
    let mut names = Vec::new();
    loop {
        match reader.read_event() {
            Ok(Event::Start(e)) | Ok(Event::Empty(e)) => {
                names.push(e.local_name().as_ref().to_owned());
            }
            Ok(Event::Eof) | Err(_) => return names,
            _ => {}
        }
    }
}

/// Which records about the person a (valid) payload holds, by the elements or
/// fields the slot's answer uses for them; empty when it holds none. A person
/// the base service does not know must get an answer with none.
pub fn records(slot: Slot, payload: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(payload);
    let (doc, markers): (String, &[&str]) = match slot {
        Slot::Af => (
            text.into_owned(),
            &["ArbetssokandeRegistrerad", "Akassetillhorighet"],
        ),
        Slot::Csn => (
            base64_leaf(&text, "svar")
                .map(|x| String::from_utf8_lossy(&x).into_owned())
                .unwrap_or_default(),
            &["Arende"],
        ),
        Slot::Fk => {
            let json: serde_json::Value = base64_leaf(&text, "lefiJsonSvar")
                .ok()
                .and_then(|j| serde_json::from_slice(&j).ok())
                .unwrap_or_default();
            let mut found = Vec::new();
            for (what, list) in [
                (
                    "formansinformation.utbetalningsuppgift",
                    &json["formansinformation"]["utbetalningsuppgift"],
                ),
                ("utbetalningar", &json["utbetalningar"]),
            ] {
                if list.as_array().is_some_and(|a| !a.is_empty()) {
                    found.push(what.to_owned());
                }
            }
            return found;
        }
        Slot::Skv => (
            providers_soap::text_of(&text, "svar").unwrap_or_default(),
            &["Kapitaluppgift"],
        ),
        Slot::So => (text.into_owned(), &["Arbetsloshetsersattning"]),
        Slot::Tns => (text.into_owned(), &["fordonsinnehav"]),
        Slot::Miv => (text.into_owned(), &["svarCollection"]),
    };
    let mut found: Vec<String> = element_names(&doc)
        .into_iter()
        .filter(|n| markers.contains(&n.as_str()))
        .collect();
    found.dedup();
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    const TNS: &str = "http://schema.transportstyrelsen.se/ssbtek/hamtauppgifterresponder/1";

    #[test]
    fn a_valid_payload_passes_and_a_wrong_shape_fails_with_the_reason() {
        let schemas = Schemas::unpack().unwrap();
        let ok = format!("<tns:resultat xmlns:tns=\"{TNS}\">OK</tns:resultat>");
        schemas.check(Slot::Tns, ok.as_bytes()).unwrap();
        // The whole response element instead of its content.
        let wrapped = format!(
            "<tns:HamtaUppgifterResponse xmlns:tns=\"{TNS}\"><tns:resultat>OK</tns:resultat></tns:HamtaUppgifterResponse>"
        );
        let e = schemas.check(Slot::Tns, wrapped.as_bytes()).unwrap_err();
        assert!(e.contains("relay would refuse"), "{e}");
        // Right shape for the relay's quick check, wrong for the XSD.
        let bad = format!("<tns:resultat xmlns:tns=\"{TNS}\">KANSKE</tns:resultat>");
        let e = schemas.check(Slot::Tns, bad.as_bytes()).unwrap_err();
        assert!(e.contains("XSD"), "{e}");
    }

    #[test]
    fn encodings_are_checked_per_slot() {
        let schemas = Schemas::unpack().unwrap();
        let b64 = |s: &str| base64::engine::general_purpose::STANDARD.encode(s);
        let fk = |inner: &str| {
            format!("<ssbt:lefiJsonSvar xmlns:ssbt=\"{NS_SSBT}\">{inner}</ssbt:lefiJsonSvar>")
        };
        schemas
            .check(Slot::Fk, fk(&b64("{\"utbetalningar\":[]}")).as_bytes())
            .unwrap();
        let e = schemas
            .check(Slot::Fk, fk(&b64("<not-json/>")).as_bytes())
            .unwrap_err();
        assert!(e.contains("LEFI JSON"), "{e}");
        let csn = |inner: &str| format!("<ssbt:svar xmlns:ssbt=\"{NS_SSBT}\">{inner}</ssbt:svar>");
        let e = schemas
            .check(Slot::Csn, csn(&b64("{\"json\":1}")).as_bytes())
            .unwrap_err();
        assert!(e.contains("XML document"), "{e}");
        schemas
            .check(
                Slot::Csn,
                csn(&b64("<CSNSvar xmlns=\"urn:x\"/>")).as_bytes(),
            )
            .unwrap();
    }

    #[test]
    fn quoted_values_are_left_out_of_xmllint_messages() {
        let line = "payload:1: element resultat: Schemas validity error : Element '{urn:t}resultat': [facet 'enumeration'] The value 'Tolvan' is not an element of the set {'OK', 'FEL'}.";
        let clean = without_values(line);
        assert!(!clean.contains("Tolvan"), "{clean}");
        assert!(clean.contains("'{urn:t}resultat'"), "{clean}");
        let atomic = "payload:1: element svar: Schemas validity error : Element 'svar': 'Tolvan 19121212' is not a valid value of the atomic type 'xs:base64Binary'.";
        let clean = without_values(atomic);
        assert!(!clean.contains("Tolvan"), "{clean}");
        assert!(clean.contains("is not a valid value"), "{clean}");
    }

    #[test]
    fn records_are_found_by_the_slot_markers() {
        let none = format!("<tns:resultat xmlns:tns=\"{TNS}\">OK</tns:resultat>");
        assert!(records(Slot::Tns, none.as_bytes()).is_empty());
        let some = format!(
            "<tns:resultat xmlns:tns=\"{TNS}\">OK</tns:resultat><tns:fordonsinnehav xmlns:tns=\"{TNS}\"/>"
        );
        assert_eq!(records(Slot::Tns, some.as_bytes()), ["fordonsinnehav"]);
    }
}
