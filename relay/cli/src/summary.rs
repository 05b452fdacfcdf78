//! A readable per-agency summary of one `hamtaBastjanstInformationResponse`.

use std::collections::BTreeMap;

use base64::Engine;
use quick_xml::Reader;
use quick_xml::events::Event;
use relay_ssbtek::Slot;

#[derive(Default)]
struct SlotView {
    error: bool,
    texts: BTreeMap<String, Vec<String>>,
    counts: BTreeMap<String, usize>,
}

impl SlotView {
    fn text(&self, name: &str) -> String {
        self.texts
            .get(name)
            .map(|v| v.join(" "))
            .unwrap_or_default()
    }
    fn count(&self, name: &str) -> usize {
        self.counts.get(name).copied().unwrap_or(0)
    }
}

fn read(xml: &[u8]) -> BTreeMap<String, SlotView> {
    let text = String::from_utf8_lossy(xml);
    let mut reader = Reader::from_str(&text);
    let mut stack: Vec<String> = Vec::new();
    let mut slots: BTreeMap<String, SlotView> = BTreeMap::new();
    let mut current: Option<String> = None;
    // Text of the innermost open element, collected across entity references.
    let mut buf = String::new();
    loop {
        match reader.read_event() {
            Ok(ev @ (Event::Start(_) | Event::Empty(_))) => {
                let (e, empty) = match &ev {
                    Event::Start(e) => (e.clone(), false),
                    Event::Empty(e) => (e.clone(), true),
                    _ => continue,
                };
                let name = e.local_name().as_ref().to_owned();
                let parent = stack.last().cloned().unwrap_or_default();
                if parent == "svarsdata" && agency_ids().contains(&name.as_str()) {
                    current = Some(name.clone());
                    slots.entry(name.clone()).or_default();
                }
                if let Some(s) = current.as_ref().and_then(|c| slots.get_mut(c)) {
                    *s.counts.entry(name.clone()).or_default() += 1;
                    if name == "error"
                        && stack.len() >= 2
                        && agency_ids().contains(&parent.as_str())
                    {
                        s.error = true;
                    }
                }
                buf.clear();
                // Empty elements close at once.
                if !empty {
                    stack.push(name);
                }
            }
            Ok(Event::Text(t)) => buf.push_str(&t.xml10_content()),
            Ok(Event::CData(t)) => buf.push_str(&t.xml10_content()),
            Ok(Event::GeneralRef(r)) => {
                if let Some(v) = quick_xml::escape::resolve_predefined_entity(&r) {
                    buf.push_str(v);
                }
            }
            Ok(Event::End(_)) => {
                let name = stack.pop().unwrap_or_default();
                let value = std::mem::take(&mut buf).trim().to_owned();
                if let Some(c) = &current
                    && !value.is_empty()
                {
                    slots
                        .entry(c.clone())
                        .or_default()
                        .texts
                        .entry(name.clone())
                        .or_default()
                        .push(value);
                }
                if current.as_deref() == Some(name.as_str())
                    && stack.last().map(String::as_str) == Some("svarsdata")
                {
                    current = None;
                }
            }
            Ok(Event::Eof) | Err(_) => break,
            _ => {}
        }
    }
    slots
}

fn decode(b64: &str) -> String {
    base64::engine::general_purpose::STANDARD
        .decode(b64.split_whitespace().collect::<String>())
        .map(|b| String::from_utf8_lossy(&b).into_owned())
        .unwrap_or_default()
}

fn detail(slot: Slot, v: &SlotView) -> String {
    if v.error {
        let kalla = v.text("kalla");
        let source = if kalla == "BT" {
            "from the agency"
        } else {
            "from the relay"
        };
        return format!(
            "{} {} ({source}): {}",
            kalla,
            v.text("felkod"),
            v.text("felmeddelande")
        );
    }
    match slot {
        Slot::Af => format!(
            "job seeker: {}; a-kassa: {}",
            if v.text("Arbetssokande") == "true" {
                "yes"
            } else {
                "no"
            },
            match v.text("Akassetillhorighet") {
                a if a.is_empty() => "-".to_owned(),
                a => a,
            },
        ),
        Slot::Csn => {
            let doc = decode(&v.text("svar"));
            format!(
                "{} case(s), {} payment(s)",
                doc.matches("<Arende>").count(),
                doc.matches("<Utbetalning>").count()
            )
        }
        Slot::Fk => {
            let json: serde_json::Value =
                serde_json::from_str(&decode(&v.text("lefiJsonSvar"))).unwrap_or_default();
            let fk = json["formansinformation"]["utbetalningsuppgift"]
                .as_array()
                .map_or(0, Vec::len);
            let pm = json["utbetalningar"].as_array().map_or(0, Vec::len);
            format!("{fk} payment(s) from Försäkringskassan, {pm} from Pensionsmyndigheten")
        }
        Slot::Skv => format!(
            "{} year(s) of capital income",
            v.text("svar").matches("<Kapitaluppgift>").count()
        ),
        Slot::So => format!(
            "{} a-kassa answer(s), {} payment(s)",
            v.count("Arbetsloshetsersattning"),
            v.count("Utbetalningar")
        ),
        Slot::Tns => format!("{} vehicle(s)", v.count("fordon")),
        Slot::Miv => format!("{} permit decision(s)", v.count("svar")),
    }
}

/// The summary table for one person's answer.
pub fn render(person: &str, xml: &[u8]) -> String {
    let slots = read(xml);
    let mut out = format!(
        "Person {person}\n  {:<6} {:<7} {}\n",
        "AGENCY", "RESULT", "DETAILS"
    );
    for slot in Slot::ALL {
        if let Some(v) = slots.get(slot.as_str()) {
            out.push_str(&format!(
                "  {:<6} {:<7} {}\n",
                slot,
                if v.error { "error" } else { "data" },
                detail(slot, v)
            ));
        }
    }
    out
}

/// The agencies' ids, from the one list (`relay_ssbtek::Slot::ALL`).
fn agency_ids() -> [&'static str; Slot::ALL.len()] {
    Slot::ALL.map(Slot::as_str)
}
