//! A reference laboratory's record of one person: the Patient, reports (basic metabolic
//! panel, CBC, lipids, repeated HbA1c and TSH as trends) with results carrying reference
//! ranges and interpretations (an occasional critical potassium, HH, that a critical-values
//! hold rule matches), Provenance for half the reports, surgical pathology reports (which a
//! pathology hold rule matches) and the sensitive tests: HIV screen, viral load and CD4,
//! chlamydia and gonorrhoea, serum hCG, and a BRCA genetic report (category GE).

use super::codes::{self, LabTest, Panel, INTERPRETATION, LOINC, SNOMED, V2_0074};
use super::shape::{cc, coding, later, observation_category, quantity, reference, security, Ctx};
use super::GenerateError;
use rand::Rng;
use serde_json::{json, Value};

type Result<T> = std::result::Result<T, GenerateError>;

pub(super) fn write(ctx: &mut Ctx) -> Result<()> {
    ctx.write_patient()?;
    let t = ctx.person.traits.clone();
    let adult = ctx.person.age >= 18;
    let visits = 2 + ctx.rng.gen_range(0..5) + if t.diabetes || t.hypothyroid { 2 } else { 0 };
    let mut days: Vec<i64> = (0..visits).map(|_| ctx.days_ago(1095)).collect();
    days.sort_unstable_by(|a, b| b.cmp(a));
    let last = days.len() - 1;
    for (n, d) in days.iter().enumerate() {
        let when = ctx.clinic_time(*d);
        if adult && (n == 0 || ctx.rng.gen_bool(0.5)) {
            let critical = t.critical_potassium && n == last;
            panel(ctx, &codes::BMP, &when, |test, v| if critical && test == codes::POTASSIUM { 6.8 } else { v })?;
        }
        if !adult || ctx.rng.gen_bool(0.6) {
            panel(ctx, &codes::CBC, &when, |_, v| v)?;
        }
        if adult && (t.hyperlipidemia || ctx.rng.gen_bool(0.25)) {
            panel(ctx, &codes::LIPIDS, &when, |_, v| v)?;
        }
        if t.diabetes {
            // A falling HbA1c: the trend a results page charts.
            let value = 8.8 - 0.35 * n as f64;
            panel(ctx, &codes::HBA1C, &when, |_, _| value)?;
        }
        if t.hypothyroid || ctx.rng.gen_bool(0.1) {
            let value = if t.hypothyroid { 6.9 - 0.9 * n as f64 } else { 2.1 };
            panel(ctx, &codes::TSH, &when, |_, _| value.max(0.9))?;
        }
    }
    sensitive(ctx)
}

/// A report of `panel` with one result per test (`value` may replace a drawn value).
fn panel(ctx: &mut Ctx, panel: &Panel, when: &str, value: impl Fn(usize, f64) -> f64) -> Result<(String, Vec<String>)> {
    let accession = format!("ACC-{}", &ctx.id("Specimen")[..8].to_uppercase());
    let mut results = Vec::new();
    for (n, test) in panel.tests.iter().enumerate() {
        let drawn = ctx.rng.gen_range(test.draw.0..test.draw.1);
        let id = result(ctx, test, when, value(n, drawn), Some(&accession))?;
        results.push(id);
    }
    let report = report(ctx, (panel.loinc, panel.display), ("LAB", "Laboratory"), when, &results, &accession, None)?;
    if ctx.rng.gen_bool(0.5) {
        provenance(ctx, &report, &results, when)?;
    }
    Ok((report, results))
}

fn interpretation(test: &LabTest, value: f64) -> Option<(&'static str, &'static str)> {
    if test.loinc == "2823-3" && value >= 6.0 {
        Some(("HH", "Critical high"))
    } else if value > test.high {
        Some(("H", "High"))
    } else if value < test.low {
        Some(("L", "Low"))
    } else {
        Some(("N", "Normal"))
    }
}

