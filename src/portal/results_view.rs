//! The "Test results" section of a released record: each Observation as a row (value,
//! unit, reference range, interpretation flags, where it came from), each DiagnosticReport
//! with its conclusion and the results it groups, and a trend for every test with two or
//! more numeric values. It only arranges released resources; it never fetches or decides.

use super::fhir_text::{self as fx, Lookup};
use super::trend_chart::{self, Point};
use serde::Serialize;
use serde_json::Value;

/// One result.
#[derive(Debug, Clone, Serialize)]
pub struct ResultRow {
    pub name: String,
    pub value: String,
    pub range: Option<String>,
    /// Interpretation in words ("High", "Critically high" …).
    pub flags: Vec<String>,
    pub abnormal: bool,
    pub category: Option<String>,
    pub date: Option<String>,
    #[serde(skip)]
    pub sort: String,
    pub sources: Vec<String>,
    /// `Observation/{id}` (a correction request names it).
    pub key: String,
}

/// One report.
#[derive(Debug, Clone, Serialize)]
pub struct ReportRow {
    pub name: String,
    pub category: Option<String>,
    pub status: Option<String>,
    pub conclusion: Option<String>,
    /// Names of the (released) results it groups.
    pub results: Vec<String>,
    pub date: Option<String>,
    #[serde(skip)]
    pub sort: String,
    pub sources: Vec<String>,
    /// `DiagnosticReport/{id}`, to find its documents (and for a correction request).
    pub key: String,
    /// Links to its presented forms the gateway serves (a PDF report …).
    pub files: Vec<super::documents_view::DocumentLink>,
}

