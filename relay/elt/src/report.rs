//! The `Tidredovisning` time report: a strict reader that accepts exactly what
//! `schema/tidredovisning_1.xsd` accepts (a test checks the two agree with xmllint),
//! and the domain rules on top of it.
//!
//! Error texts name the element and the rule, never a value: they travel back to
//! the vendor and into logs, and the values are personal data.

use chrono::{Datelike, NaiveDate};
use relay_ident::{Organisationsnummer, PersonKind, Personnummer};

use crate::NS_TIDREDOVISNING;
use crate::xml::{Element, REPORT_LIMITS, XmlLimits, report_limits};

/// Largest report accepted (a month of rows is a few tens of kilobytes).
pub const DEFAULT_MAX_REPORT_BYTES: usize = 1024 * 1024;
/// Most rows in one report (the schema's `maxOccurs`).
pub const MAX_ROWS: usize = 500;

/// Why a report was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReportError {
    /// Not well-formed XML, or XML the reader refuses (DOCTYPE, other encodings).
    #[error("the report is not well-formed XML: {0}")]
    Malformed(String),
    /// Well-formed, but not valid against tidredovisning_1.xsd.
    #[error("the report is not valid against tidredovisning_1.xsd: {0}")]
    Schema(String),
    /// Valid against the schema, but breaks a rule of the service.
    #[error("the report breaks a rule of the service: {0}")]
    Rule(String),
    /// More than one report, or a batch document: one report per call.
    #[error("{0}")]
    Batch(String),
    #[error("the report is larger than {0} bytes")]
    TooLarge(usize),
    /// Over one of the reader's other [`XmlLimits`] (depth, elements,
    /// attributes, name or text size); the text names the limit.
    #[error("the document is over a limit: {0}")]
    OverLimit(String),
}

/// The kind of time on one row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeKind {
    Aktiv,
    Vante,
    Beredskap,
}

/// One report row: `from`..`to` minutes after midnight of `day`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Row {
    pub day: u32,
    pub from: u32,
    pub to: u32,
    pub kind: TimeKind,
}

/// A parsed and checked report. Names and telephone numbers are not kept.
#[derive(Debug, Clone)]
pub struct Report {
    pub id: uuid::Uuid,
    /// The first day of the reported month.
    pub month: NaiveDate,
    pub insured: Personnummer,
    pub assistant: Personnummer,
    pub period: (NaiveDate, NaiveDate),
    pub anordnare: Organisationsnummer,
    pub other_employer: Option<Organisationsnummer>,
    pub rows: Vec<Row>,
    pub signed_by_anordnare: NaiveDate,
    pub signed_by_assistant: NaiveDate,
}

impl Report {
    /// Reads and checks a report: well-formed, valid against the schema, and
    /// every domain rule.
    pub fn parse(bytes: &[u8]) -> Result<Self, ReportError> {
        Self::parse_with(bytes, DEFAULT_MAX_REPORT_BYTES)
    }

    /// As [`Report::parse`], at most `max_bytes` bytes (the other bounds of
    /// [`REPORT_LIMITS`]).
    pub fn parse_with(bytes: &[u8], max_bytes: usize) -> Result<Self, ReportError> {
        Self::parse_within(bytes, &report_limits(max_bytes))
    }

    /// As [`Report::parse`], within `limits`.
    pub fn parse_within(bytes: &[u8], limits: &XmlLimits) -> Result<Self, ReportError> {
        let root = crate::xml::parse(bytes, limits)?;
        if root.local != "Tidredovisning" || root.namespace() != NS_TIDREDOVISNING {
            if root.count("Tidredovisning") > 0 {
                return Err(ReportError::Batch(
                    "a batch document is refused: one Tidredovisning per call".into(),
                ));
            }
            return Err(schema(format!(
                "the root element must be Tidredovisning in namespace {NS_TIDREDOVISNING}"
            )));
        }
        let report = read_report(&root)?;
        report.check_rules()?;
        Ok(report)
    }

