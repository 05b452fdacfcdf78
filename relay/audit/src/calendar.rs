//! Opening hours: Monday to Friday 08:00-17:00 Europe/Stockholm, except Swedish
//! public holidays and the de facto holidays. Computed for any year, never a
//! table per year.
//!
//! Holidays (`helgdagar`, lagen (1989:253) om allmänna helgdagar): nyårsdagen,
//! trettondedag jul, långfredagen, påskdagen, annandag påsk, första maj, Kristi
//! himmelsfärdsdag, pingstdagen, nationaldagen, midsommardagen, alla helgons dag,
//! juldagen, annandag jul. Easter Sunday comes from the Gregorian computus
//! (the anonymous algorithm of Meeus/Jones/Butcher).
//!
//! De facto holidays, treated as holidays: **midsommarafton, julafton and
//! nyårsafton**. They are not in the law, but the Working Hours Act and nearly
//! every collective agreement treat them like Sundays, and no agency expects a
//! service desk to be open on them. Påskafton and pingstafton always fall on a
//! Saturday and so change nothing. Half days (trettondagsafton, skärtorsdagen,
//! valborgsmässoafton, the day before Kristi himmelsfärd, allhelgonaafton) are
//! ordinary opening days with full opening hours.
//!
//! The opening interval is half-open: 08:00:00 is inside, 17:00:00 is not. Times
//! are converted with the real Stockholm offset, so the same local hours hold on
//! both sides of the changes to and from summer time (last Sunday of March and
//! of October).

use chrono::{DateTime, Datelike, Days, NaiveDate, NaiveTime, Timelike, Utc, Weekday};
use chrono_tz::Europe::Stockholm;

/// The first minute of the day that is open, local time.
pub const OPENS: u32 = 8 * 60;
/// The first minute of the day that is closed again, local time.
pub const CLOSES: u32 = 17 * 60;
/// Minutes of opening hours in one opening day.
pub const MINUTES_PER_DAY: u32 = CLOSES - OPENS;

/// Easter Sunday in the Gregorian calendar.
pub fn easter_sunday(year: i32) -> NaiveDate {
    let a = year % 19;
    let b = year / 100;
    let c = year % 100;
    let d = b / 4;
    let e = b % 4;
    let f = (b + 8) / 25;
    let g = (b - f + 1) / 3;
    let h = (19 * a + b - d - g + 15) % 30;
    let i = c / 4;
    let k = c % 4;
    let l = (32 + 2 * e + 2 * i - h - k) % 7;
    let m = (a + 11 * h + 22 * l) / 451;
    let month = (h + l - 7 * m + 114) / 31;
    let day = (h + l - 7 * m + 114) % 31 + 1;
    NaiveDate::from_ymd_opt(year, month as u32, day as u32).expect("the computus gives a date")
}

/// A day on which the service is closed although it may be a weekday.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Holiday {
    pub date: NaiveDate,
    pub name: &'static str,
    /// Not a public holiday in law, treated as one (see the module docs).
    pub de_facto: bool,
}

/// Every holiday of `year` that closes the service, in date order, including
/// those that fall on a weekend. Two can fall on one date (Kristi himmelsfärdsdag
/// on första maj in 2008; pingstdagen on nationaldagen in 2049); both are listed.
pub fn holidays(year: i32) -> Vec<Holiday> {
    let ymd = |m, d| NaiveDate::from_ymd_opt(year, m, d).expect("a fixed holiday exists");
    let easter = easter_sunday(year);
    let plus = |n: i64| {
        if n >= 0 {
            easter + Days::new(n as u64)
        } else {
            easter - Days::new(n.unsigned_abs())
        }
    };
    // The first `weekday` on or after `from`.
    let first = |from: NaiveDate, weekday: Weekday| {
        let ahead =
            (7 + weekday.num_days_from_monday() - from.weekday().num_days_from_monday()) % 7;
        from + Days::new(u64::from(ahead))
    };
    let law = |date, name| Holiday {
        date,
        name,
        de_facto: false,
    };
    let de_facto = |date, name| Holiday {
        date,
        name,
        de_facto: true,
    };
    let mut days = vec![
        law(ymd(1, 1), "nyårsdagen"),
        law(ymd(1, 6), "trettondedag jul"),
        law(plus(-2), "långfredagen"),
        law(easter, "påskdagen"),
        law(plus(1), "annandag påsk"),
        law(ymd(5, 1), "första maj"),
        law(plus(39), "Kristi himmelsfärdsdag"),
        law(plus(49), "pingstdagen"),
        law(ymd(6, 6), "nationaldagen"),
        de_facto(first(ymd(6, 19), Weekday::Fri), "midsommarafton"),
        law(first(ymd(6, 20), Weekday::Sat), "midsommardagen"),
        law(first(ymd(10, 31), Weekday::Sat), "alla helgons dag"),
        de_facto(ymd(12, 24), "julafton"),
        law(ymd(12, 25), "juldagen"),
        law(ymd(12, 26), "annandag jul"),
        de_facto(ymd(12, 31), "nyårsafton"),
    ];
    days.sort_by_key(|h| h.date);
    days
}