/// A test repeated with numeric values, drawn as a chart.
#[derive(Debug, Clone, Serialize)]
pub struct Trend {
    pub name: String,
    pub unit: String,
    /// The chart (SVG markup built and escaped by [`trend_chart`]).
    pub svg: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ResultsView {
    pub trends: Vec<Trend>,
    pub reports: Vec<ReportRow>,
    pub results: Vec<ResultRow>,
}

impl ResultsView {
    pub fn len(&self) -> usize {
        self.reports.len() + self.results.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn effective(r: &Value) -> Option<String> {
    fx::text(r, "effectiveDateTime")
        .or_else(|| r.pointer("/effectivePeriod/start").and_then(Value::as_str).map(str::to_string))
        .or_else(|| fx::text(r, "effectiveInstant"))
        .or_else(|| fx::text(r, "issued"))
}

/// An Observation's value (or its components' values) in words.
pub fn value_of(o: &Value) -> String {
    fn one(v: &Value) -> Option<String> {
        if let Some(q) = v.get("valueQuantity") {
            return fx::quantity(q);
        }
        if let Some(cc) = v.get("valueCodeableConcept") {
            return fx::concept(Some(cc));
        }
        if let Some(s) = v.get("valueString").and_then(Value::as_str) {
            return Some(s.to_string());
        }
        if let Some(b) = v.get("valueBoolean").and_then(Value::as_bool) {
            return Some(crate::i18n::t(if b { "value-yes" } else { "value-no" }));
        }
        if let Some(n) = v.get("valueInteger").and_then(Value::as_i64) {
            return Some(n.to_string());
        }
        if let Some(r) = v.get("valueRange") {
            let low = r.get("low").and_then(fx::quantity);
            let high = r.get("high").and_then(fx::quantity);
            return match (low, high) {
                (Some(l), Some(h)) => Some(crate::i18n::tr("range-between", &[("low", l.into()), ("high", h.into())])),
                (l, h) => l.or(h),
            };
        }
        v.get("dataAbsentReason").map(|_| crate::i18n::t("value-no-value"))
    }
    if let Some(v) = one(o) {
        return v;
    }
    let parts: Vec<String> = o
        .get("component")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|c| Some(format!("{}: {}", fx::concept(c.get("code"))?, one(c)?)))
        .collect();
    if parts.is_empty() {
        crate::i18n::t("value-see-report")
    } else {
        parts.join("; ")
    }
}

/// The first reference range in words ("3.5 to 5.1 mmol/L", "up to 5.6 %", "at least 40 mg/dL").
pub fn range_of(o: &Value) -> Option<String> {
    let range = o.get("referenceRange")?.get(0)?;
    if let Some(t) = fx::text(range, "text") {
        return Some(t);
    }
    let number = |k: &str| range.get(k).and_then(|q| q.get("value")).and_then(Value::as_f64);
    let unit = ["low", "high"]
        .iter()
        .find_map(|k| range.get(*k).and_then(|q| q.get("unit").or_else(|| q.get("code"))).and_then(Value::as_str))
        .unwrap_or("");
    let words = match (number("low"), number("high")) {
        (Some(l), Some(h)) => {
            crate::i18n::tr("range-between", &[("low", fx::number(l).into()), ("high", fx::number(h).into())])
        }
        (None, Some(h)) => crate::i18n::tr("range-up-to", &[("high", fx::number(h).into())]),
        (Some(l), None) => crate::i18n::tr("range-at-least", &[("low", fx::number(l).into())]),
        (None, None) => return None,
    };
    Some(format!("{words} {unit}").trim().to_string())
}

fn range_bounds(o: &Value) -> (Option<f64>, Option<f64>) {
    let bound = |k: &str| o.pointer(&format!("/referenceRange/0/{k}/value")).and_then(Value::as_f64);
    (bound("low"), bound("high"))
}

/// Interpretation flags in words, and whether any says the result is not normal.
pub fn flags_of(o: &Value) -> (Vec<String>, bool) {
    let mut words = Vec::new();
    let mut abnormal = false;
    for cc in o.get("interpretation").and_then(Value::as_array).into_iter().flatten() {
        let code = cc.pointer("/coding/0/code").and_then(Value::as_str).unwrap_or("");
        let word = match code {
            "H" => crate::i18n::t("value-high"),
            "HH" | "HU" => crate::i18n::t("value-critically-high"),
            "L" => crate::i18n::t("value-low"),
            "LL" | "LU" => crate::i18n::t("value-critically-low"),
            "A" => crate::i18n::t("value-abnormal"),
            "AA" => crate::i18n::t("value-critically-abnormal"),
            "N" => crate::i18n::t("value-normal"),
            "POS" => crate::i18n::t("value-positive"),
            "NEG" => crate::i18n::t("value-negative"),
            "DET" => crate::i18n::t("value-detected"),
            "ND" => crate::i18n::t("value-not-detected"),
            _ => match fx::concept(Some(cc)) {
                Some(w) => w,
                None => continue,
            },
        };
        abnormal |= !matches!(code, "N" | "NEG" | "ND" | "");
        words.push(word);
    }
    (words, abnormal)
}

fn status_words(status: Option<&str>) -> Option<String> {
    Some(crate::i18n::t(match status? {
        "final" => "status-final",
        "amended" | "corrected" => "status-corrected",
        "preliminary" | "partial" | "registered" => "status-preliminary",
        "cancelled" => "status-cancelled",
        "entered-in-error" => "status-entered-in-error",
        other => return Some(other.to_string()),
    }))
}

/// The numeric values of one test (first code, one unit), gathered for a trend.
struct Series {
    key: String,
    name: String,
    unit: String,
    range: (Option<f64>, Option<f64>),
    /// (effective time as written, point).
    points: Vec<(String, Point)>,
}

/// The results section of a released record.
pub fn results(resources: &[Value], lookup: &Lookup<'_>) -> ResultsView {
    let mut view = ResultsView::default();
    let mut series: Vec<Series> = Vec::new();
    for r in resources {
        match r.get("resourceType").and_then(Value::as_str) {
            Some("Observation") => {
                let name = fx::concept(r.get("code")).unwrap_or_else(|| crate::i18n::t("value-result"));
                let when = effective(r);
                let (flags, abnormal) = flags_of(r);
                view.results.push(ResultRow {
                    name: name.clone(),
                    value: value_of(r),
                    range: range_of(r),
                    flags,
                    abnormal,
                    category: fx::first_concept(r.get("category")),
                    date: when.as_deref().map(fx::date),
                    sort: when.clone().unwrap_or_default(),
                    sources: fx::sources(r),
                    key: format!("Observation/{}", fx::text(r, "id").unwrap_or_default()),
                });
                // Trends: numeric values of the same test (first code) in the same unit.
                let (Some(q), Some(when)) = (r.get("valueQuantity"), when) else { continue };
                let Some(value) = q.get("value").and_then(Value::as_f64) else { continue };
                let Some(key) = fx::codes(r.get("code")).into_iter().next() else { continue };
                let unit = q.get("unit").or_else(|| q.get("code")).and_then(Value::as_str).unwrap_or("").to_string();
                let point = Point {
                    label: fx::instant(&when)
                        .map(|d| crate::i18n::short_month(crate::i18n::current(), d.date_naive()))
                        .unwrap_or_default(),
                    date: fx::date(&when),
                    value,
                };
                match series.iter_mut().find(|s| s.key == key && s.unit == unit) {
                    Some(s) => s.points.push((when, point)),
                    None => {
                        series.push(Series { key, name, unit, range: range_bounds(r), points: vec![(when, point)] });
                    }
                }
            }
            Some("DiagnosticReport") => {
                let when = effective(r);
                view.reports.push(ReportRow {
                    name: fx::concept(r.get("code")).unwrap_or_else(|| crate::i18n::t("value-report")),
                    category: fx::first_concept(r.get("category")),
                    status: status_words(r.get("status").and_then(Value::as_str)),
                    conclusion: fx::text(r, "conclusion").or_else(|| fx::first_concept(r.get("conclusionCode"))),
                    results: r
                        .get("result")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .filter_map(|x| lookup.resolve(x))
                        .filter_map(|o| Some(format!("{}: {}", fx::concept(o.get("code"))?, value_of(o))))
                        .collect(),
                    date: when.as_deref().map(fx::date),
                    sort: when.unwrap_or_default(),
                    sources: fx::sources(r),
                    key: format!("DiagnosticReport/{}", fx::text(r, "id").unwrap_or_default()),
                    files: Vec::new(),
                });
            }
            _ => {}
        }
    }
    view.results.sort_by(|a, b| b.sort.cmp(&a.sort).then(a.name.cmp(&b.name)));
    view.reports.sort_by(|a, b| b.sort.cmp(&a.sort).then(a.name.cmp(&b.name)));
    for (n, mut s) in series.into_iter().enumerate() {
        s.points.sort_by_key(|(when, _)| fx::instant(when));
        let points: Vec<Point> = s.points.into_iter().map(|(_, p)| p).collect();
        if let Some(svg) = trend_chart::svg(&format!("trend-{n}"), &s.name, &s.unit, &points, s.range) {
            view.trends.push(Trend { name: s.name, unit: s.unit, svg });
        }
    }
    view
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn a1c(id: &str, when: &str, v: f64) -> Value {
        json!({"resourceType": "Observation", "id": id, "code": {"coding": [{"system": "http://loinc.org", "code": "4548-4"}], "text": "Hemoglobin A1c"},
               "category": [{"coding": [{"code": "laboratory", "display": "Laboratory"}]}],
               "effectiveDateTime": when, "valueQuantity": {"value": v, "unit": "%"},
               "interpretation": [{"coding": [{"code": "H"}]}], "referenceRange": [{"high": {"value": 5.6, "unit": "%"}}],
               "meta": {"tag": [{"system": crate::aggregate::merge::SOURCE_TAG_SYSTEM, "code": "lab", "display": "Bayview Regional Reference Lab"}]}})
    }

    #[test]
    fn results_have_values_ranges_flags_sources_and_repeated_tests_trend() {
        let resources = vec![
            a1c("lab.1", "2025-06-20T10:31:00-07:00", 7.6),
            a1c("lab.2", "2025-03-14T09:12:00-07:00", 8.1),
            json!({"resourceType": "Observation", "id": "lab.k", "code": {"text": "Potassium", "coding": [{"system": "http://loinc.org", "code": "2823-3"}]},
                   "effectiveDateTime": "2025-12-29T11:00:00-08:00", "valueQuantity": {"value": 6.8, "unit": "mmol/L"},
                   "interpretation": [{"coding": [{"code": "HH"}]}], "referenceRange": [{"low": {"value": 3.5, "unit": "mmol/L"}, "high": {"value": 5.1, "unit": "mmol/L"}}]}),
            json!({"resourceType": "DiagnosticReport", "id": "lab.r", "code": {"text": "Basic metabolic panel"}, "status": "final",
                   "effectiveDateTime": "2025-12-29T11:00:00-08:00", "result": [{"reference": "Observation/lab.k"}, {"reference": "Observation/gone"}]}),
        ];
        let lookup = Lookup::new(&resources);
        let v = results(&resources, &lookup);
        assert_eq!(v.results.len(), 3);
        let k = &v.results[0];
        assert_eq!((k.name.as_str(), k.value.as_str()), ("Potassium", "6.8 mmol/L"));
        assert_eq!(k.range.as_deref(), Some("3.5 to 5.1 mmol/L"));
        assert_eq!(k.flags, vec!["Critically high"]);
        assert!(k.abnormal);
        let a = &v.results[2];
        assert_eq!((a.value.as_str(), a.range.as_deref()), ("8.1 %", Some("up to 5.6 %")));
        assert_eq!(a.sources, vec!["Bayview Regional Reference Lab"]);
        assert_eq!(v.reports[0].results, vec!["Potassium: 6.8 mmol/L"], "only released results are listed");
        assert_eq!(v.trends.len(), 1, "potassium has one value: no trend");
        assert_eq!(v.trends[0].name, "Hemoglobin A1c");
        let first = v.trends[0].svg.find(">8.1<").unwrap();
        assert!(first < v.trends[0].svg.find(">7.6<").unwrap(), "oldest first");
    }

    #[test]
    fn components_and_coded_values_are_words() {
        let bp = json!({"component": [
            {"code": {"coding": [{"display": "Systolic blood pressure"}]}, "valueQuantity": {"value": 148, "unit": "mm[Hg]"}},
            {"code": {"coding": [{"display": "Diastolic blood pressure"}]}, "valueQuantity": {"value": 92, "unit": "mm[Hg]"}}]});
        assert_eq!(value_of(&bp), "Systolic blood pressure: 148 mm[Hg]; Diastolic blood pressure: 92 mm[Hg]");
        assert_eq!(
            value_of(&json!({"valueCodeableConcept": {"coding": [{"display": "Not detected"}]}})),
            "Not detected"
        );
        assert_eq!(
            flags_of(&json!({"interpretation": [{"coding": [{"code": "N"}]}]})),
            (vec!["Normal".to_string()], false)
        );
    }
}
