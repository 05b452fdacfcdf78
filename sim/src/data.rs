//! Realistic, deterministic base-service answers.
//!
//! The same person always gets the same answer: every document is drawn from a
//! PRNG seeded with a hash of the agency and the personnummer. Across persons the
//! data varies as caseloads do: many have nothing from most agencies, some have
//! several benefits, loans, vehicles, permits or unemployment payments. Tolvan
//! (19121212-1212) has something from every agency, so the demo shows all seven.
//! Field lists, codes and amount ranges follow the domain notes (section 1).

use chrono::{Datelike, Months, NaiveDate};
use relay_ident::Personnummer;
use sha2::{Digest, Sha256};

use crate::{Agency, Slot};

/// A small deterministic PRNG (xorshift64*).
pub struct Rng(u64);

impl Rng {
    pub fn for_person(agency: Agency, person: &Personnummer, salt: &str) -> Self {
        let digest = Sha256::digest(format!("{}|{}|{salt}", agency.id(), person.as_str()));
        let mut seed = [0u8; 8];
        seed.copy_from_slice(&digest[..8]);
        Self(u64::from_le_bytes(seed) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in [0, 1).
    pub fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }

    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next_u64() % (hi - lo + 1)
    }

    pub fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[(self.next_u64() % items.len() as u64) as usize]
    }
}

/// The question context the base services echo.
#[derive(Debug, Clone)]
pub struct Context {
    pub person: Personnummer,
    pub from: NaiveDate,
    pub tom: NaiveDate,
    pub ingivare_orgnr: String,
    pub ingivare_namn: String,
    pub handlaggare: String,
    pub referens: String,
    pub syfte: String,
    pub lagtext: String,
    /// Whether the agency knows the person; an unknown person gets the
    /// agency's answer with nothing in it.
    pub known: bool,
    /// A scenario's `records`: about this many records (a large answer).
    pub records: Option<u32>,
}

const FIRST: [&str; 12] = [
    "Anna", "Erik", "Maria", "Lars", "Karin", "Johan", "Eva", "Anders", "Sara", "Ahmed", "Fatima",
    "Nils",
];
const LAST: [&str; 10] = [
    "Andersson",
    "Johansson",
    "Karlsson",
    "Nilsson",
    "Eriksson",
    "Larsson",
    "Olsson",
    "Persson",
    "Svensson",
    "Ali",
];

fn is_tolvan(p: &Personnummer) -> bool {
    p.as_str() == "191212121212"
}

/// A stable name for the person (Tolvan Tolvansson for the classic test number).
pub fn name(p: &Personnummer) -> (String, String) {
    if is_tolvan(p) {
        return ("Tolvan".into(), "Tolvansson".into());
    }
    let mut r = Rng::for_person(Agency::Ssbtek(Slot::Skv), p, "name");
    (r.pick(&FIRST).to_string(), r.pick(&LAST).to_string())
}

/// Escapes text for XML content and attributes (the project's one escaper).
pub use relay_xml::escape_attr as esc;

fn day_in(r: &mut Rng, from: NaiveDate, tom: NaiveDate) -> NaiveDate {
    let days = (tom - from).num_days().max(0) as u64;
    from + chrono::Days::new(r.range(0, days))
}

/// Month starts within the period (at most `max`).
fn months(from: NaiveDate, tom: NaiveDate, max: usize) -> Vec<NaiveDate> {
    let mut out = Vec::new();
    let mut m = NaiveDate::from_ymd_opt(from.year(), from.month(), 1).unwrap_or(from);
    while m <= tom && out.len() < max {
        if m >= from {
            out.push(m);
        }
        m = m + Months::new(1);
    }
    out
}

