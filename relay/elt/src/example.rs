//! A valid example report, for test teams and the `shs elt example` command.

use chrono::{Datelike, NaiveDate, Weekday};

/// What the example is about.
pub struct ExampleReport<'a> {
    pub insured: &'a str,
    pub assistant: &'a str,
    pub anordnare: &'a str,
    /// Any day of the reported month.
    pub month: NaiveDate,
    pub id: uuid::Uuid,
}

impl ExampleReport<'_> {
    /// The report XML: weekdays 08.00–12.00 active time, 12.00–13.00 waiting time
    /// and 13.00–16.00 active time; Saturdays 20.00–24.00 on call.
    pub fn to_xml(&self) -> String {
        let first = self.month.with_day(1).unwrap_or(self.month);
        let last = crate::report::last_day_of_month(first);
        let assistant_tag = match relay_ident::Personnummer::parse(self.assistant).map(|p| p.kind())
        {
            Ok(relay_ident::PersonKind::Samordningsnummer) => "samordningsnummer",
            _ => "personnummer",
        };
        let mut rows = String::new();
        let row = |day: u32, from: &str, to: &str, kind: usize| {
            let flags = ["false", "false", "false"];
            let mut f = flags;
            if let Some(flag) = f.get_mut(kind) {
                *flag = "true";
            }
            format!(
                "<tr:rapportRad><tr:dag>{day:02}</tr:dag><tr:fromTid>{from}</tr:fromTid><tr:tomTid>{to}</tr:tomTid><tr:aktivTid>{}</tr:aktivTid><tr:vanteTid>{}</tr:vanteTid><tr:beredskapsTid>{}</tr:beredskapsTid></tr:rapportRad>",
                f[0], f[1], f[2]
            )
        };
        for day in 1..=last.day() {
            let Some(d) = first.with_day(day) else {
                continue;
            };
            match d.weekday() {
                Weekday::Sat => rows.push_str(&row(day, "20.00", "24.00", 2)),
                Weekday::Sun => {}
                _ => {
                    rows.push_str(&row(day, "8.00", "12.00", 0));
                    rows.push_str(&row(day, "12.00", "13.00", 1));
                    rows.push_str(&row(day, "13.00", "16.00", 0));
                }
            }
        }
        format!(
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<tr:Tidredovisning xmlns:tr=\"{ns}\"><tr:id>{id}</tr:id><tr:redovisningsmanad>{month}</tr:redovisningsmanad><tr:personSomHarAssistans><tr:personnummer>{insured}</tr:personnummer><tr:fornamn>Tolvan</tr:fornamn><tr:efternamn>Tolvansson</tr:efternamn></tr:personSomHarAssistans><tr:assistent><tr:{assistant_tag}>{assistant}</tr:{assistant_tag}><tr:fornamn>Assistent</tr:fornamn><tr:efternamn>Testsson</tr:efternamn><tr:kollektivavtal>true</tr:kollektivavtal></tr:assistent><tr:berakningsperiod><tr:fromDag>{first}</tr:fromDag><tr:tomDag>{last}</tr:tomDag></tr:berakningsperiod><tr:anstalldAvPersonSomHarAssistans>false</tr:anstalldAvPersonSomHarAssistans><tr:assistansanordnare><tr:anordnareNamn>Exempel Assistans AB</tr:anordnareNamn><tr:organisationsnummer>{anordnare}</tr:organisationsnummer><tr:kontaktperson>Kontakt Person</tr:kontaktperson><tr:telefonnummer>08-123 456 78</tr:telefonnummer><tr:assistentAnstalldAvAnordnare>true</tr:assistentAnstalldAvAnordnare><tr:assistentEgenForetagare>false</tr:assistentEgenForetagare></tr:assistansanordnare><tr:tidrapport>{rows}</tr:tidrapport><tr:datumForUnderskriftAnordnare>{last}</tr:datumForUnderskriftAnordnare><tr:telefonnummerAnordnare>08-123 456 78</tr:telefonnummerAnordnare><tr:datumForUnderskriftAssistent>{last}</tr:datumForUnderskriftAssistent><tr:telefonnummerAssistent>070-123 45 67</tr:telefonnummerAssistent></tr:Tidredovisning>\n",
            ns = crate::NS_TIDREDOVISNING,
            id = self.id,
            month = first.format("%Y-%m"),
            insured = self.insured,
            assistant = self.assistant,
            anordnare = self.anordnare,
        )
    }
}