    /// The domain rules the schema cannot express.
    fn check_rules(&self) -> Result<(), ReportError> {
        let rule = |m: &str| Err(ReportError::Rule(m.to_owned()));
        let first = self.month;
        let last = last_day_of_month(first);
        let (from, tom) = self.period;
        if from > tom {
            return rule("berakningsperiod: fromDag is after tomDag");
        }
        if from < first || tom > last {
            return rule("berakningsperiod must lie inside redovisningsmanad");
        }
        if self.insured == self.assistant {
            return rule("the assistant cannot be the person who has assistance");
        }
        let mut by_day: Vec<Row> = Vec::with_capacity(self.rows.len());
        for (i, row) in self.rows.iter().enumerate() {
            let n = i + 1;
            let Some(date) = first.with_day(row.day) else {
                return rule(&format!(
                    "rapportRad {n}: dag is not a day of redovisningsmanad"
                ));
            };
            if date < from || date > tom {
                return rule(&format!("rapportRad {n}: dag is outside berakningsperiod"));
            }
            if row.from >= row.to {
                return rule(&format!("rapportRad {n}: fromTid must be before tomTid"));
            }
            by_day.push(*row);
        }
        by_day.sort_by_key(|r| (r.day, r.from));
        for pair in by_day.windows(2) {
            if let [a, b] = pair
                && a.day == b.day
                && b.from < a.to
            {
                return Err(ReportError::Rule(format!(
                    "rows overlap on day {:02}: an assistant cannot report two spans at the same time",
                    a.day
                )));
            }
        }
        for (name, date) in [
            ("datumForUnderskriftAnordnare", self.signed_by_anordnare),
            ("datumForUnderskriftAssistent", self.signed_by_assistant),
        ] {
            if date < from {
                return rule(&format!("{name} is before the reported period"));
            }
        }
        Ok(())
    }

    /// Total minutes of each kind (aktiv, vänte, beredskap).
    pub fn totals(&self) -> (u32, u32, u32) {
        let mut t = (0, 0, 0);
        for r in &self.rows {
            let m = r.to - r.from;
            match r.kind {
                TimeKind::Aktiv => t.0 += m,
                TimeKind::Vante => t.1 += m,
                TimeKind::Beredskap => t.2 += m,
            }
        }
        t
    }
}

/// How many `Tidredovisning` elements a document holds (in any namespace), or
/// `None` when it is not well-formed or over [`REPORT_LIMITS`].
pub fn count_reports(bytes: &[u8]) -> Option<usize> {
    count_reports_within(bytes, &REPORT_LIMITS)
}

/// As [`count_reports`], within `limits` (the size is checked first).
pub fn count_reports_within(bytes: &[u8], limits: &XmlLimits) -> Option<usize> {
    crate::xml::parse(bytes, limits)
        .ok()
        .map(|root| usize::from(root.local == "Tidredovisning") + root.count("Tidredovisning"))
}

/// The report id (`Tidredovisning/id`) when the document is well-formed and
/// has one, even if the report breaks the schema or a rule: it names a call for
/// the retry count.
pub fn id_of(bytes: &[u8]) -> Option<uuid::Uuid> {
    let root = crate::xml::parse(bytes, &REPORT_LIMITS).ok()?;
    if root.local != "Tidredovisning" {
        return None;
    }
    let id = root.children.iter().find(|c| c.local == "id")?;
    let text = id.text.trim_matches(BLANKS);
    (text.len() == 36)
        .then(|| uuid::Uuid::parse_str(text).ok())
        .flatten()
}

impl Report {
    /// Whether the report names one of Skatteverket's published test persons
    /// (`relay_ident::TEST_PERSONS`), as the insured person or the assistant:
    /// test data, which a production relay refuses.
    pub fn names_test_person(&self) -> bool {
        [&self.insured, &self.assistant]
            .iter()
            .any(|p| relay_ident::TEST_PERSONS.contains(&p.as_str()))
    }
}

fn schema(m: impl Into<String>) -> ReportError {
    ReportError::Schema(m.into())
}

pub(crate) fn last_day_of_month(first: NaiveDate) -> NaiveDate {
    let (y, m) = if first.month() == 12 {
        (first.year() + 1, 1)
    } else {
        (first.year(), first.month() + 1)
    };
    NaiveDate::from_ymd_opt(y, m, 1)
        .and_then(|d| d.pred_opt())
        .unwrap_or(first)
}