/// The holiday on `date`, if any.
pub fn holiday(date: NaiveDate) -> Option<Holiday> {
    holidays(date.year()).into_iter().find(|h| h.date == date)
}

/// Monday to Friday and not a holiday.
pub fn is_opening_day(date: NaiveDate) -> bool {
    !matches!(date.weekday(), Weekday::Sat | Weekday::Sun) && holiday(date).is_none()
}

/// The opening days of a month, in order.
pub fn opening_days(year: i32, month: u32) -> Vec<NaiveDate> {
    let Some(first) = NaiveDate::from_ymd_opt(year, month, 1) else {
        return Vec::new();
    };
    let closed: Vec<NaiveDate> = holidays(year).into_iter().map(|h| h.date).collect();
    first
        .iter_days()
        .take_while(|d| d.month() == month)
        .filter(|d| !matches!(d.weekday(), Weekday::Sat | Weekday::Sun) && !closed.contains(d))
        .collect()
}

/// The Stockholm local date and minute of the day of an instant.
pub fn local_day_and_minute(t: DateTime<Utc>) -> (NaiveDate, u32) {
    let local = t.with_timezone(&Stockholm);
    (local.date_naive(), local.hour() * 60 + local.minute())
}

/// Whether `t` falls within opening hours.
pub fn is_open(t: DateTime<Utc>) -> bool {
    let (day, minute) = local_day_and_minute(t);
    (OPENS..CLOSES).contains(&minute) && is_opening_day(day)
}

