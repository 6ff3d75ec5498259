//! FHIR date, dateTime and instant values as comparable instants and ranges, UTC offsets,
//! and the whole-day shift used to keep fixture dates relative to today.

use chrono::{DateTime, Datelike, Duration, FixedOffset, NaiveDate, NaiveDateTime, TimeZone, Utc};
use regex::Regex;
use serde_json::Value;
use std::sync::LazyLock;

/// A half-open range of UTC seconds `[start, end)` that a FHIR date value covers: `2024`
/// covers the whole year, `2024-03-05` the whole day, an instant one second.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateRange {
    pub start: i64,
    pub end: i64,
}

// Cannot fail: a regex literal (its tests compile it).
#[allow(clippy::expect_used)]
static FULL_DATE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^(\d{4})-(\d{2})-(\d{2})(T\d{2}:\d{2}(?::\d{2}(?:\.\d+)?)?(?:Z|[+-]\d{2}:\d{2})?)?$")
        .expect("a valid regex literal")
});

/// `UTC`, `Z` or `±HH:MM`.
pub fn parse_utc_offset(text: &str) -> Option<FixedOffset> {
    let t = text.trim();
    if t.eq_ignore_ascii_case("utc") || t == "Z" {
        return FixedOffset::east_opt(0);
    }
    let sign = match t.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let (h, m) = t[1..].split_once(':')?;
    let (h, m): (i32, i32) = (h.parse().ok()?, m.parse().ok()?);
    if h > 14 || m > 59 || t.len() != 6 {
        return None;
    }
    FixedOffset::east_opt(sign * (h * 3600 + m * 60))
}

/// Parses a FHIR date (`YYYY`, `YYYY-MM`, `YYYY-MM-DD`), dateTime or instant into the range
/// it covers. Values without a zone are read in `zone`.
pub fn parse_range(text: &str, zone: FixedOffset) -> Option<DateRange> {
    let t = text.trim();
    let at = |d: NaiveDate| zone.from_local_datetime(&d.and_hms_opt(0, 0, 0)?).single().map(|x| x.timestamp());
    match t.len() {
        4 => {
            let y: i32 = t.parse().ok()?;
            Some(DateRange {
                start: at(NaiveDate::from_ymd_opt(y, 1, 1)?)?,
                end: at(NaiveDate::from_ymd_opt(y + 1, 1, 1)?)?,
            })
        }
        7 => {
            let (y, m) = t.split_once('-')?;
            let (y, m): (i32, u32) = (y.parse().ok()?, m.parse().ok()?);
            let first = NaiveDate::from_ymd_opt(y, m, 1)?;
            let next =
                if m == 12 { NaiveDate::from_ymd_opt(y + 1, 1, 1)? } else { NaiveDate::from_ymd_opt(y, m + 1, 1)? };
            Some(DateRange { start: at(first)?, end: at(next)? })
        }
        10 => {
            let d = NaiveDate::parse_from_str(t, "%Y-%m-%d").ok()?;
            Some(DateRange { start: at(d)?, end: at(d.succ_opt()?)? })
        }
        _ => {
            let instant = if let Ok(dt) = DateTime::parse_from_rfc3339(t) {
                dt.timestamp()
            } else {
                let naive = NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M:%S%.f")
                    .or_else(|_| NaiveDateTime::parse_from_str(t, "%Y-%m-%dT%H:%M"))
                    .ok()?;
                zone.from_local_datetime(&naive).single()?.timestamp()
            };
            Some(DateRange { start: instant, end: instant + 1 })
        }
    }
}

/// The range a resource element covers: a date string, or a Period (`start`/`end`, either
/// open).
pub fn value_range(v: &Value, zone: FixedOffset) -> Option<DateRange> {
    match v {
        Value::String(s) => parse_range(s, zone),
        Value::Object(o) => {
            let start = o.get("start").and_then(Value::as_str).and_then(|s| parse_range(s, zone));
            let end = o.get("end").and_then(Value::as_str).and_then(|s| parse_range(s, zone));
            match (start, end) {
                (None, None) => None,
                (s, e) => {
                    Some(DateRange { start: s.map_or(i64::MIN, |r| r.start), end: e.map_or(i64::MAX, |r| r.end) })
                }
            }
        }
        _ => None,
    }
}

