use super::*;
use crate::aggregate::merge::SOURCE_TAG_SYSTEM;
use crate::aggregate::MissingSource;
use crate::fhir::model::codes::IssueType;
use crate::fhir::outcome::Issue;
use serde_json::json;

fn tag(display: &str) -> Value {
    json!({"tag": [{"system": SOURCE_TAG_SYSTEM, "code": "ehr", "display": display}]})
}

fn record(resources: Vec<Value>) -> WholeRecord {
    WholeRecord::for_test(
        "pt-0123456789abcdef0123",
        resources,
        vec![MissingSource {
            source: "lab".into(),
            display: "Bayview <Lab>".into(),
            reason: "did not answer in time".into(),
        }],
        vec![Issue::information(IssueType::Informational, "Some information may not be shown & more.")],
    )
}

#[test]
fn everything_the_record_says_is_escaped() {
    let r = record(vec![
        json!({"resourceType": "Patient", "id": "p", "meta": tag("Harbor <b>General</b>"), "name": [{"given": ["<script>alert(1)</script>"], "family": "O'Brien"}], "birthDate": "1990-01-27"}),
        json!({"resourceType": "Condition", "id": "c", "meta": tag("Harbor General Hospital"), "code": {"coding": [{"display": "<script>alert('x')</script>"}]}, "onsetDateTime": "2020-01-02T10:00:00-08:00"}),
        json!({"resourceType": "Observation", "id": "o", "meta": tag("Lab \"quoted\""), "code": {"text": "Potassium <img src=x onerror=alert(1)>"}, "valueQuantity": {"value": 6.1, "unit": "mmol/L"}, "referenceRange": [{"low": {"value": 3.5, "unit": "mmol/L"}, "high": {"value": 5.1, "unit": "mmol/L"}}], "interpretation": [{"coding": [{"code": "HH", "display": "Critical high"}]}], "effectiveDateTime": "2025-12-01T08:00:00-08:00"}),
    ]);
    let html = render(&r, Utc::now(), crate::i18n::Lang::En).unwrap();
    assert!(!html.contains("<script"), "no script element at all: {html}");
    assert!(!html.contains("<img"), "{html}");
    assert!(!html.contains("<b>General"), "{html}");
    assert!(html.contains("&lt;script&gt;alert(1)&lt;&#x2f;script&gt;"), "{html}");
    assert!(html.contains("&lt;script&gt;alert(&#x27;x&#x27;)"), "{html}");
    assert!(html.contains("Potassium &lt;img"), "{html}");
    assert!(html.contains("Harbor &lt;b&gt;General"), "{html}");
    assert!(html.contains("Lab &quot;quoted&quot;"), "{html}");
    assert!(html.contains("O&#x27;Brien"), "{html}");
    assert!(html.contains("Bayview &lt;Lab&gt; may be missing"), "{html}");
    assert!(html.contains("Some information may not be shown &amp; more."), "{html}");
    // The result's columns.
    let row = "<td>Potassium &lt;img src=x onerror=alert(1)&gt;</td><td>6.1</td><td>mmol&#x2f;L</td><td>3.5–5.1 mmol&#x2f;L</td><td>Critical high</td><td class=\"date\">Dec 1, 2025</td><td class=\"source\">Lab &quot;quoted&quot;</td>";
    assert!(html.contains(row), "{html}");
    assert!(!html.contains("<link") && !html.contains("url(") && !html.contains("@import"), "no outside assets");
}

#[test]
fn a_record_without_items_says_so_and_names_no_one() {
    let r = record(vec![]).without_missing();
    let html = render(&r, Utc::now(), crate::i18n::Lang::En).unwrap();
    assert!(html.contains("No problems are listed.") && html.contains("No results are listed."), "{html}");
    assert!(html.contains("this patient") && !html.contains("may be missing"), "{html}");
}

#[test]
fn a_spanish_summary_says_the_gateways_words_in_spanish_and_the_records_as_written() {
    let r = record(vec![
        json!({"resourceType": "Patient", "id": "p", "name": [{"text": "Ana Ruiz"}], "birthDate": "2010-03-14"}),
        json!({"resourceType": "Immunization", "id": "i", "vaccineCode": {"text": "Influenza vaccine"}, "status": "completed", "occurrenceDateTime": "2026-12-03"}),
    ]);
    let produced = chrono::DateTime::parse_from_rfc3339("2026-12-03T14:05:00Z").unwrap().with_timezone(&Utc);
    let html = render(&r, produced, crate::i18n::Lang::Es).unwrap();
    assert!(html.contains("<html lang=\"es\">"), "{html}");
    assert!(html.contains("Resumen del expediente médico: Ana Ruiz"), "{html}");
    assert!(html.contains("Generado el 3 de diciembre de 2026, 14:05 UTC"), "{html}");
    assert!(
        html.contains("<h2 id=\"immunizations\">Vacunas</h2>") && html.contains("No hay alergias en la lista."),
        "{html}"
    );
    assert!(html.contains("Influenza vaccine"), "the source's words stay as written: {html}");
    assert!(html.contains("14 mar 2010"), "{html}");
    assert!(!html.contains("No problems are listed") && !html.contains("Produced"), "{html}");
}
