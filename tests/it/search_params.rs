//! The result parameters apps send (issue 13 part 1): `_include` and `_revinclude` (also
//! `:iterate`) resolve only among what was released to the viewer — a withheld resource is
//! never included and leaves no trace, the Bundle is the one a record without it would
//! give — `_elements` and `_summary` trim and tag resources SUBSETTED, on searches and
//! reads, bad values are refused with a 400 OperationOutcome, and the CapabilityStatement
//! lists what is accepted.

use crate::common::*;
use serde_json::{json, Value};
use std::collections::BTreeSet;

const BOB: &str = "search-params-bob-self-0123";
const BOB_LAB_APP: &str = "search-params-bob-lab-app-0123";
const MAYA: &str = "search-params-maya-self-0123";
const MOTHER: &str = "search-params-maya-mother-0123";

/// Maya's items her mother may not see (as `downloads.rs` lists them; fixtures/README.md).
const MAYA_CONFIDENTIAL: &[&str] = &[
    "obs-10045",
    "9e989c92-5860-5b3f-9e05-510d900b67e2",
    "cond-10013",
    "enc-10015",
    "mrx-10007",
    "cond-10011",
    "enc-10014",
    "a1239056-10d1-5528-bdef-518ea6ea16c7",
    "cond-10014",
    "doc-10009",
    "cond-10012",
    "obs-10044",
];

/// A pharmacy system holding Bob (linked to the EHR by his MRN): two prescriptions, one of a
/// Medication the pharmacy holds and one of a Medication it does not, with narrative text.
fn pharmacy_source(dir: &std::path::Path) -> String {
    let folder = dir.join("pharmacy");
    std::fs::create_dir_all(&folder).unwrap();
    let resources = [
        json!({"resourceType": "Patient", "id": "ph-1",
            "identifier": [{"system": "https://ehr.harbor-health.example/fhir/sid/mrn", "value": "HG100142"}],
            "name": [{"family": "Martinez", "given": ["Robert"]}], "gender": "male", "birthDate": "1967-06-18"}),
        json!({"resourceType": "Medication", "id": "ph-med-1",
            "code": {"coding": [{"system": "http://www.nlm.nih.gov/research/umls/rxnorm", "code": "860975"}],
                "text": "metformin 500 MG Extended Release Oral Tablet"}}),
        json!({"resourceType": "Practitioner", "id": "ph-prac-1", "name": [{"family": "Lund", "given": ["Ingrid"]}]}),
        json!({"resourceType": "MedicationRequest", "id": "ph-mr-1",
            "text": {"status": "generated", "div": "<div xmlns=\"http://www.w3.org/1999/xhtml\">metformin ER 500 mg</div>"},
            "status": "active", "intent": "order", "category": [{"text": "community"}],
            "medicationReference": {"reference": "Medication/ph-med-1"},
            "subject": {"reference": "Patient/ph-1"}, "authoredOn": "2025-10-01",
            "requester": {"reference": "Practitioner/ph-prac-1"}, "note": [{"text": "take with food"}]}),
        json!({"resourceType": "MedicationRequest", "id": "ph-mr-2", "status": "active", "intent": "order",
            "medicationReference": {"reference": "Medication/ph-med-elsewhere"},
            "subject": {"reference": "Patient/ph-1"}, "authoredOn": "2025-11-01"}),
    ];
    let lines: String = resources.iter().map(|r| format!("{r}\n")).collect();
    write_file(&folder, "pharmacy.ndjson", &lines);
    let anchor = fixture_anchor();
    format!(
        "[[sources]]\nname = \"pharmacy\"\ndisplay = \"Harbor Pharmacy\"\nkind = \"files\"\npath = {:?}\nshift_dates_from = \"{anchor}\"\n",
        folder.display().to_string()
    )
}

async fn gateway() -> Gateway {
    gateway_over(&fixture_file_sources()).await
}

