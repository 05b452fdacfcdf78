//! Serialising a [`Question`]: the standalone document, the `fraga` echo in an
//! answer, and each slot's `parameters_xml` all come from these functions.

use base64::Engine as _;
use zeroize::Zeroizing;

use super::{Generella, Period, Question, SlotQuestion};
use crate::NS_SSBT;
use crate::xml::write::XmlWriter;

/// A capacity that holds the serialised question without the buffer growing
/// (text may grow six-fold when escaped; base64 by a third).
pub(crate) fn size_hint(q: &Question) -> usize {
    let g = &q.generella;
    let texts = [
        g.frage_tidpunkt.as_deref().unwrap_or(""),
        g.korrelationsid.as_deref().unwrap_or(""),
        &g.ingivare.namn,
        &g.ingivare.handlaggare,
        &g.arendeidentitet,
        &g.syfte,
        &g.lagtext,
    ];
    let mut n: usize = texts.iter().map(|t| t.len()).sum();
    n += g
        .personuppgiftsbitrade
        .iter()
        .map(|p| p.namn.len() + 160)
        .sum::<usize>();
    if let Some(fk) = &crate::Slot::Fk.pick(&q.slots).fk_fraga {
        n += fk.aktorsid.len()
            + fk.version.as_deref().map_or(0, str::len)
            + fk.lefi_json.len() * 4 / 3 / 6;
    }
    n * 6 + 2048
}

pub(crate) fn question_document(q: &Question, declaration: bool) -> Zeroizing<Vec<u8>> {
    let mut w = XmlWriter::new("ssbt:", size_hint(q));
    if declaration {
        w.declaration();
    }
    w.open_with("hamtaBastjanstInformation", &[("xmlns:ssbt", NS_SSBT)]);
    question_content(&mut w, q);
    w.close("hamtaBastjanstInformation");
    w.finish()
}

/// `generellaFrageparametrar` and `specifikaFrageparametrar`: the content of
/// both `SammansattBastjanstFraga` and `SammansattBastjanstFragaOriginal`.
pub(crate) fn question_content(w: &mut XmlWriter, q: &Question) {
    generella(w, &q.generella);
    w.open("specifikaFrageparametrar");
    for slot in &q.slots {
        slot_element(w, slot, &[]);
    }
    w.close("specifikaFrageparametrar");
}

fn generella(w: &mut XmlWriter, g: &Generella) {
    w.open("generellaFrageparametrar");
    if let Some(t) = &g.frage_tidpunkt {
        w.leaf("frageTidpunkt", t);
    }
    if let Some(k) = &g.korrelationsid {
        w.leaf("korrelationsid", k);
    }
    w.leaf(
        "fraganSkallInkluderasISvaret",
        bool_str(g.fragan_skall_inkluderas),
    );
    w.open("ingivare");
    w.leaf("organisationsnummer", &g.ingivare.orgnr.twelve_digits());
    w.leaf("namn", &g.ingivare.namn);
    w.leaf("handlaggare", &g.ingivare.handlaggare);
    w.close("ingivare");
    w.leaf("personidentitet", g.person.as_str());
    w.leaf("arendeidentitet", &g.arendeidentitet);
    period(w, &g.tidsperiod);
    for p in &g.personuppgiftsbitrade {
        w.open("personuppgiftsbitrade");
        if let Some(n) = p.ordningsnummer {
            w.leaf("ordningsnummer", &n.to_string());
        }
        w.leaf("organisationsnummer", &p.orgnr.twelve_digits());
        w.leaf("namn", &p.namn);
        w.close("personuppgiftsbitrade");
    }
    w.leaf("syfte", &g.syfte);
    w.leaf("lagtext", &g.lagtext);
    w.close("generellaFrageparametrar");
}

fn period(w: &mut XmlWriter, p: &Period) {
    w.open("tidsperiod");
    w.leaf("fromDatum", &p.from.format("%Y-%m-%d").to_string());
    w.leaf("tomDatum", &p.tom.format("%Y-%m-%d").to_string());
    w.close("tidsperiod");
}

fn bool_str(b: bool) -> &'static str {
    if b { "true" } else { "false" }
}

fn slot_element(w: &mut XmlWriter, s: &SlotQuestion, extra: &[(&str, &str)]) {
    let mut attrs = extra.to_vec();
    attrs.push(("inkludera", bool_str(s.inkludera)));
    let name = s.slot.as_str();
    w.open_with(name, &attrs);
    if let Some(p) = &s.tidsperiod {
        period(w, p);
    }
    if let Some(fk) = &s.fk_fraga {
        w.open("fraga");
        if let Some(v) = &fk.version {
            w.leaf("version", v);
        }
        w.leaf("aktorsid", &fk.aktorsid);
        let b64 = Zeroizing::new(
            base64::engine::general_purpose::STANDARD.encode(fk.lefi_json.as_bytes()),
        );
        w.leaf("lefiJsonFraga", &b64);
        w.close("fraga");
    }
    w.close(name);
}

/// The slot's element alone, in the ssbt/10 default namespace.
pub(crate) fn slot_standalone(s: &SlotQuestion) -> Zeroizing<Vec<u8>> {
    let lefi = s.fk_fraga.as_ref().map_or(0, |fk| fk.lefi_json.len() * 2);
    let mut w = XmlWriter::new("", 512 + lefi);
    slot_element(&mut w, s, &[("xmlns", NS_SSBT)]);
    w.finish()
}
