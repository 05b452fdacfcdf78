//! `history.atom`: an Atom feed (RFC 4287) of incidents and maintenance
//! windows over `status.history_days` (default 90). Entry ids are stable IRIs
//! (`urn:uuid:` of an incident or an operator's window,
//! `urn:shs-relay:maintenance:AGENCY:ID` of an agency's window); an entry's
//! `updated` is its latest change, so a reader sees each change once.
//!
//! Every text and attribute value goes through relay-xml's one escaper.

use chrono::{DateTime, SecondsFormat, Utc};

use super::feed::{Snapshot, Window};
use crate::Relay;

const ATOM_NS: &str = "http://www.w3.org/2005/Atom";

fn time(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// An indented XML writer over one string.
struct Out {
    buf: String,
    depth: usize,
}

impl Out {
    fn new() -> Self {
        Self {
            buf: String::from("<?xml version=\"1.0\" encoding=\"utf-8\"?>"),
            depth: 0,
        }
    }

    fn open(&mut self, name: &str, attrs: &[(&str, &str)]) {
        self.buf.push('\n');
        for _ in 0..self.depth {
            self.buf.push_str("  ");
        }
        self.buf.push('<');
        self.buf.push_str(name);
        for (k, v) in attrs {
            self.buf.push(' ');
            self.buf.push_str(k);
            self.buf.push_str("=\"");
            relay_xml::escape_into(&mut self.buf, v, true);
            self.buf.push('"');
        }
    }

    fn start(&mut self, name: &str, attrs: &[(&str, &str)]) {
        self.open(name, attrs);
        self.buf.push('>');
        self.depth += 1;
    }

    fn end(&mut self, name: &str) {
        self.depth = self.depth.saturating_sub(1);
        self.buf.push('\n');
        for _ in 0..self.depth {
            self.buf.push_str("  ");
        }
        self.buf.push_str("</");
        self.buf.push_str(name);
        self.buf.push('>');
    }

    fn empty(&mut self, name: &str, attrs: &[(&str, &str)]) {
        self.open(name, attrs);
        self.buf.push_str("/>");
    }

    fn text(&mut self, name: &str, attrs: &[(&str, &str)], text: &str) {
        self.open(name, attrs);
        self.buf.push('>');
        relay_xml::escape_into(&mut self.buf, text, false);
        self.buf.push_str("</");
        self.buf.push_str(name);
        self.buf.push('>');
    }
}

/// One entry, whatever it is about.
struct Entry {
    id: String,
    title: String,
    published: DateTime<Utc>,
    updated: DateTime<Utc>,
    category: &'static str,
    summary: String,
    content: String,
}

fn incident_entries(s: &Snapshot) -> Vec<Entry> {
    s.incidents
        .iter()
        .map(|i| {
            let names: Vec<String> = i
                .components
                .iter()
                .map(|c| {
                    s.components
                        .iter()
                        .find(|(k, _)| &k.id == c)
                        .map_or_else(|| c.clone(), |(k, _)| k.name.clone())
                })
                .collect();
            let latest = i.updates.last();
            let mut content = format!(
                "{} / {}\nStatus: {}\nImpact: {}\nComponents: {}\nStarted: {}\n",
                i.name.en,
                i.name.sv,
                i.status.as_str(),
                i.impact.as_str(),
                names.join(", "),
                time(i.started_at),
            );
            if let Some(r) = i.resolved_at {
                content.push_str(&format!("Resolved: {}\n", time(r)));
            }
            for u in i.updates.iter().rev() {
                content.push_str(&format!(
                    "\n{} {}\n{}\n{}\n",
                    time(u.created_at),
                    u.status.as_str(),
                    u.text.en,
                    u.text.sv
                ));
            }
            Entry {
                id: format!("urn:uuid:{}", i.id),
                title: format!("{} [{}]", i.name.en, i.status.as_str()),
                published: i.updates.first().map_or(i.started_at, |u| u.created_at),
                updated: i.updated_at,
                category: "incident",
                summary: latest.map_or_else(String::new, |u| u.text.en.clone()),
                content,
            }
        })
        .collect()
}

fn window_entry(s: &Snapshot, w: &Window) -> Entry {
    let names: Vec<String> = s
        .components
        .iter()
        .filter(|(c, _)| w.providers.contains(&c.provider))
        .map(|(c, _)| c.name.clone())
        .collect();
    Entry {
        id: w.entry_id.clone(),
        title: format!("Planned maintenance: {}", names.join(", ")),
        published: w.updated_at.min(w.starts_at),
        updated: w.updated_at,
        category: "maintenance",
        summary: w.text.en.clone(),
        content: format!(
            "{}\n{}\nScheduled for: {}\nScheduled until: {}\nComponents: {}\nAnnounced by: {}\n",
            w.text.en,
            w.text.sv,
            time(w.starts_at),
            time(w.ends_at),
            names.join(", "),
            w.source,
        ),
    }
}

/// The feed's bytes.
pub fn render(s: &Snapshot, relay: &Relay) -> Vec<u8> {
    let live = relay.live();
    let config = &live.config;
    let name = config
        .status
        .page_name
        .clone()
        .unwrap_or_else(|| config.node.name.clone());
    let mut entries = incident_entries(s);
    entries.extend(s.windows.iter().map(|w| window_entry(s, w)));
    entries.retain(|e| e.updated >= s.history_from || e.category == "incident");
    entries.sort_by(|a, b| b.updated.cmp(&a.updated).then(a.id.cmp(&b.id)));
    let updated = entries
        .iter()
        .map(|e| e.updated)
        .chain(std::iter::once(s.updated_at()))
        .max()
        .unwrap_or(DateTime::UNIX_EPOCH);

    let mut out = Out::new();
    out.start("feed", &[("xmlns", ATOM_NS), ("xml:lang", "en")]);
    out.text(
        "id",
        &[],
        &format!(
            "urn:shs-relay:status:{}:{}",
            config.node.org,
            config.node.environment.as_str()
        ),
    );
    out.text(
        "title",
        &[],
        &format!(
            "{name} ({}): incidents and maintenance",
            config.node.environment.as_str()
        ),
    );
    out.text("updated", &[], &time(updated));
    out.start("author", &[]);
    out.text("name", &[], &name);
    out.end("author");
    if let Some(base) = &config.front.public_url {
        let base = base.trim_end_matches('/');
        out.empty(
            "link",
            &[
                ("rel", "self"),
                ("type", "application/atom+xml"),
                ("href", &format!("{base}/status/v1/history.atom")),
            ],
        );
        out.empty(
            "link",
            &[
                ("rel", "alternate"),
                ("type", "application/json"),
                ("href", &format!("{base}/status/v1/summary.json")),
            ],
        );
    }
    for e in &entries {
        out.start("entry", &[]);
        out.text("id", &[], &e.id);
        out.text("title", &[("type", "text")], &e.title);
        out.text("published", &[], &time(e.published));
        out.text("updated", &[], &time(e.updated));
        out.empty("category", &[("term", e.category)]);
        out.text("summary", &[("type", "text")], &e.summary);
        out.text("content", &[("type", "text")], &e.content);
        out.end("entry");
    }
    out.end("feed");
    let mut bytes = out.buf.into_bytes();
    bytes.push(b'\n');
    bytes
}