/// A gateway over `sources` (plus the pharmacy), with a token per viewer above.
async fn gateway_over(sources: &str) -> Gateway {
    let dir = std::sync::Arc::new(tempfile::tempdir().unwrap());
    let lab = "patient/Observation.rs?category=http://terminology.hl7.org/CodeSystem/observation-category|laboratory";
    let body = format!(
        "[[server.dev_tokens]]\ntoken = \"{BOB}\"\nviewer = \"patient\"\npatient = \"ehr/pt-10001\"\n\
         [[server.dev_tokens]]\ntoken = \"{BOB_LAB_APP}\"\nviewer = \"patient\"\npatient = \"ehr/pt-10001\"\nscopes = {lab:?}\n\
         [[server.dev_tokens]]\ntoken = \"{MAYA}\"\nviewer = \"patient\"\npatient = \"ehr/pt-10007\"\n\
         [[server.dev_tokens]]\ntoken = \"{MOTHER}\"\nviewer = \"proxy:MTH\"\npatient = \"ehr/pt-10007\"\n{sources}{}",
        pharmacy_source(dir.path())
    );
    Gateway::start_in(dir, &body, None).await
}

/// The four fixture systems as `files` sources from a copy in `dir` that leaves out the
/// resources with the ids `drop`: the same record as if those had never existed.
fn fixtures_without(dir: &std::path::Path, drop: &[&str]) -> String {
    let kept = |r: &Value| !drop.contains(&r["id"].as_str().unwrap_or(""));
    let mut sources = String::new();
    for source in ["ehr", "lab", "imaging", "behavioral"] {
        let to = dir.join(source);
        std::fs::create_dir_all(&to).unwrap();
        // Documents' contents (`Binary/`) stay behind: none of the compared records' released
        // resources point at one.
        for f in std::fs::read_dir(fixtures(source)).unwrap().map(|f| f.unwrap().path()).filter(|f| f.is_file()) {
            let text = std::fs::read_to_string(&f).unwrap();
            let name = f.file_name().unwrap().to_str().unwrap();
            let out = if name.ends_with(".ndjson") {
                let lines = text.lines().filter(|l| !l.trim().is_empty());
                lines.filter(|l| kept(&serde_json::from_str(l).unwrap())).map(|l| format!("{l}\n")).collect()
            } else if name.ends_with(".json") {
                let mut bundle: Value = serde_json::from_str(&text).unwrap();
                if let Some(entries) = bundle["entry"].as_array_mut() {
                    entries.retain(|e| kept(&e["resource"]));
                }
                bundle.to_string()
            } else {
                continue;
            };
            write_file(&to, name, &out);
        }
        let anchor = fixture_anchor();
        sources += &format!(
            "[[sources]]\nname = {source:?}\ndisplay = {:?}\nkind = \"files\"\npath = {:?}\nshift_dates_from = \"{anchor}\"\n",
            display_of(source),
            to.display().to_string()
        );
    }
    sources
}

/// One searchset page, split by `search.mode`.
#[derive(Debug)]
struct Page {
    total: Value,
    matches: Vec<Value>,
    included: Vec<Value>,
    outcomes: Vec<Value>,
    text: String,
}

async fn search(gw: &Gateway, path: &str, token: &str) -> Page {
    let (status, bundle) = gw.get_with(path, Some(token), &[]).await;
    assert_eq!(status, 200, "{path}: {bundle}");
    let mode = |m: &str| -> Vec<Value> {
        bundle["entry"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["search"]["mode"] == m)
            .map(|e| e["resource"].clone())
            .collect()
    };
    let modes: BTreeSet<&str> =
        bundle["entry"].as_array().unwrap().iter().map(|e| e["search"]["mode"].as_str().unwrap()).collect();
    assert!(modes.iter().all(|m| ["match", "include", "outcome"].contains(m)), "{modes:?}");
    Page {
        total: bundle["total"].clone(),
        matches: mode("match"),
        included: mode("include"),
        outcomes: mode("outcome"),
        text: bundle.to_string(),
    }
}

fn key_set(resources: &[Value]) -> BTreeSet<String> {
    keys(resources).into_iter().collect()
}