/// A numeric result with its reference range and interpretation.
fn result(ctx: &mut Ctx, test: &LabTest, when: &str, value: f64, accession: Option<&str>) -> Result<String> {
    let id = ctx.id("Observation");
    let mut range = json!({"high": quantity(test.high, test.unit, test.decimals)});
    if test.low > 0.0 {
        range["low"] = quantity(test.low, test.unit, test.decimals);
    }
    let mut obs = json!({
        "resourceType": "Observation", "id": id, "status": "final",
        "category": observation_category("laboratory"),
        "code": cc(LOINC, test.loinc, test.display),
        "subject": ctx.patient(),
        "effectiveDateTime": when, "issued": later(when, 180),
        "performer": [ctx.organization()],
        "valueQuantity": quantity(value, test.unit, test.decimals),
        "referenceRange": [range]
    });
    if let Some((code, display)) = interpretation(test, value) {
        obs["interpretation"] = json!([cc(INTERPRETATION, code, display)]);
    }
    if let Some(acc) = accession {
        obs["identifier"] = json!([{"system": format!("{}/sid/accession", ctx.directory.base), "value": format!("{acc}-{}", test.loinc)}]);
    }
    ctx.put(obs)?;
    Ok(id)
}

/// A coded result (detected, positive …), with labels the source sends.
fn coded_result(ctx: &mut Ctx, code: (&str, &str), when: &str, value: (&str, &str), labels: &[&str]) -> Result<String> {
    let id = ctx.id("Observation");
    let mut obs = json!({
        "resourceType": "Observation", "id": id, "status": "final",
        "category": observation_category("laboratory"),
        "code": cc(LOINC, code.0, code.1),
        "subject": ctx.patient(),
        "effectiveDateTime": when, "issued": later(when, 240),
        "performer": [ctx.organization()],
        "valueCodeableConcept": cc(SNOMED, value.0, value.1)
    });
    if !labels.is_empty() {
        obs["meta"] = json!({"security": security(labels)});
    }
    ctx.put(obs)?;
    Ok(id)
}

fn report(
    ctx: &mut Ctx,
    code: (&str, &str),
    category: (&str, &str),
    when: &str,
    results: &[String],
    accession: &str,
    conclusion: Option<&str>,
) -> Result<String> {
    let id = ctx.id("DiagnosticReport");
    let mut r = json!({
        "resourceType": "DiagnosticReport", "id": id, "status": "final",
        "identifier": [{"system": format!("{}/sid/accession", ctx.directory.base), "value": accession}],
        "category": [{"coding": [coding(V2_0074, category.0, category.1)]}],
        "code": cc(LOINC, code.0, code.1),
        "subject": ctx.patient(),
        "effectiveDateTime": when, "issued": later(when, 240),
        "performer": [ctx.organization()],
        "result": results.iter().map(|r| reference("Observation", r)).collect::<Vec<Value>>()
    });
    if let Some(c) = conclusion {
        r["conclusion"] = json!(c);
    }
    ctx.put(r)?;
    Ok(id)
}

fn provenance(ctx: &mut Ctx, report: &str, results: &[String], when: &str) -> Result<()> {
    let id = ctx.id("Provenance");
    let mut targets = vec![reference("DiagnosticReport", report)];
    targets.extend(results.iter().map(|r| reference("Observation", r)));
    let resource = json!({
        "resourceType": "Provenance", "id": id, "target": targets, "recorded": later(when, 240),
        "agent": [
            {"type": cc("http://terminology.hl7.org/CodeSystem/provenance-participant-type", "author", "Author"), "who": ctx.organization()},
            {"type": cc("http://hl7.org/fhir/us/core/CodeSystem/us-core-provenance-participant-type", "transmitter", "Transmitter"), "who": ctx.organization()}
        ]
    });
    ctx.put(resource)
}