/// Arbetsförmedlingen: `SvarMeddelande` (ers_stod v2) with the echoed question.
pub fn af(c: &Context) -> String {
    let mut r = Rng::for_person(Agency::Ssbtek(Slot::Af), &c.person, "");
    let (fornamn, efternamn) = name(&c.person);
    let registered = c.known && (is_tolvan(&c.person) || r.chance(0.35));
    let ns = "http://api.arbetsformedlingen.se/arbetssokande/ersattningsstod/v2";
    let info = if registered {
        let reg = c.from - chrono::Days::new(r.range(30, 900));
        let (code, last) = if r.chance(0.8) {
            ("200", Some(day_in(&mut r, c.from, c.tom)))
        } else {
            ("501", None)
        };
        let last = last
            .map(|d| {
                format!("<er:SenasteAktivitetsRapportDatum>{d}</er:SenasteAktivitetsRapportDatum>")
            })
            .unwrap_or_default();
        format!(
            "<er:ArbetssokandeInfo><er:Arbetssokande>true</er:Arbetssokande><er:ArbetssokandeSKAT>{}</er:ArbetssokandeSKAT><er:ArbetssokandeRegistrerad>{reg}</er:ArbetssokandeRegistrerad><er:ArbetssokandeOmfattning>{}</er:ArbetssokandeOmfattning><er:AktivetetsRapportDatum><er:AktivitetsRapportMeddelande>{code}</er:AktivitetsRapportMeddelande>{last}</er:AktivetetsRapportDatum></er:ArbetssokandeInfo>",
            r.pick(&[
                "Arbetslös",
                "Deltidsarbetslös",
                "I program med aktivitetsstöd",
                "Anställd"
            ]),
            r.pick(&[100, 100, 75, 50]),
        )
    } else {
        "<er:ArbetssokandeInfo><er:Arbetssokande>false</er:Arbetssokande><er:AktivetetsRapportDatum><er:AktivitetsRapportMeddelande>500</er:AktivitetsRapportMeddelande></er:AktivetetsRapportDatum></er:ArbetssokandeInfo>".to_owned()
    };
    // A large answer: economic decisions, one per record.
    let mut beslut = String::new();
    for i in 0..c.records.filter(|_| c.known).unwrap_or(0) {
        let from = c.from + chrono::Days::new(u64::from(i % 28));
        beslut.push_str(&format!(
            "<er:Beslut><er:ErsattningTyp>Aktivitetsstöd</er:ErsattningTyp><er:Omfattning>100</er:Omfattning><er:BeslutFrom>{from}</er:BeslutFrom><er:BeslutTom>{}</er:BeslutTom></er:Beslut>",
            c.tom.max(from)
        ));
    }
    let info = if beslut.is_empty() {
        info
    } else {
        format!(
            "{info}<er:BeslutInfo><er:EkonomiskaBeslut>{beslut}</er:EkonomiskaBeslut></er:BeslutInfo>"
        )
    };
    let akassa = if registered && r.chance(0.6) {
        format!(
            "<er:Akassetillhorighet>{}</er:Akassetillhorighet>",
            r.pick(&AKASSOR)
        )
    } else {
        String::new()
    };
    format!(
        "<er:SvarMeddelande xmlns:er=\"{ns}\"><er:Fraga><er:OrganisationsnummerForIngivare>{org}</er:OrganisationsnummerForIngivare><er:NamnPaIngivare>{namn}</er:NamnPaIngivare><er:KontonamnForHandlaggare>{hl}</er:KontonamnForHandlaggare><er:Referensnummer>{ref_}</er:Referensnummer><er:From>{from}</er:From><er:Tom>{tom}</er:Tom><er:SyfteMedFraga>{syfte}</er:SyfteMedFraga><er:LagParagraf>{lag}</er:LagParagraf><er:IdentitetsbeteckningFysiskPerson>{pnr}</er:IdentitetsbeteckningFysiskPerson></er:Fraga><er:Svar><er:Schemaversion>4.0</er:Schemaversion><er:Referensnummer>{ref_}</er:Referensnummer><er:LagParagraf>{lag}</er:LagParagraf><er:IdentitetsbeteckningFysiskPerson>{pnr}</er:IdentitetsbeteckningFysiskPerson><er:Fornamn>{fornamn}</er:Fornamn><er:Efternamn>{efternamn}</er:Efternamn><er:Sekretessmarkering>false</er:Sekretessmarkering>{info}{akassa}<er:StatusSokandeinformationKod>0</er:StatusSokandeinformationKod><er:StatusSokandeinformationKodText>Frågan har behandlats normalt och ett giltigt svar har returnerats.</er:StatusSokandeinformationKodText></er:Svar></er:SvarMeddelande>",
        org = esc(&c.ingivare_orgnr),
        namn = esc(&c.ingivare_namn),
        hl = esc(&c.handlaggare),
        ref_ = esc(&c.referens),
        from = c.from,
        tom = c.tom,
        syfte = esc(&c.syfte),
        lag = esc(&c.lagtext),
        pnr = c.person.as_str(),
    )
}

