//! The reported month against the day a report arrives (seed 003): a report
//! for a month that has not begun, or with a row dated after the day it
//! arrives, is refused; one that arrives after its due date (the 5th of the
//! second month after the reported month) is accepted and marked late, with
//! the payment day that applies (payments are made on the 5th and the 20th).
//!
//! Days are calendar days in Sweden (`Europe/Stockholm`): the caller passes the
//! arrival day already converted.

use chrono::{Datelike, NaiveDate};

use crate::receipt::Late;
use crate::report::Report;

/// The day of the second month after the reported month by which the report
/// must have arrived.
pub const DUE_DAY: u32 = 5;
/// Försäkringskassan's payment days, in month order.
pub const PAYMENT_DAYS: [u32; 2] = [5, 20];

/// Why the month of a report does not fit the day it arrived. Texts name the
/// rule, never a value.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MonthError {
    #[error(
        "redovisningsmanad is a month that has not begun: a month is reported once it has begun, never in advance"
    )]
    FutureMonth,
    #[error(
        "rapportRad {row}: dag is after the day the report arrived: only time already worked is reported"
    )]
    RowAfterArrival { row: usize },
}

/// Checks `report` against the day it arrived; `Ok(Some(late))` when it
/// arrived after its due date.
pub fn check_arrival(report: &Report, arrival: NaiveDate) -> Result<Option<Late>, MonthError> {
    if report.month > first_of_month(arrival) {
        return Err(MonthError::FutureMonth);
    }
    for (i, row) in report.rows.iter().enumerate() {
        if report.month.with_day(row.day).is_some_and(|d| d > arrival) {
            return Err(MonthError::RowAfterArrival { row: i + 1 });
        }
    }
    Ok(lateness(report.month, arrival))
}

/// When a report for `month` arriving on `arrival` is late: its due date and
/// the first payment day after the arrival day.
pub fn lateness(month: NaiveDate, arrival: NaiveDate) -> Option<Late> {
    let due = due_date(month);
    (arrival > due).then(|| Late {
        due,
        payment_day: payment_day_after(arrival),
    })
}

/// The 5th of the second month after `month`.
pub fn due_date(month: NaiveDate) -> NaiveDate {
    let first = first_of_month(month);
    let second = add_months(first, 2);
    second.with_day(DUE_DAY).unwrap_or(second)
}

/// The first payment day strictly after `day`.
pub fn payment_day_after(day: NaiveDate) -> NaiveDate {
    let first = first_of_month(day);
    PAYMENT_DAYS
        .iter()
        .filter_map(|d| first.with_day(*d))
        .find(|d| *d > day)
        .unwrap_or_else(|| {
            let next = add_months(first, 1);
            next.with_day(PAYMENT_DAYS[0]).unwrap_or(next)
        })
}

fn first_of_month(day: NaiveDate) -> NaiveDate {
    day.with_day(1).unwrap_or(day)
}

fn add_months(first: NaiveDate, months: u32) -> NaiveDate {
    first
        .checked_add_months(chrono::Months::new(months))
        .unwrap_or(first)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::example::ExampleReport;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap()
    }

    fn report(month: NaiveDate) -> Report {
        let xml = ExampleReport {
            insured: "191212121212",
            assistant: "190308189802",
            anordnare: "5566778899",
            month,
            id: uuid::Uuid::new_v4(),
        }
        .to_xml();
        Report::parse(xml.as_bytes()).unwrap()
    }

    #[test]
    fn october_is_due_on_the_fifth_of_december() {
        assert_eq!(due_date(day(2026, 10, 1)), day(2026, 12, 5));
        assert_eq!(due_date(day(2026, 11, 1)), day(2027, 1, 5));
    }

    #[test]
    fn a_report_arriving_by_the_due_date_is_on_time() {
        let october = report(day(2026, 10, 1));
        assert_eq!(check_arrival(&october, day(2026, 11, 2)), Ok(None));
        assert_eq!(check_arrival(&october, day(2026, 12, 5)), Ok(None));
    }

    #[test]
    fn a_late_report_is_accepted_with_the_next_payment_day() {
        let october = report(day(2026, 10, 1));
        let late = check_arrival(&october, day(2026, 12, 6)).unwrap().unwrap();
        assert_eq!(late.due, day(2026, 12, 5));
        assert_eq!(late.payment_day, day(2026, 12, 20));
        let late = check_arrival(&october, day(2026, 12, 20)).unwrap().unwrap();
        assert_eq!(late.payment_day, day(2027, 1, 5), "strictly after arrival");
        let late = check_arrival(&october, day(2027, 1, 5)).unwrap().unwrap();
        assert_eq!(late.payment_day, day(2027, 1, 20));
    }

    #[test]
    fn a_future_month_is_refused() {
        let december = report(day(2026, 12, 1));
        assert_eq!(
            check_arrival(&december, day(2026, 11, 30)),
            Err(MonthError::FutureMonth)
        );
    }

    #[test]
    fn a_row_dated_after_the_arrival_day_is_refused() {
        // The example has rows on every weekday of the month; 2026-11-02 is a
        // Monday, so a report arriving that day has rows after it.
        let november = report(day(2026, 11, 1));
        assert!(matches!(
            check_arrival(&november, day(2026, 11, 2)),
            Err(MonthError::RowAfterArrival { .. })
        ));
        assert_eq!(check_arrival(&november, day(2026, 11, 30)), Ok(None));
    }
}