/// Walks an element's children in the schema's order.
struct Seq<'a> {
    parent: &'a str,
    items: &'a [Element],
    at: usize,
}

impl<'a> Seq<'a> {
    fn of(el: &'a Element) -> Result<Self, ReportError> {
        if !el.text.trim().is_empty() {
            return Err(schema(format!("{} must not contain text", el.local)));
        }
        if let Some(attr) = crate::xml::attributes(el).next() {
            return Err(schema(format!(
                "{}: attribute {} is not allowed",
                el.local, attr.local
            )));
        }
        Ok(Self {
            parent: &el.local,
            items: &el.children,
            at: 0,
        })
    }

    fn peek(&self, name: &str) -> bool {
        self.items
            .get(self.at)
            .is_some_and(|e| e.local == name && e.namespace() == NS_TIDREDOVISNING)
    }

    fn optional(&mut self, name: &str) -> Option<&'a Element> {
        if self.peek(name) {
            let item = self.items.get(self.at);
            self.at += 1;
            item
        } else {
            None
        }
    }

    fn one(&mut self, name: &str) -> Result<&'a Element, ReportError> {
        self.optional(name)
            .ok_or_else(|| match self.items.get(self.at) {
                Some(e) if e.local == name => schema(format!(
                    "{}/{name} must be in namespace {NS_TIDREDOVISNING}",
                    self.parent
                )),
                Some(e) => schema(format!(
                    "{}: expected {name}, found {}",
                    self.parent, e.local
                )),
                None => schema(format!("{}: {name} is missing", self.parent)),
            })
    }

    fn text(&mut self, name: &str) -> Result<&'a str, ReportError> {
        let el = self.one(name)?;
        simple(el)
    }

    fn end(&self) -> Result<(), ReportError> {
        match self.items.get(self.at) {
            None => Ok(()),
            Some(e) => Err(schema(format!(
                "{}: unexpected element {}",
                self.parent, e.local
            ))),
        }
    }
}

/// The text of a simple-typed element: no children, no attributes. String
/// types keep their whitespace (as xs:string does); boolean and date trim it.
fn simple(el: &Element) -> Result<&str, ReportError> {
    if let Some(c) = el.children.first() {
        return Err(schema(format!(
            "{} must not contain element {}",
            el.local, c.local
        )));
    }
    if let Some(attr) = crate::xml::attributes(el).next() {
        return Err(schema(format!(
            "{}: attribute {} is not allowed",
            el.local, attr.local
        )));
    }
    Ok(el.text.as_str())
}

const BLANKS: [char; 4] = [' ', '\t', '\n', '\r'];

fn boolean(name: &str, s: &str) -> Result<bool, ReportError> {
    match s.trim_matches(BLANKS) {
        "true" | "1" => Ok(true),
        "false" | "0" => Ok(false),
        _ => Err(schema(format!("{name} must be true or false"))),
    }
}

fn date(name: &str, s: &str) -> Result<NaiveDate, ReportError> {
    // xs:date allows an optional time zone; we accept none or Z/±hh:mm.
    let s = s.trim_matches(BLANKS);
    let core = s.get(..10).unwrap_or(s);
    let zone = s.get(10..).unwrap_or("");
    let zone_ok = zone.is_empty()
        || zone == "Z"
        || (zone.len() == 6
            && (zone.starts_with('+') || zone.starts_with('-'))
            && zone.as_bytes().get(3) == Some(&b':'));
    if core.len() != 10 || !zone_ok {
        return Err(schema(format!("{name} must be a date (YYYY-MM-DD)")));
    }
    NaiveDate::parse_from_str(core, "%Y-%m-%d")
        .map_err(|_| schema(format!("{name} must be a date (YYYY-MM-DD)")))
}

fn digits(name: &str, s: &str, n: usize) -> Result<(), ReportError> {
    if s.len() == n && s.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(schema(format!("{name} must be {n} digits")))
    }
}

fn name_type(name: &str, s: &str) -> Result<(), ReportError> {
    let n = s.chars().count();
    if (1..=100).contains(&n) {
        Ok(())
    } else {
        Err(schema(format!("{name} must be 1 to 100 characters")))
    }
}