const AKASSOR: [&str; 6] = [
    "Unionens arbetslöshetskassa",
    "Kommunals a-kassa",
    "IF Metalls a-kassa",
    "Akademikernas a-kassa",
    "Handelsanställdas a-kassa",
    "Byggnadsarbetarnas a-kassa",
];

/// The a-kassor (SO, INT014): the echoed question and one entry per a-kassa.
pub fn so(c: &Context) -> String {
    let mut r = Rng::for_person(Agency::Ssbtek(Slot::So), &c.person, "");
    let ns = "http://INT014.UBPService.Schemas";
    let funds = if !c.known {
        0
    } else if let Some(n) = c.records {
        // Up to six payments each.
        u64::from(n.div_ceil(6))
    } else if is_tolvan(&c.person) {
        1
    } else if r.chance(0.25) {
        r.range(1, 2)
    } else {
        0
    };
    let mut list = String::new();
    for _ in 0..funds {
        let daily = r.range(510, 1200) as f64;
        let mut payments = String::new();
        for m in months(c.from, c.tom, 6) {
            let days = r.range(15, 22) as f64;
            let gross = daily * days;
            let net = (gross * 0.72 * 100.0).round() / 100.0;
            let end = (m + Months::new(1)).pred_opt().unwrap_or(m).min(c.tom);
            payments.push_str(&format!(
                "<in:Utbetalningar><in:Utbetalningsdatum>{}</in:Utbetalningsdatum><in:NettoEfterSkatt>{net:.2}</in:NettoEfterSkatt><in:NettoEfterAvdrag>{net:.2}</in:NettoEfterAvdrag><in:Ersattningsdagar>{days}</in:Ersattningsdagar><in:AvserFrom>{m}</in:AvserFrom><in:AvserTom>{end}</in:AvserTom></in:Utbetalningar>",
                end.min(c.tom)
            ));
        }
        list.push_str(&format!(
            "<in:Arbetsloshetsersattning><in:SvarandeOrganisation>{}</in:SvarandeOrganisation><in:StatusSvarandeOrganisation>Besvarad</in:StatusSvarandeOrganisation>{payments}</in:Arbetsloshetsersattning>",
            r.pick(&AKASSOR)
        ));
    }
    // The list is required by the schema, even when empty.
    let list = format!("<in:ArbetsloshetsersattningLista>{list}</in:ArbetsloshetsersattningLista>");
    format!(
        "<in:GetUnemploymentBenefitPaymentResponse xmlns:in=\"{ns}\"><in:OrganisationsnummerIngivare>{org}</in:OrganisationsnummerIngivare><in:NamnIngivare>{namn}</in:NamnIngivare><in:KontonamnHandlaggare>{hl}</in:KontonamnHandlaggare><in:Referensnummer>{ref_}</in:Referensnummer><in:From>{from}</in:From><in:Tom>{tom}</in:Tom><in:Syfte>{syfte}</in:Syfte><in:Paragraf>{lag}</in:Paragraf><in:IdentificationNumber>{pnr}</in:IdentificationNumber>{list}</in:GetUnemploymentBenefitPaymentResponse>",
        org = esc(&c.ingivare_orgnr),
        namn = esc(&c.ingivare_namn),
        hl = esc(&c.handlaggare),
        ref_ = esc(&c.referens),
        from = c.from,
        tom = c.tom,
        syfte = esc(&c.syfte),
        lag = esc(&c.lagtext),
        pnr = c.person.as_str(),
    )
}

const VEHICLES: [(&str, &str, &str); 8] = [
    ("PERSONBIL", "VOLVO", "V70"),
    ("PERSONBIL", "VOLKSWAGEN", "GOLF"),
    ("PERSONBIL", "TOYOTA", "COROLLA"),
    ("PERSONBIL", "SAAB", "9-3"),
    ("MOTORCYKEL", "HONDA", "SH300A"),
    ("LASTBIL", "SCANIA", "R450"),
    ("MOPED", "PIAGGIO", "ZIP"),
    ("SLÄPVAGN", "BRENDERUP", "1205S"),
];