fn sensitive(ctx: &mut Ctx) -> Result<()> {
    let t = ctx.person.traits.clone();
    if t.hiv {
        let d = ctx.days_ago(900);
        let when = ctx.clinic_time(d);
        let labels: &[&str] = if ctx.rng.gen_bool(0.5) { &["HIV", "R"] } else { &[] };
        let screen = coded_result(
            ctx,
            ("56888-1", "HIV 1+2 Ab+HIV1 p24 Ag [Presence] in Serum or Plasma by Immunoassay"),
            &when,
            ("11214006", "Reactive"),
            labels,
        )?;
        ctx.flag("Observation", &screen, "HIV", "HIV screen")?;
        let load = LabTest {
            loinc: "20447-9",
            display: "HIV 1 RNA [#/volume] (viral load) in Serum or Plasma by NAA with probe detection",
            unit: "{copies}/mL",
            low: 0.0,
            high: 20.0,
            draw: (0.0, 1.0),
            decimals: 0,
        };
        let cd4 = LabTest {
            loinc: "24467-3",
            display: "CD3+CD4+ (T4 helper) cells [#/volume] in Blood",
            unit: "/uL",
            low: 500.0,
            high: 1500.0,
            draw: (0.0, 1.0),
            decimals: 0,
        };
        for n in 0..2 {
            let when = ctx.clinic_time(d - 90 * (n + 1));
            let id = result(ctx, &load, &when, 4000.0 / f64::from(10_i32.pow(n as u32 + 1)), None)?;
            ctx.flag("Observation", &id, "HIV", "HIV viral load")?;
            let id = result(ctx, &cd4, &when, 380.0 + 90.0 * n as f64, None)?;
            ctx.flag("Observation", &id, "HIV", "CD4 count")?;
        }
    }
    if t.sti {
        let d = ctx.days_ago(400);
        let when = ctx.clinic_time(d);
        let chlamydia = ("21613-5", "Chlamydia trachomatis DNA [Presence] in Specimen by NAA with probe detection");
        let labels: &[&str] = if ctx.rng.gen_bool(0.5) { &["STD", "R"] } else { &[] };
        let id = coded_result(ctx, chlamydia, &when, ("260373001", "Detected"), labels)?;
        ctx.flag("Observation", &id, "STD", "chlamydia NAAT")?;
        let gonorrhea = ("24111-7", "Neisseria gonorrhoeae DNA [Presence] in Specimen by NAA with probe detection");
        let id = coded_result(ctx, gonorrhea, &when, ("260415000", "Not detected"), &[])?;
        ctx.flag("Observation", &id, "STD", "gonorrhoea NAAT")?;
    }
    if t.pregnant {
        let d = ctx.days_ago(100);
        let when = ctx.clinic_time(d);
        let hcg = LabTest {
            loinc: "19080-1",
            display: "Choriogonadotropin [Units/volume] in Serum or Plasma",
            unit: "m[IU]/mL",
            low: 0.0,
            high: 5.0,
            draw: (800.0, 40000.0),
            decimals: 0,
        };
        let value = ctx.rng.gen_range(hcg.draw.0..hcg.draw.1);
        let id = result(ctx, &hcg, &when, value, None)?;
        ctx.flag("Observation", &id, "PREGNANT", "serum hCG")?;
    }
    if t.brca {
        let d = ctx.days_ago(900);
        let when = ctx.clinic_time(d);
        let variant = coded_result(
            ctx,
            ("21636-6", "BRCA1 gene mutations found [Identifier] in Blood or Tissue by Molecular genetics method"),
            &when,
            ("10828004", "Positive"),
            &[],
        )?;
        ctx.flag("Observation", &variant, "GDIS", "BRCA1 result")?;
        let acc = format!("ACC-G{}", &variant[..7].to_uppercase());
        let report = report(
            ctx,
            ("51969-4", "Genetic analysis report"),
            ("GE", "Genetics"),
            &when,
            std::slice::from_ref(&variant),
            &acc,
            Some("Pathogenic BRCA1 variant detected."),
        )?;
        ctx.flag("DiagnosticReport", &report, "GDIS", "genetic analysis report")?;
    }
    if t.pathology {
        // Issued yesterday: a pathology hold rule (72 h) would still hold it.
        let when = ctx.clinic_time(1);
        let text = ("22637-3", "Pathology report final diagnosis Narrative");
        let finding = coded_result(ctx, text, &when, ("35917007", "Adenocarcinoma"), &[])?;
        let acc = format!("ACC-S{}", &finding[..7].to_uppercase());
        report(
            ctx,
            ("60567-5", "Comprehensive pathology report panel"),
            ("SP", "Surgical Pathology"),
            &when,
            &[finding],
            &acc,
            Some("Invasive adenocarcinoma. See final diagnosis."),
        )?;
    }
    Ok(())
}

/// A point-of-care result a clinic measures itself (used where no lab holds the person).
pub(super) fn point_of_care(ctx: &mut Ctx, test: &LabTest, when: &str, value: f64) -> Result<String> {
    result(ctx, test, when, value, None)
}