fn phone(name: &str, s: &str) -> Result<(), ReportError> {
    let body = s.strip_prefix('+').unwrap_or(s);
    let mut chars = body.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_digit())
        && (5..=20).contains(&body.chars().count())
        && chars.all(|c| c.is_ascii_digit() || c == ' ' || c == '-');
    if ok {
        Ok(())
    } else {
        Err(schema(format!("{name} is not a telephone number")))
    }
}

/// `H.MM`/`HH.MM` (0.00 to 24.00) as minutes after midnight.
fn time_of_day(name: &str, s: &str) -> Result<u32, ReportError> {
    let bad = || schema(format!("{name} must be a time H.MM between 0.00 and 24.00"));
    let (h, m) = s.split_once('.').ok_or_else(bad)?;
    if !(1..=2).contains(&h.len())
        || m.len() != 2
        || !h.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit())
    {
        return Err(bad());
    }
    let (h, m): (u32, u32) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
    if m > 59 || h > 24 || (h == 24 && m != 0) {
        return Err(bad());
    }
    Ok(h * 60 + m)
}

fn person(name: &str, s: &str, kind: PersonKind) -> Result<Personnummer, ReportError> {
    digits(name, s, 12)?;
    let p = Personnummer::parse(s).map_err(|_| {
        ReportError::Rule(format!(
            "{name} is not a valid personnummer or samordningsnummer"
        ))
    })?;
    if p.kind() != kind {
        return Err(ReportError::Rule(match kind {
            PersonKind::Personnummer => {
                format!("{name} is a samordningsnummer, not a personnummer")
            }
            PersonKind::Samordningsnummer => {
                format!("{name} is a personnummer, not a samordningsnummer")
            }
        }));
    }
    Ok(p)
}

fn org(name: &str, s: &str) -> Result<Organisationsnummer, ReportError> {
    digits(name, s, 10)?;
    Organisationsnummer::parse(s)
        .map_err(|_| ReportError::Rule(format!("{name} is not a valid organisationsnummer")))
}