/// Transportstyrelsen: `HamtaUppgifterResponse` with the vehicles owned.
pub fn tns(c: &Context) -> String {
    let mut r = Rng::for_person(Agency::Ssbtek(Slot::Tns), &c.person, "");
    // Nobody under 18 owns a registered vehicle in the simulated register.
    let adult = c
        .person
        .birth_date()
        .and_then(|born| born.checked_add_months(chrono::Months::new(18 * 12)))
        .is_none_or(|of_age| of_age <= c.tom);
    let count = if !c.known {
        0
    } else if let Some(n) = c.records {
        u64::from(n)
    } else if is_tolvan(&c.person) {
        2
    } else if !adult {
        0
    } else if r.chance(0.4) {
        r.range(1, 3)
    } else {
        0
    };
    let letters = b"ABCDEFGHJKLMNOPRSTUWXYZ";
    let mut fordon = String::new();
    for _ in 0..count {
        let (slag, fabrikat, modell) = r.pick(&VEHICLES);
        let l = |r: &mut Rng| letters[r.range(0, letters.len() as u64 - 1) as usize] as char;
        let regnr = format!(
            "{}{}{}{:02}{}",
            l(&mut r),
            l(&mut r),
            l(&mut r),
            r.range(0, 99),
            l(&mut r)
        );
        fordon.push_str(&format!(
            "<fordon:fordon><fordon:regnr>{regnr}</fordon:regnr><fordon:fabrikat>{fabrikat}</fordon:fabrikat><fordon:fordonsar>{}</fordon:fordonsar><fordon:fordonsslag>{}</fordon:fordonsslag><fordon:handelsbeteckning>{modell}</fordon:handelsbeteckning></fordon:fordon>",
            r.range(1998, 2025),
            esc(slag)
        ));
    }
    let innehav = if fordon.is_empty() {
        String::new()
    } else {
        format!("<tns:fordonsinnehav>{fordon}</tns:fordonsinnehav>")
    };
    format!(
        "<tns:HamtaUppgifterResponse xmlns:tns=\"http://schema.transportstyrelsen.se/ssbtek/hamtauppgifterresponder/1\" xmlns:fordon=\"http://schema.transportstyrelsen.se/ssbtek/fordon/1\"><tns:resultat>OK</tns:resultat>{innehav}</tns:HamtaUppgifterResponse>"
    )
}

/// Migrationsverket: `findByPersonnummerResponse` with permit decisions.
pub fn miv(c: &Context, korrelationsid: &str) -> String {
    let mut r = Rng::for_person(Agency::Ssbtek(Slot::Miv), &c.person, "");
    let (fornamn, efternamn) = name(&c.person);
    let count = if !c.known {
        0
    } else if let Some(n) = c.records {
        u64::from(n)
    } else if is_tolvan(&c.person) {
        1
    } else if r.chance(0.15) {
        r.range(1, 2)
    } else {
        0
    };
    let mut svar = String::new();
    let kinds = [
        (
            "UAT",
            "UPPEHÅLLS- OCH ARBETSTILLSTÅND",
            "PUT",
            "PERMANENT UPPEHÅLLSTILLSTÅND",
            "PERMANENT",
        ),
        (
            "UT",
            "UPPEHÅLLSTILLSTÅND",
            "UT",
            "UPPEHÅLLSTILLSTÅND",
            "TIDBEGRANSAT",
        ),
        (
            "AT",
            "ARBETSTILLSTÅND",
            "AT",
            "ARBETSTILLSTÅND",
            "TIDBEGRANSAT",
        ),
    ];
    for _ in 0..count {
        let (at, atn, bt, btn, giltig) = r.pick(&kinds);
        let applied = c.from - chrono::Days::new(r.range(200, 3000));
        let decided = applied + chrono::Days::new(r.range(30, 400));
        let period = if *giltig == "TIDBEGRANSAT" {
            let to = decided + Months::new(*r.pick(&[12u32, 24, 36]));
            format!(
                "<fromDatum>{decided}</fromDatum><giltighetstid>{giltig}</giltighetstid><tomDatum>{to}</tomDatum>"
            )
        } else {
            format!("<giltighetstid>{giltig}</giltighetstid>")
        };
        svar.push_str(&format!(
            "<svar><ansokningsdatum>{applied}</ansokningsdatum><arendeTyp>{at}</arendeTyp><arendeTypNamn>{atn}</arendeTypNamn><beslutsKod>BEV</beslutsKod><beslutsKodNamn>ANSÖKAN BEVILJAS</beslutsKodNamn><beslutsTyp>{bt}</beslutsTyp><beslutsTypNamn>{btn}</beslutsTypNamn><beslutsdatum>{decided}</beslutsdatum>{period}</svar>"
        ));
    }
    let (names, collection) = if svar.is_empty() {
        (String::new(), String::new())
    } else {
        (
            format!(
                "<efternamn>{}</efternamn><fornamn>{}</fornamn><hemland>{}</hemland>",
                esc(&efternamn.to_uppercase()),
                esc(&fornamn.to_uppercase()),
                r.pick(&[
                    "SYRIEN",
                    "AFGHANISTAN",
                    "ERITREA",
                    "IRAK",
                    "SOMALIA",
                    "UKRAINA"
                ])
            ),
            format!("<svarCollection>{svar}</svarCollection>"),
        )
    };
    let k = esc(korrelationsid);
    format!(
        "<miv:findByPersonnummerResponse xmlns:miv=\"http://schema.migrationsverket.se/ssbtek/1/\"><response><korrelationsid>{k}</korrelationsid><correlationid>{}</correlationid>{names}<personnummer>{}</personnummer>{collection}</response></miv:findByPersonnummerResponse>",
        uuid::Uuid::from_u64_pair(r.next_u64(), r.next_u64()),
        c.person.as_str()
    )
}