/// Whole days from `anchor` to today in `zone`.
pub fn days_since(anchor: NaiveDate, now: DateTime<Utc>, zone: FixedOffset) -> i64 {
    (now.with_timezone(&zone).date_naive() - anchor).num_days()
}

/// Shifts every full date (`YYYY-MM-DD…`) string inside `value` by `days`, keeping the
/// time and zone parts exactly as written. Partial dates (`YYYY`, `YYYY-MM`) are kept.
pub fn shift_dates(value: &mut Value, days: i64) {
    if days == 0 {
        return;
    }
    match value {
        Value::String(s) => {
            if let Some(shifted) = shift_date_text(s, days) {
                *s = shifted;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|v| shift_dates(v, days)),
        Value::Object(map) => map.values_mut().for_each(|v| shift_dates(v, days)),
        _ => {}
    }
}

fn shift_date_text(s: &str, days: i64) -> Option<String> {
    let caps = FULL_DATE.captures(s)?;
    let date = NaiveDate::from_ymd_opt(caps[1].parse().ok()?, caps[2].parse().ok()?, caps[3].parse().ok()?)?;
    let shifted = date.checked_add_signed(Duration::days(days))?;
    let rest = caps.get(4).map_or("", |m| m.as_str());
    Some(format!("{:04}-{:02}-{:02}{rest}", shifted.year(), shifted.month(), shifted.day()))
}

/// Age in whole years on `today` for someone born on `birth` (birthdays exactly right,
/// 29 February birthdays count on 1 March in common years).
pub fn age_on(birth: NaiveDate, today: NaiveDate) -> i32 {
    let mut age = today.year() - birth.year();
    if (today.month(), today.day()) < (birth.month(), birth.day()) {
        age -= 1;
    }
    age
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn utc() -> FixedOffset {
        FixedOffset::east_opt(0).unwrap()
    }

    #[test]
    fn ranges_follow_precision() {
        let y = parse_range("2024", utc()).unwrap();
        assert_eq!(y.end - y.start, 366 * 86400);
        let d = parse_range("2024-03-05", utc()).unwrap();
        assert_eq!(d.end - d.start, 86400);
        let i = parse_range("2024-03-05T10:00:00+02:00", utc()).unwrap();
        assert_eq!(i.start, d.start + 8 * 3600);
        assert!(parse_range("2024-13-01", utc()).is_none());
        assert!(parse_range("yesterday", utc()).is_none());
    }

    #[test]
    fn shift_keeps_time_zone_and_partial_dates() {
        let mut v = json!({"a": "2025-12-31", "b": ["2025-12-31T08:15:00-05:00"], "c": "2025", "d": "2025-12", "e": "ACC-2025-12-31x"});
        shift_dates(&mut v, 2);
        assert_eq!(
            v,
            json!({"a": "2026-01-02", "b": ["2026-01-02T08:15:00-05:00"], "c": "2025", "d": "2025-12", "e": "ACC-2025-12-31x"})
        );
    }

    #[test]
    fn birthdays_are_exact() {
        let birth = NaiveDate::from_ymd_opt(2008, 3, 10).unwrap();
        assert_eq!(age_on(birth, NaiveDate::from_ymd_opt(2026, 3, 9).unwrap()), 17);
        assert_eq!(age_on(birth, NaiveDate::from_ymd_opt(2026, 3, 10).unwrap()), 18);
        let leap = NaiveDate::from_ymd_opt(2008, 2, 29).unwrap();
        assert_eq!(age_on(leap, NaiveDate::from_ymd_opt(2026, 2, 28).unwrap()), 17);
        assert_eq!(age_on(leap, NaiveDate::from_ymd_opt(2026, 3, 1).unwrap()), 18);
    }

    #[test]
    fn offsets_parse() {
        assert_eq!(parse_utc_offset("-08:00").unwrap().local_minus_utc(), -8 * 3600);
        assert!(parse_utc_offset("America/Chicago").is_none());
        assert!(parse_utc_offset("+8").is_none());
    }
}