/// Reads the report in the schema's order. Type errors are schema errors;
/// check digits and calendar rules are rule errors.
fn read_report(root: &Element) -> Result<Report, ReportError> {
    let mut top = Seq::of(root)?;
    let id_text = top.text("id")?;
    let id = (id_text.len() == 36)
        .then(|| uuid::Uuid::parse_str(id_text).ok())
        .flatten()
        .ok_or_else(|| schema("id must be a UUID"))?;
    let month_text = top.text("redovisningsmanad")?;
    let month = (month_text.len() == 7 && month_text.as_bytes().get(4) == Some(&b'-'))
        .then(|| NaiveDate::parse_from_str(&format!("{month_text}-01"), "%Y-%m-%d").ok())
        .flatten()
        .ok_or_else(|| schema("redovisningsmanad must be YYYY-MM"))?;

    let mut p = Seq::of(top.one("personSomHarAssistans")?)?;
    let insured_text = p.text("personnummer")?;
    digits("personSomHarAssistans/personnummer", insured_text, 12)?;
    name_type("fornamn", p.text("fornamn")?)?;
    name_type("efternamn", p.text("efternamn")?)?;
    p.end()?;

    let mut a = Seq::of(top.one("assistent")?)?;
    let (assistant_text, assistant_kind) = if let Some(el) = a.optional("personnummer") {
        (simple(el)?, PersonKind::Personnummer)
    } else if let Some(el) = a.optional("samordningsnummer") {
        (simple(el)?, PersonKind::Samordningsnummer)
    } else {
        return Err(schema(
            "assistent: expected personnummer or samordningsnummer",
        ));
    };
    digits("assistent", assistant_text, 12)?;
    name_type("fornamn", a.text("fornamn")?)?;
    name_type("efternamn", a.text("efternamn")?)?;
    boolean("kollektivavtal", a.text("kollektivavtal")?)?;
    a.end()?;

    let mut b = Seq::of(top.one("berakningsperiod")?)?;
    let from = date("fromDag", b.text("fromDag")?)?;
    let tom = date("tomDag", b.text("tomDag")?)?;
    b.end()?;
    boolean(
        "anstalldAvPersonSomHarAssistans",
        top.text("anstalldAvPersonSomHarAssistans")?,
    )?;

    let mut o = Seq::of(top.one("assistansanordnare")?)?;
    name_type("anordnareNamn", o.text("anordnareNamn")?)?;
    let anordnare_text = o.text("organisationsnummer")?;
    digits("assistansanordnare/organisationsnummer", anordnare_text, 10)?;
    name_type("kontaktperson", o.text("kontaktperson")?)?;
    phone("telefonnummer", o.text("telefonnummer")?)?;
    boolean(
        "assistentAnstalldAvAnordnare",
        o.text("assistentAnstalldAvAnordnare")?,
    )?;
    let other_text = match o.optional("annanArbetsgivare") {
        Some(el) => {
            let mut x = Seq::of(el)?;
            name_type("arbetsgivareNamn", x.text("arbetsgivareNamn")?)?;
            let t = x.text("organisationsnummer")?;
            digits("annanArbetsgivare/organisationsnummer", t, 10)?;
            x.end()?;
            Some(t)
        }
        None => None,
    };
    boolean(
        "assistentEgenForetagare",
        o.text("assistentEgenForetagare")?,
    )?;
    o.end()?;

    let mut t = Seq::of(top.one("tidrapport")?)?;
    let mut rows = Vec::new();
    while let Some(el) = t.optional("rapportRad") {
        if rows.len() == MAX_ROWS {
            return Err(schema(format!("tidrapport: at most {MAX_ROWS} rapportRad")));
        }
        let mut r = Seq::of(el)?;
        let dag = r.text("dag")?;
        let day: u32 = (dag.len() == 2)
            .then(|| dag.parse().ok())
            .flatten()
            .filter(|d| (1..=31).contains(d))
            .ok_or_else(|| schema("dag must be a two-digit day 01 to 31"))?;
        let from_t = time_of_day("fromTid", r.text("fromTid")?)?;
        let to_t = time_of_day("tomTid", r.text("tomTid")?)?;
        let aktiv = boolean("aktivTid", r.text("aktivTid")?)?;
        let vante = boolean("vanteTid", r.text("vanteTid")?)?;
        let beredskap = boolean("beredskapsTid", r.text("beredskapsTid")?)?;
        r.end()?;
        let kind = match (aktiv, vante, beredskap) {
            (true, false, false) => TimeKind::Aktiv,
            (false, true, false) => TimeKind::Vante,
            (false, false, true) => TimeKind::Beredskap,
            _ => {
                return Err(ReportError::Rule(format!(
                    "rapportRad {}: exactly one of aktivTid, vanteTid and beredskapsTid must be true",
                    rows.len() + 1
                )));
            }
        };
        rows.push(Row {
            day,
            from: from_t,
            to: to_t,
            kind,
        });
    }
    if rows.is_empty() {
        return Err(schema("tidrapport: at least one rapportRad is required"));
    }
    t.end()?;
    let signed_by_anordnare = date(
        "datumForUnderskriftAnordnare",
        top.text("datumForUnderskriftAnordnare")?,
    )?;
    phone(
        "telefonnummerAnordnare",
        top.text("telefonnummerAnordnare")?,
    )?;
    let signed_by_assistant = date(
        "datumForUnderskriftAssistent",
        top.text("datumForUnderskriftAssistent")?,
    )?;
    phone(
        "telefonnummerAssistent",
        top.text("telefonnummerAssistent")?,
    )?;
    top.end()?;

    Ok(Report {
        id,
        month,
        insured: person(
            "personSomHarAssistans/personnummer",
            insured_text,
            PersonKind::Personnummer,
        )?,
        assistant: person("assistent", assistant_text, assistant_kind)?,
        period: (from, tom),
        anordnare: org("assistansanordnare/organisationsnummer", anordnare_text)?,
        other_employer: other_text
            .map(|t| org("annanArbetsgivare/organisationsnummer", t))
            .transpose()?,
        rows,
        signed_by_anordnare,
        signed_by_assistant,
    })
}