/// Skatteverket: the `SvarBeskattningsuppgifterEnligtSFS2008-975` document that
/// travels as a string in `svar`.
pub fn skv_document(c: &Context) -> String {
    let mut r = Rng::for_person(Agency::Ssbtek(Slot::Skv), &c.person, "");
    let (fornamn, efternamn) = name(&c.person);
    let year = c.tom.year() - 1;
    let mut kapital = String::new();
    let years = match c.records {
        Some(n) if c.known => n,
        _ if c.known && (is_tolvan(&c.person) || r.chance(0.3)) => 2,
        _ => 0,
    };
    for y in 0..years {
        let intakter = r.range(0, 60_000);
        let overskott = intakter * r.range(20, 90) / 100;
        kapital.push_str(&format!(
            "<Kapitaluppgift><besko:Taxeringsar>{}</besko:Taxeringsar><besko:SummaIntakterPaKapital>{intakter}</besko:SummaIntakterPaKapital><besko:OverskottPaKapital>{overskott}</besko:OverskottPaKapital></Kapitaluppgift>",
            year - (y % 10) as i32
        ));
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><SvarBeskattningsuppgifterEnligtSFS2008-975 xmlns=\"http://xmls.skatteverket.se/se/skatteverket/zg/instans/standardiseradInformation/1.0\" xmlns:besko=\"http://xmls.skatteverket.se/se/skatteverket/zg/komponent/infoForBeskattning/1.0\" xmlns:folko=\"http://xmls.skatteverket.se/se/skatteverket/zg/komponent/infoForFolkbokforing/1.0\"><PersonuppgiftLista><Personuppgift><folko:IdentitetsbeteckningFysiskPerson>{}</folko:IdentitetsbeteckningFysiskPerson><folko:Fornamn>{}</folko:Fornamn><folko:Efternamn>{}</folko:Efternamn><StatusPersonuppgiftKod>{}</StatusPersonuppgiftKod>{kapital}</Personuppgift></PersonuppgiftLista></SvarBeskattningsuppgifterEnligtSFS2008-975>",
        c.person.as_str(),
        esc(&fornamn),
        esc(&efternamn),
        if kapital.is_empty() { 0 } else { 999 }
    )
}