/// The `Type/id` keys `r` points at through the elements `paths`.
fn refs(r: &Value, paths: &[&str]) -> BTreeSet<String> {
    paths
        .iter()
        .flat_map(|p| portico::fhir::path_values(r, p))
        .filter_map(|v| v["reference"].as_str())
        .filter_map(portico::fhir::reference::parse)
        .map(|(t, id)| format!("{t}/{id}"))
        .collect()
}

fn subsetted(r: &Value) -> bool {
    r["meta"]["tag"].as_array().is_some_and(|tags| {
        tags.iter().any(|t| {
            t["system"] == "http://terminology.hl7.org/CodeSystem/v3-ObservationValue" && t["code"] == "SUBSETTED"
        })
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn includes_bring_released_references_as_include_entries_and_totals_count_matches_only() {
    let gw = gateway().await;
    let bob = gw.patient_id("ehr", "pt-10001");

    // Observation performers: each included resource is one a match points at, every one of
    // them readable by this viewer, none twice, and the total and matches are the search's.
    let plain = search(&gw, &format!("Observation?patient={bob}&_count=200"), BOB).await;
    let with = search(&gw, &format!("Observation?patient={bob}&_count=200&_include=Observation:performer"), BOB).await;
    assert_eq!((&with.total, key_set(&with.matches)), (&plain.total, key_set(&plain.matches)));
    assert_eq!(with.matches, plain.matches, "matches unchanged");
    let pointed: BTreeSet<String> = plain.matches.iter().flat_map(|o| refs(o, &["performer"])).collect();
    assert!(!with.included.is_empty(), "{pointed:?}");
    assert_eq!(keys(&with.included).len(), key_set(&with.included).len(), "each once");
    let mut readable = BTreeSet::new();
    for k in &pointed {
        if gw.get_with(k, Some(BOB), &[]).await.0 == 200 {
            readable.insert(k.clone());
        }
    }
    assert_eq!(key_set(&with.included), readable, "exactly the released resources the matches point at");
    for r in &with.included {
        let (_, read) = gw
            .get_with(&format!("{}/{}", r["resourceType"].as_str().unwrap(), r["id"].as_str().unwrap()), Some(BOB), &[])
            .await;
        assert_eq!(&read, r, "an included resource is what a read gives");
    }
    assert_eq!(with.outcomes, plain.outcomes, "the same notices");

    // Only from the page's matches.
    let first = search(&gw, &format!("Observation?patient={bob}&_count=2&_include=Observation:performer"), BOB).await;
    assert_eq!(first.matches.len(), 2);
    assert_eq!(first.total, plain.total, "the total counts matches only");
    let from_page: BTreeSet<String> = first.matches.iter().flat_map(|o| refs(o, &["performer"])).collect();
    assert!(key_set(&first.included).is_subset(&from_page), "{:?}", first.included);

    // A Medication by reference; one the record does not hold includes nothing, says nothing.
    let meds =
        search(&gw, &format!("MedicationRequest?patient={bob}&_include=MedicationRequest:medication&_count=200"), BOB)
            .await;
    let plain_meds = search(&gw, &format!("MedicationRequest?patient={bob}&_count=200"), BOB).await;
    assert_eq!(
        (&meds.total, &meds.matches, &meds.outcomes),
        (&plain_meds.total, &plain_meds.matches, &plain_meds.outcomes)
    );
    assert_eq!(keys(&meds.included).len(), 1, "{:?}", meds.included);
    let medication = &meds.included[0];
    assert_eq!(medication["resourceType"], "Medication");
    assert_eq!(medication["code"]["coding"][0]["code"], "860975");
    let prescribing: Vec<&Value> =
        meds.matches.iter().filter(|m| refs(m, &["medicationReference"]).contains(&keys(&meds.included)[0])).collect();
    assert_eq!(prescribing.len(), 1);
    let typed = search(
        &gw,
        &format!("MedicationRequest?patient={bob}&_include=MedicationRequest:requester:Practitioner&_count=200"),
        BOB,
    )
    .await;
    assert!(typed.included.iter().all(|r| r["resourceType"] == "Practitioner") && !typed.included.is_empty());

    // A patient's own token searches Patient without an id; its Observations come along.
    let me = search(&gw, "Patient?_revinclude=Observation:subject", BOB).await;
    assert_eq!((me.total.as_u64(), keys(&me.matches)), (Some(1), vec![format!("Patient/{bob}")]));
    let (all_obs, _) = gw.all_pages_with(&format!("Observation?patient={bob}&_count=50"), BOB).await;
    assert_eq!(key_set(&me.included), key_set(&all_obs));
    assert!(me.included.len() > 5);

    // :iterate follows on from what was included: encounters, then their organizations.
    let q = format!("Observation?patient={bob}&_count=200&_include=Observation:encounter");
    let once = search(&gw, &q, BOB).await;
    let iterated = search(&gw, &format!("{q}&_include:iterate=Encounter:service-provider"), BOB).await;
    assert!(!once.included.is_empty() && once.included.iter().all(|r| r["resourceType"] == "Encounter"));
    let orgs: Vec<&Value> = iterated.included.iter().filter(|r| r["resourceType"] == "Organization").collect();
    assert!(!orgs.is_empty(), "{:?}", keys(&iterated.included));
    let providers: BTreeSet<String> = once.included.iter().flat_map(|e| refs(e, &["serviceProvider"])).collect();
    assert!(orgs.iter().all(|o| providers.contains(&format!("Organization/{}", o["id"].as_str().unwrap()))));

    // An app whose scopes list lab Observations only gets no practitioners along with them.
    let app =
        search(&gw, &format!("Observation?patient={bob}&_count=200&_include=Observation:performer"), BOB_LAB_APP).await;
    assert!(!app.matches.is_empty());
    assert!(app.included.is_empty(), "{:?}", keys(&app.included));
}

/// The resources a viewer's search should include, computed from that viewer's view of
/// the record alone (`view`, its keys `visible`), as if nothing else existed. Each include
/// is (kind, source type, element paths): `fwd` from the matches, `rev` pointing at them,
/// `iter` forward from the matches and from what was included, until nothing is new.
fn expected_includes(
    visible: &BTreeSet<String>,
    view: &[Value],
    matches: &[Value],
    includes: &[(&str, &str, &[&str])],
) -> BTreeSet<String> {
    let key_of = |r: &Value| keys(std::slice::from_ref(r))[0].clone();
    let match_keys = key_set(matches);
    let mut out = BTreeSet::new();
    let mut frontier: Vec<Value> = matches.to_vec();
    let mut first = true;
    while !frontier.is_empty() {
        let frontier_keys = key_set(&frontier);
        let mut found = BTreeSet::new();
        for (kind, source, paths) in includes.iter().filter(|(kind, _, _)| first || *kind == "iter") {
            if *kind == "rev" {
                let pointing = view.iter().filter(|r| r["resourceType"] == *source);
                found.extend(pointing.filter(|r| refs(r, paths).iter().any(|k| frontier_keys.contains(k))).map(key_of));
            } else {
                for m in frontier.iter().filter(|r| r["resourceType"] == *source) {
                    found.extend(refs(m, paths).into_iter().filter(|k| visible.contains(k)));
                }
            }
        }
        found.retain(|k| !match_keys.contains(k) && !out.contains(k));
        out.extend(found.iter().cloned());
        frontier = view.iter().filter(|r| found.contains(&key_of(r))).cloned().collect();
        first = false;
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_withheld_resource_is_never_included_and_the_bundle_is_the_one_without_it() {
    let gw = gateway().await;
    let maya = gw.patient_id("ehr", "pt-10007");
    let everything = format!("Patient/{maya}/$everything?_count=200");
    let (mother_view, maya_view) =
        (gw.all_pages_with(&everything, MOTHER).await.0, gw.all_pages_with(&everything, MAYA).await.0);
    let mother_keys = key_set(&mother_view);
    let mother_text = serde_json::to_string(&mother_view).unwrap();
    assert!(MAYA_CONFIDENTIAL.iter().all(|id| !mother_text.contains(id)), "the fixture's premise");
    let withheld: BTreeSet<String> = key_set(&maya_view).difference(&mother_keys).cloned().collect();
    assert!(withheld.len() >= MAYA_CONFIDENTIAL.len(), "{withheld:?}");

    let enc: &[&str] = &["encounter"];
    // A parent of a 16-year-old sees a limited record (immunizations, her mother's
    // RelatedPerson, the clinicians and places they name); Maya sees her confidential visits,
    // results and the clinician of those visits too.
    let cases: Vec<(String, Vec<(&str, &str, &[&str])>)> = vec![
        (
            "Patient?_revinclude=Observation:subject&_revinclude=Condition:subject&_revinclude=MedicationRequest:subject&_revinclude=DocumentReference:subject&_revinclude=Immunization:patient&_revinclude=RelatedPerson:patient&_revinclude=Encounter:subject".into(),
            vec![
                ("rev", "Observation", &["subject"]),
                ("rev", "Condition", &["subject"]),
                ("rev", "MedicationRequest", &["subject"]),
                ("rev", "DocumentReference", &["subject"]),
                ("rev", "Immunization", &["patient"]),
                ("rev", "RelatedPerson", &["patient"]),
                ("rev", "Encounter", &["subject"]),
            ],
        ),
        (
            "Immunization?_include=Immunization:performer&_include=Immunization:location&_include:iterate=Location:organization".into(),
            vec![
                ("fwd", "Immunization", &["performer.actor"]),
                ("fwd", "Immunization", &["location"]),
                ("iter", "Location", &["managingOrganization"]),
            ],
        ),
        (
            "Encounter?_revinclude=Observation:encounter&_revinclude=Condition:encounter&_revinclude=MedicationRequest:encounter&_revinclude=DocumentReference:encounter&_include=Encounter:practitioner".into(),
            vec![
                ("rev", "Observation", enc),
                ("rev", "Condition", enc),
                ("rev", "MedicationRequest", enc),
                ("rev", "DocumentReference", &["context.encounter"]),
                ("fwd", "Encounter", &["participant.individual"]),
            ],
        ),
        (
            "Observation?_include=Observation:encounter&_include=Observation:performer".into(),
            vec![("fwd", "Observation", enc), ("fwd", "Observation", &["performer"])],
        ),
        (
            "Condition?_include=Condition:encounter&_include=Condition:asserter".into(),
            vec![("fwd", "Condition", enc), ("fwd", "Condition", &["asserter"])],
        ),
    ];
    let mut mother_included = 0;
    let mut self_saw_withheld = false;
    for (query, includes) in &cases {
        let (t, params) = query.split_once('?').unwrap();
        let plain_path = if t == "Patient" { format!("Patient?_id={maya}") } else { format!("{t}?patient={maya}") };
        let path = format!("{plain_path}&{params}&_count=200");
        let plain = search(&gw, &format!("{plain_path}&_count=200"), MOTHER).await;
        let mother = search(&gw, &path, MOTHER).await;
        // The matches, total and notices are the plain search's: nothing counts, names or
        // warns of what was left out.
        assert_eq!((&mother.total, &mother.matches), (&plain.total, &plain.matches), "{query}");
        let strip = |o: &[Value]| o.iter().map(|o| o["issue"].clone()).collect::<Vec<_>>();
        assert_eq!(strip(&mother.outcomes), strip(&plain.outcomes), "{query}");
        // The included resources are those of the mother's own view, as if the withheld ones
        // had never existed, each exactly as her view holds it.
        let want = expected_includes(&mother_keys, &mother_view, &mother.matches, includes);
        assert_eq!(key_set(&mother.included), want, "{query}");
        mother_included += mother.included.len();
        for r in &mother.included {
            assert!(mother_view.contains(r), "{query}: {r}");
        }
        for id in MAYA_CONFIDENTIAL {
            assert!(!mother.text.contains(id), "{query}: {id} reached the mother");
        }
        assert!(withheld.iter().all(|k| !mother.text.contains(k.as_str())), "{query}");
        // Maya herself gets them: the withheld side is there to be left out.
        let own = search(&gw, &path, MAYA).await;
        let maya_keys = key_set(&maya_view);
        let own_want = expected_includes(&maya_keys, &maya_view, &own.matches, includes);
        assert_eq!(key_set(&own.included), own_want, "{query}");
        self_saw_withheld |= own.included.iter().any(|r| withheld.contains(&keys(std::slice::from_ref(r))[0]));
    }
    assert!(self_saw_withheld, "the queries reach items withheld from the mother when Maya asks");

    // Literally the Bundle of a record without them: a gateway over the same systems less
    // Maya's confidential items answers the mother byte for byte the same (but for the
    // gateway's own patient id, address and the outcome entry's random fullUrl).
    let copy = tempfile::tempdir().unwrap();
    let without = gateway_over(&fixtures_without(copy.path(), MAYA_CONFIDENTIAL)).await;
    let maya_there = without.patient_id("ehr", "pt-10007");
    let normal = |gw: &Gateway, id: &str, mut bundle: Value| {
        for e in bundle["entry"].as_array_mut().unwrap() {
            if e["search"]["mode"] == "outcome" {
                e["fullUrl"] = json!("urn:uuid:outcome");
            }
        }
        bundle.to_string().replace(id, "MAYA").replace(&gw.origin, "ORIGIN")
    };
    let there_self = search(&without, &format!("Patient?_id={maya_there}&_revinclude=Observation:subject"), MAYA).await;
    assert!(MAYA_CONFIDENTIAL.iter().all(|id| !there_self.text.contains(id)), "the copy lacks them");
    for (query, _) in &cases {
        let (t, params) = query.split_once('?').unwrap();
        let ask = |id: &str| {
            if t == "Patient" {
                format!("Patient?_id={id}&{params}&_count=200")
            } else {
                format!("{t}?patient={id}&{params}&_count=200")
            }
        };
        let (status, here) = gw.get_with(&ask(&maya), Some(MOTHER), &[]).await;
        let (status_there, there) = without.get_with(&ask(&maya_there), Some(MOTHER), &[]).await;
        assert_eq!((status, status_there), (200, 200));
        assert_eq!(normal(&gw, &maya, here), normal(&without, &maya_there, there), "{query}");
    }
    // The comparison can tell: Maya's own Bundles do differ between the two.
    let revincludes = cases[0].0.split_once('?').unwrap().1;
    let (_, here) = gw.get_with(&format!("Patient?_id={maya}&{revincludes}&_count=200"), Some(MAYA), &[]).await;
    let there_path = format!("Patient?_id={maya_there}&{revincludes}&_count=200");
    let (_, there) = without.get_with(&there_path, Some(MAYA), &[]).await;
    assert_ne!(normal(&gw, &maya, here), normal(&without, &maya_there, there));
    assert!(mother_included >= 5, "the mother's searches include what she may see: {mother_included}");

    // The mother's own token searches Patient without an id: the same Bundle as with it.
    let (_, params) = cases[0].0.split_once('?').unwrap();
    let own = search(&gw, &format!("Patient?{params}"), MOTHER).await;
    let named = search(&gw, &format!("Patient?_id={maya}&{params}"), MOTHER).await;
    assert_eq!((own.total, own.matches, own.included), (named.total, named.matches, named.included));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn elements_and_summaries_trim_and_tag_searches_and_reads() {
    let gw = gateway().await;
    let bob = gw.patient_id("ehr", "pt-10001");
    let base = format!("MedicationRequest?patient={bob}&_count=200");
    let whole = search(&gw, &base, BOB).await;
    let narrated = whole.matches.iter().find(|r| r.get("text").is_some()).expect("the pharmacy's narrative").clone();
    let id = narrated["id"].as_str().unwrap().to_string();
    let find = |p: &Page| p.matches.iter().find(|r| r["id"] == id.as_str()).unwrap().clone();
    // Top-level keys in order, but `meta` (where the gateway's tags put it): checked apart.
    let key_list = |r: &Value| {
        assert!(r["meta"].is_object(), "{r}");
        r.as_object().unwrap().keys().filter(|k| *k != "meta").cloned().collect::<Vec<_>>()
    };
    let without = |r: &Value, drop: &[&str]| {
        let mut r = r.clone();
        for k in drop {
            r.as_object_mut().unwrap().remove(*k);
        }
        r
    };

    // data: everything but the narrative, tagged.
    let data = search(&gw, &format!("{base}&_summary=data"), BOB).await;
    assert_eq!(data.total, whole.total);
    let r = find(&data);
    assert!(r.get("text").is_none() && subsetted(&r));
    assert_eq!(without(&r, &["meta"]), without(&narrated, &["text", "meta"]), "nothing else changed");
    assert!(data.matches.iter().all(subsetted));

    // text: narrative, id, meta and the mandatory elements.
    let r = find(&search(&gw, &format!("{base}&_summary=text"), BOB).await);
    assert_eq!(key_list(&r), ["resourceType", "id", "text", "status", "intent", "medicationReference", "subject"]);
    assert_eq!(r["text"], narrated["text"]);
    assert!(subsetted(&r));

    // true: the elements R4 marks summary (no note, category or narrative).
    let r = find(&search(&gw, &format!("{base}&_summary=true"), BOB).await);
    for gone in ["text", "note", "category"] {
        assert!(r.get(gone).is_none(), "{gone}: {r}");
    }
    for kept in ["status", "intent", "medicationReference", "subject", "authoredOn", "requester"] {
        assert_eq!(r[kept], narrated[kept], "{kept}");
    }
    assert!(subsetted(&r));

    // _elements: those, plus id, meta and the mandatory ones.
    let elements = search(&gw, &format!("{base}&_elements=authoredOn,note"), BOB).await;
    let r = find(&elements);
    assert_eq!(
        key_list(&r),
        ["resourceType", "id", "status", "intent", "medicationReference", "subject", "authoredOn", "note"]
    );
    assert_eq!(r["note"], narrated["note"]);
    assert!(elements.matches.iter().all(subsetted));
    assert_eq!(elements.total, whole.total);
    // Included resources come whole with _elements; a summary trims them too.
    let with_med = search(&gw, &format!("{base}&_elements=status&_include=MedicationRequest:medication"), BOB).await;
    assert!(with_med.included.iter().all(|m| !subsetted(m) && m.get("code").is_some()), "{:?}", with_med.included);
    let summarised = search(&gw, &format!("{base}&_summary=true&_include=MedicationRequest:medication"), BOB).await;
    assert!(!summarised.included.is_empty() && summarised.included.iter().all(subsetted));

    // false is the whole resource; count the total alone.
    let full = search(&gw, &format!("{base}&_summary=false"), BOB).await;
    assert_eq!(full.matches, whole.matches);
    let counted = search(&gw, &format!("{base}&_summary=count&_include=MedicationRequest:medication"), BOB).await;
    assert_eq!((counted.total, counted.matches.len(), counted.included.len()), (whole.total.clone(), 0, 0));

    // Reads take _summary (not count) and _elements too.
    let path = format!("MedicationRequest/{id}");
    let (status, read) = gw.get_with(&format!("{path}?_elements=note"), Some(BOB), &[]).await;
    assert_eq!(status, 200, "{read}");
    assert_eq!(key_list(&read), ["resourceType", "id", "status", "intent", "medicationReference", "subject", "note"]);
    assert!(subsetted(&read));
    let (status, read) = gw.get_with(&format!("{path}?_summary=data"), Some(BOB), &[]).await;
    assert_eq!(status, 200);
    assert!(read.get("text").is_none() && read.get("note").is_some() && subsetted(&read));
    let (status, read) = gw.get_with(&path, Some(BOB), &[]).await;
    assert_eq!((status, &read), (200, &narrated), "without them, the whole resource untagged");
    assert!(!subsetted(&read));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_values_get_a_400_operation_outcome_that_names_the_parameter() {
    let gw = gateway().await;
    let bob = gw.patient_id("ehr", "pt-10001");
    let obs = gw.all_pages_with(&format!("Observation?patient={bob}&_count=1"), BOB).await.0;
    let read = format!("Observation/{}", obs[0]["id"].as_str().unwrap());
    let cases = [
        (format!("Observation?patient={bob}&_include=*"), "_include"),
        (format!("Observation?patient={bob}&_include=Observation:*"), "_include"),
        (format!("Observation?patient={bob}&_include=Observation:code"), "_include"),
        (format!("Observation?patient={bob}&_include=Observation"), "_include"),
        (format!("Observation?patient={bob}&_include=Nonsense:subject"), "_include"),
        (format!("Observation?patient={bob}&_include=Condition:encounter"), "_include"),
        (format!("Observation?patient={bob}&_include=Observation:performer:Encounter"), "_include"),
        (format!("Observation?patient={bob}&_include:deep=Observation:performer"), "_include"),
        (format!("Encounter?patient={bob}&_revinclude=Observation:performer"), "_revinclude"),
        (format!("Observation?patient={bob}&_summary=maybe"), "_summary"),
        (format!("Observation?patient={bob}&_summary=true&_summary=data"), "_summary"),
        (format!("Observation?patient={bob}&_summary=true&_elements=code"), "_elements"),
        (format!("Observation?patient={bob}&_elements=colour"), "_elements"),
        (format!("Observation?patient={bob}&_elements=code,"), "_elements"),
        (format!("{read}?_summary=count"), "_summary"),
        (format!("{read}?_summary=maybe"), "_summary"),
        (format!("{read}?_elements=colour"), "_elements"),
    ];
    for (path, param) in &cases {
        let (status, body) = gw.get_with(path, Some(BOB), &[]).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert_eq!(body["resourceType"], "OperationOutcome", "{path}");
        let said = body["issue"][0]["diagnostics"].as_str().unwrap_or_default();
        assert!(said.contains(param), "{path}: {said}");
    }
    // The same searches without the bad parameter still answer.
    let (status, _) =
        gw.get_with(&format!("Observation?patient={bob}&_include=Observation:performer"), Some(BOB), &[]).await;
    assert_eq!(status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_capability_statement_lists_includes_that_each_work() {
    let gw = gateway().await;
    let bob = gw.patient_id("ehr", "pt-10001");
    let (status, cs) = gw.get_with("metadata", None, &[]).await;
    assert_eq!(status, 200);
    let resources = cs["rest"][0]["resource"].as_array().unwrap();
    let of = |t: &str| resources.iter().find(|r| r["type"] == t).unwrap();
    let list = |v: &Value| v.as_array().map(|a| a.iter().map(|s| s.as_str().unwrap().to_string()).collect::<Vec<_>>());
    let obs_includes = list(&of("Observation")["searchInclude"]).unwrap();
    assert!(obs_includes.contains(&"Observation:performer".to_string()), "{obs_includes:?}");
    assert!(!obs_includes.iter().any(|i| i.contains('*')));
    let patient_rev = list(&of("Patient")["searchRevInclude"]).unwrap();
    assert!(patient_rev.contains(&"Observation:subject".to_string()));
    for t in ["Observation", "Patient"] {
        let params: Vec<&str> =
            of(t)["searchParam"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
        assert!(params.contains(&"_summary") && params.contains(&"_elements"), "{t}: {params:?}");
    }
    // Truthful: each one listed for these types is accepted.
    for t in ["Observation", "MedicationRequest", "Encounter"] {
        for inc in list(&of(t)["searchInclude"]).unwrap() {
            let (status, body) = gw.get_with(&format!("{t}?patient={bob}&_include={inc}"), Some(BOB), &[]).await;
            assert_eq!(status, 200, "{inc}: {body}");
        }
    }
    for rev in patient_rev {
        let (status, body) = gw.get_with(&format!("Patient?_id={bob}&_revinclude={rev}"), Some(BOB), &[]).await;
        assert_eq!(status, 200, "{rev}: {body}");
    }
}