/// The UTC instant of a Stockholm local date and time. For a local time that
/// does not exist (skipped at the change to summer time) the later offset is
/// used; for one that occurs twice, the first.
pub fn stockholm(date: NaiveDate, time: NaiveTime) -> DateTime<Utc> {
    use chrono::TimeZone;
    use chrono::offset::LocalResult;
    match Stockholm.from_local_datetime(&date.and_time(time)) {
        LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => t.with_timezone(&Utc),
        LocalResult::None => {
            let later = date.and_time(time) + chrono::Duration::hours(1);
            Stockholm
                .from_local_datetime(&later)
                .earliest()
                .map_or_else(|| date.and_time(time).and_utc(), |t| t.with_timezone(&Utc))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    fn list(year: i32) -> Vec<(String, &'static str)> {
        holidays(year)
            .into_iter()
            .map(|h| (h.date.to_string(), h.name))
            .collect()
    }

    fn expected(rows: &[(&str, &'static str)]) -> Vec<(String, &'static str)> {
        rows.iter().map(|(d, n)| (d.to_string(), *n)).collect()
    }

    #[test]
    fn easter_sunday_for_known_years() {
        assert_eq!(easter_sunday(2025), d(2025, 4, 20));
        assert_eq!(easter_sunday(2026), d(2026, 4, 5));
        assert_eq!(easter_sunday(2027), d(2027, 3, 28));
        // The extremes of the Gregorian range.
        assert_eq!(easter_sunday(2285), d(2285, 3, 22));
        assert_eq!(easter_sunday(2038), d(2038, 4, 25));
        assert_eq!(easter_sunday(2024), d(2024, 3, 31));
    }

    #[test]
    fn the_holidays_of_2025() {
        assert_eq!(
            list(2025),
            expected(&[
                ("2025-01-01", "nyårsdagen"),
                ("2025-01-06", "trettondedag jul"),
                ("2025-04-18", "långfredagen"),
                ("2025-04-20", "påskdagen"),
                ("2025-04-21", "annandag påsk"),
                ("2025-05-01", "första maj"),
                ("2025-05-29", "Kristi himmelsfärdsdag"),
                ("2025-06-06", "nationaldagen"),
                ("2025-06-08", "pingstdagen"),
                ("2025-06-20", "midsommarafton"),
                ("2025-06-21", "midsommardagen"),
                ("2025-11-01", "alla helgons dag"),
                ("2025-12-24", "julafton"),
                ("2025-12-25", "juldagen"),
                ("2025-12-26", "annandag jul"),
                ("2025-12-31", "nyårsafton"),
            ])
        );
    }

    #[test]
    fn the_holidays_of_2026() {
        assert_eq!(
            list(2026),
            expected(&[
                ("2026-01-01", "nyårsdagen"),
                ("2026-01-06", "trettondedag jul"),
                ("2026-04-03", "långfredagen"),
                ("2026-04-05", "påskdagen"),
                ("2026-04-06", "annandag påsk"),
                ("2026-05-01", "första maj"),
                ("2026-05-14", "Kristi himmelsfärdsdag"),
                ("2026-05-24", "pingstdagen"),
                ("2026-06-06", "nationaldagen"),
                ("2026-06-19", "midsommarafton"),
                ("2026-06-20", "midsommardagen"),
                ("2026-10-31", "alla helgons dag"),
                ("2026-12-24", "julafton"),
                ("2026-12-25", "juldagen"),
                ("2026-12-26", "annandag jul"),
                ("2026-12-31", "nyårsafton"),
            ])
        );
    }

    #[test]
    fn the_holidays_of_2027() {
        assert_eq!(
            list(2027),
            expected(&[
                ("2027-01-01", "nyårsdagen"),
                ("2027-01-06", "trettondedag jul"),
                ("2027-03-26", "långfredagen"),
                ("2027-03-28", "påskdagen"),
                ("2027-03-29", "annandag påsk"),
                ("2027-05-01", "första maj"),
                ("2027-05-06", "Kristi himmelsfärdsdag"),
                ("2027-05-16", "pingstdagen"),
                ("2027-06-06", "nationaldagen"),
                ("2027-06-25", "midsommarafton"),
                ("2027-06-26", "midsommardagen"),
                ("2027-11-06", "alla helgons dag"),
                ("2027-12-24", "julafton"),
                ("2027-12-25", "juldagen"),
                ("2027-12-26", "annandag jul"),
                ("2027-12-31", "nyårsafton"),
            ])
        );
    }

    proptest::proptest! {
        #[test]
        fn moving_holidays_keep_their_weekdays_in_any_year(year in 1900i32..2200) {
            let easter = easter_sunday(year);
            proptest::prop_assert_eq!(easter.weekday(), Weekday::Sun);
            proptest::prop_assert!(easter >= d(year, 3, 22) && easter <= d(year, 4, 25));
            let days = holidays(year);
            proptest::prop_assert_eq!(days.len(), 16);
            let on = |name: &str| days.iter().find(|h| h.name == name).unwrap().date;
            proptest::prop_assert_eq!(on("långfredagen").weekday(), Weekday::Fri);
            proptest::prop_assert_eq!(on("annandag påsk").weekday(), Weekday::Mon);
            proptest::prop_assert_eq!(on("Kristi himmelsfärdsdag").weekday(), Weekday::Thu);
            proptest::prop_assert_eq!(on("pingstdagen").weekday(), Weekday::Sun);
            let eve = on("midsommarafton");
            proptest::prop_assert_eq!(eve.weekday(), Weekday::Fri);
            proptest::prop_assert!(eve >= d(year, 6, 19) && eve <= d(year, 6, 25));
            proptest::prop_assert_eq!(on("midsommardagen"), eve.succ_opt().unwrap());
            let alla = on("alla helgons dag");
            proptest::prop_assert_eq!(alla.weekday(), Weekday::Sat);
            proptest::prop_assert!(alla >= d(year, 10, 31) && alla <= d(year, 11, 6));
            // In order; two can share a date (Kristi himmelsfärd on första maj in 2008).
            proptest::prop_assert!(days.windows(2).all(|w| w[0].date <= w[1].date));
        }
    }

    #[test]
    fn only_midsommarafton_julafton_and_nyarsafton_are_de_facto() {
        let de_facto: Vec<&str> = holidays(2026)
            .into_iter()
            .filter(|h| h.de_facto)
            .map(|h| h.name)
            .collect();
        assert_eq!(de_facto, ["midsommarafton", "julafton", "nyårsafton"]);
    }

    #[test]
    fn weekends_and_holidays_are_not_opening_days() {
        assert_eq!(d(2026, 11, 22).weekday(), Weekday::Sun);
        assert!(!is_opening_day(d(2026, 11, 22)));
        assert!(!is_opening_day(d(2026, 11, 21)));
        assert!(is_opening_day(d(2026, 11, 23)));
        assert!(!is_opening_day(d(2026, 6, 19)), "midsommarafton");
        assert!(!is_opening_day(d(2026, 12, 24)), "julafton");
        assert!(!is_opening_day(d(2026, 5, 14)), "Kristi himmelsfärd");
        assert!(is_opening_day(d(2026, 5, 13)), "the half day before it");
        assert!(is_opening_day(d(2026, 4, 30)), "valborgsmässoafton");
    }

    #[test]
    fn opening_days_of_months() {
        // November 2026: 21 weekdays, alla helgons dag falls on a Saturday.
        assert_eq!(opening_days(2026, 11).len(), 21);
        // December 2026: 23 weekdays minus julafton (Thu), juldagen (Fri), nyårsafton (Thu).
        assert_eq!(opening_days(2026, 12).len(), 20);
        // April 2026: 22 weekdays minus långfredagen and annandag påsk.
        assert_eq!(opening_days(2026, 4).len(), 20);
        assert!(opening_days(2026, 13).is_empty());
    }

    #[test]
    fn opening_hours_follow_stockholm_time_across_both_dst_changes() {
        let utc = |y, m, d, h, min| Utc.with_ymd_and_hms(y, m, d, h, min, 0).unwrap();
        // Summer time begins Sunday 2026-03-29. Friday before: UTC+1.
        assert!(!is_open(utc(2026, 3, 27, 6, 59)), "07:59 CET");
        assert!(is_open(utc(2026, 3, 27, 7, 0)), "08:00 CET");
        assert!(is_open(utc(2026, 3, 27, 15, 59)), "16:59 CET");
        assert!(!is_open(utc(2026, 3, 27, 16, 0)), "17:00 CET");
        // Monday after: UTC+2.
        assert!(!is_open(utc(2026, 3, 30, 5, 59)), "07:59 CEST");
        assert!(is_open(utc(2026, 3, 30, 6, 0)), "08:00 CEST");
        assert!(is_open(utc(2026, 3, 30, 14, 59)), "16:59 CEST");
        assert!(!is_open(utc(2026, 3, 30, 15, 0)), "17:00 CEST");
        // Summer time ends Sunday 2026-10-25. Friday before: UTC+2; Monday after: UTC+1.
        assert!(is_open(utc(2026, 10, 23, 6, 30)), "08:30 CEST");
        assert!(!is_open(utc(2026, 10, 23, 15, 30)), "17:30 CEST");
        assert!(!is_open(utc(2026, 10, 26, 6, 30)), "07:30 CET");
        assert!(is_open(utc(2026, 10, 26, 15, 30)), "16:30 CET");
        assert_eq!(
            stockholm(d(2026, 3, 30), NaiveTime::from_hms_opt(8, 0, 0).unwrap()),
            utc(2026, 3, 30, 6, 0)
        );
        assert_eq!(
            stockholm(d(2026, 10, 26), NaiveTime::from_hms_opt(8, 0, 0).unwrap()),
            utc(2026, 10, 26, 7, 0)
        );
    }
}