/// CSN: the `CSNSvar` document (kommunfraga v4.0).
pub fn csn_document(c: &Context) -> String {
    let mut r = Rng::for_person(Agency::Ssbtek(Slot::Csn), &c.person, "");
    let studies = c.known && (c.records.is_some() || is_tolvan(&c.person) || r.chance(0.2));
    let loan = c.known && r.chance(0.1);
    let mut arenden = String::new();
    if studies {
        let mut payments = String::new();
        let mut dates = months(c.from, c.tom, 6);
        if let Some(n) = c.records {
            // A large answer: the months over again.
            let one = dates.clone();
            dates = one.iter().cycle().take(n as usize).copied().collect();
        }
        for m in dates {
            let d = m + chrono::Days::new(24);
            payments.push_str(&format!(
                "<Utbetalning><utbetdatum>{}</utbetdatum><utbetstatus>Utbetald</utbetstatus><totbelopp>{}</totbelopp></Utbetalning>",
                d.format("%Y%m%d"),
                r.pick(&[3_400, 11_100, 5_550])
            ));
        }
        arenden = format!(
            "<Arenden><Arende><stodform>GRUND</stodform><klartext>Studiemedel Sverige</klartext><status>BESLUTAD</status><UtbetalningsPlan>{payments}</UtbetalningsPlan></Arende></Arenden>"
        );
    }
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><CSNSvar schemaVersion=\"4.0\" xmlns=\"http://schema.csn.se/v4.0/kommunfraga\" xmlns:ns5=\"http://schema.csn.se/v4.0/person\" xmlns:ns4=\"http://schema.csn.se/v4.0/csntyper\"><GemensamtSvarEkbistand><Resultat><ResultatKod>0</ResultatKod><ResultatText>{}</ResultatText></Resultat></GemensamtSvarEkbistand><GemensamtFragaEkbistand/><Personer><Person personnummer=\"{}\" Status=\"{}\" sekretess=\"  \" sekel=\"{}\"><ns5:Studiestodstypforteckning><ns4:studiemedel>{}</ns4:studiemedel><ns4:studiehjalp>0</ns4:studiehjalp><ns4:hemutrustningslan>{}</ns4:hemutrustningslan><ns4:studiestartsstod>0</ns4:studiestartsstod></ns5:Studiestodstypforteckning><ns5:Studiemedel>{arenden}</ns5:Studiemedel><ns5:Studiehjalp/><ns5:HemutrustningsLan/><ns5:Studiestartsstod/></Person></Personer></CSNSvar>",
        if studies || loan {
            "Uppgifter finns"
        } else {
            "Allt OK, inget att rapportera"
        },
        c.person.short_form(),
        if studies || loan {
            "          "
        } else {
            "Ej träff  "
        },
        c.person.century(),
        u8::from(studies),
        u8::from(loan),
    )
}

/// Försäkringskassan + Pensionsmyndigheten: the LEFI v9 answer (JSON).
pub fn fk_json(c: &Context) -> serde_json::Value {
    let mut r = Rng::for_person(Agency::Ssbtek(Slot::Fk), &c.person, "");
    let (fornamn, efternamn) = name(&c.person);
    let families: [(&str, &str, u64, u64); 6] = [
        ("ABB", "Allmänt barnbidrag", 1_250, 3_750),
        ("BOB", "Bostadsbidrag", 600, 5_000),
        ("SJP", "Dagersättning", 6_000, 22_000),
        ("FP", "Föräldrapenning", 4_000, 20_000),
        ("US", "Underhållsstöd", 1_673, 3_346),
        ("AS", "Aktivitetsstöd", 5_000, 15_000),
    ];
    let mut utbetalningar = Vec::new();
    let benefits = if !c.known {
        0
    } else if let Some(n) = c.records {
        // Up to six payments each.
        u64::from(n.div_ceil(6))
    } else if is_tolvan(&c.person) {
        2
    } else if r.chance(0.5) {
        r.range(1, 3)
    } else {
        0
    };
    for _ in 0..benefits {
        let (kod, text, lo, hi) = *r.pick(&families);
        let gross = r.range(lo, hi) as f64;
        let tax = if kod == "ABB" || kod == "BOB" || kod == "US" {
            0.0
        } else {
            (gross * 0.3).round()
        };
        for m in months(c.from, c.tom, 6) {
            let end = (m + Months::new(1)).pred_opt().unwrap_or(m);
            utbetalningar.push(serde_json::json!({
                "typ": 1,
                "foretag": 1001,
                "formansfamilj": { "id": format!("FK:{kod}"), "beskrivning": text },
                "datum": (m + chrono::Days::new(19)).to_string(),
                "period": { "fran": m.to_string(), "till": end.to_string() },
                "bruttobelopp": { "summa": gross, "valuta": "SEK" },
                "skattebelopp": { "summa": tax, "valuta": "SEK" },
                "avdragsbelopp": { "summa": tax, "valuta": "SEK" },
                "nettobelopp": { "summa": gross - tax, "valuta": "SEK" },
            }));
        }
    }
    let pension =
        c.known && (c.person.birth_date().is_some_and(|b| b.year() < 1960) || r.chance(0.05));
    let mut pm_utbetalningar = Vec::new();
    if pension {
        for m in months(c.from, c.tom, 6) {
            let gross = r.range(9_000, 18_000);
            pm_utbetalningar.push(serde_json::json!({
                "utbetalningsdatum": (m + chrono::Days::new(18)).to_string(),
                "utbetalningsperiod": m.format("%Y-%m").to_string(),
                "bruttobelopp": gross,
                "nettobelopp": gross * 75 / 100,
                "avdrag": [{ "belopp": gross / 4, "avdragstyp": { "kod": "PM:PS" } }],
                "utbetalningsrader": [{ "formansgrupp": "PM:AP", "belopp": gross, "utbetalningsforman": "PM:AL", "beloppstyp": "PM:GARP" }],
            }));
        }
    }
    serde_json::json!({
        "utlamnare": [
            { "utlamnare": { "kod": "FK", "namn": "Försäkringskassan" }, "tillstand": { "kod": "OK", "beskrivning": "Tillgänglig" } },
            { "utlamnare": { "kod": "PM", "namn": "Pensionsmyndigheten" }, "tillstand": { "kod": "OK", "beskrivning": "Tillgänglig" } }
        ],
        "formansinformation": {
            "generellPersoninformation": {
                "personnummer": c.person.as_str(),
                "namn": { "fornamn": fornamn, "efternamn": efternamn },
                "skyddad": false
            },
            "utbetalningsuppgift": utbetalningar
        },
        "utbetalningar": pm_utbetalningar
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context(person: &str) -> Context {
        Context {
            person: Personnummer::parse(person).unwrap(),
            from: NaiveDate::from_ymd_opt(2026, 8, 1).unwrap(),
            tom: NaiveDate::from_ymd_opt(2026, 10, 31).unwrap(),
            ingivare_orgnr: String::new(),
            ingivare_namn: String::new(),
            handlaggare: String::new(),
            referens: String::new(),
            syfte: String::new(),
            lagtext: String::new(),
            known: true,
            records: None,
        }
    }

    #[test]
    fn a_person_the_agency_does_not_know_gets_its_answer_with_nothing_in_it() {
        let unknown = Context {
            known: false,
            ..context("191212121212")
        };
        assert!(!tns(&unknown).contains("fordonsinnehav"));
        assert!(!miv(&unknown, "k").contains("svarCollection"));
        assert!(!so(&unknown).contains("<in:Arbetsloshetsersattning>"));
        assert!(!af(&unknown).contains("ArbetssokandeRegistrerad"));
        assert!(!skv_document(&unknown).contains("Kapitaluppgift"));
        assert!(!csn_document(&unknown).contains("<Arende>"));
        let fk = fk_json(&unknown);
        assert_eq!(
            fk["formansinformation"]["utbetalningsuppgift"],
            serde_json::json!([])
        );
        assert_eq!(fk["utbetalningar"], serde_json::json!([]));
        // Tolvan, known, has records everywhere.
        let known = context("191212121212");
        assert!(tns(&known).contains("fordonsinnehav"));
        assert!(csn_document(&known).contains("<Arende>"));
    }

    #[test]
    fn a_records_override_makes_every_agency_answer_large() {
        let large = Context {
            records: Some(600),
            ..context("190308189802")
        };
        assert_eq!(tns(&large).matches("<fordon:fordon>").count(), 600);
        assert_eq!(miv(&large, "k").matches("<svar>").count(), 600);
        assert_eq!(af(&large).matches("<er:Beslut>").count(), 600);
        assert_eq!(
            skv_document(&large).matches("<Kapitaluppgift>").count(),
            600
        );
        assert_eq!(csn_document(&large).matches("<Utbetalning>").count(), 600);
        assert_eq!(
            so(&large).matches("<in:Arbetsloshetsersattning>").count(),
            100
        );
        assert_eq!(
            fk_json(&large)["formansinformation"]["utbetalningsuppgift"]
                .as_array()
                .map_or(0, |a| a.len())
                % 100,
            0
        );
        // An unknown person stays unknown.
        let unknown = Context {
            known: false,
            ..large
        };
        assert!(!tns(&unknown).contains("fordonsinnehav"));
    }

    #[test]
    fn children_own_no_vehicles_and_tolvan_owns_two() {
        for child in ["201901012391", "201903312385", "202601622380"] {
            assert!(!tns(&context(child)).contains("<fordon:fordon>"), "{child}");
        }
        assert_eq!(
            tns(&context("191212121212"))
                .matches("<fordon:fordon>")
                .count(),
            2
        );
    }
}
