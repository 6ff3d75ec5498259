//! Imaging series through the door (WADO-RS). An `ImagingStudy` names where its images are
//! kept by an `Endpoint` (`ImagingStudy.endpoint`, or a series' own) whose `connectionType`
//! is `dicom-wado-rs` and whose `address` is the WADO-RS base; a series is then
//! `{address}/studies/{study uid}/series/{series uid}`. Each series on the source's own
//! origin is an attachment of the study like a document's content: released under the
//! study's decision, fetched from the source with its credentials, streamed as it comes
//! (`multipart/related; type="application/dicom"`, boundary and all), and named outward
//! only by the gateway: the `Endpoint.address` a viewer reads is
//! `{fhir base}/wado-rs/{endpoint id}`, so the series URL a DICOMweb client builds from it
//! is the gateway's. Only referenced Endpoints (not contained ones) are rewritten and served;
//! study- and instance-level WADO-RS and metadata are not offered. It never decides:
//! [`Reader::binary`] does, for the series' gateway id.

use super::binary::ReleasedAttachment;
use super::{ReadError, Reader, Trail};
use crate::aggregate::provenance::{gateway_resource_id, split_gateway_id};
use crate::auth::Access;
use crate::fhir;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::borrow::Borrow;

/// The content type a WADO-RS series retrieval answers (and is asked for).
pub const SERIES_CONTENT_TYPE: &str = "multipart/related; type=\"application/dicom\"";

/// `Endpoint.connectionType` code of a WADO-RS base.
const WADO_RS: &str = "dicom-wado-rs";

/// Whether an Endpoint resource is a WADO-RS base.
fn is_wado_endpoint(r: &Value) -> bool {
    fhir::resource_type(r) == Some("Endpoint")
        && r.pointer("/connectionType/code").and_then(Value::as_str) == Some(WADO_RS)
}

/// The gateway key of a series: a digest of the gateway's endpoint id and the two UIDs, so
/// the gateway's WADO-RS path names it without any other lookup (`w` + 32 hex digits).
fn series_key(endpoint_id: &str, study: &str, series: &str) -> String {
    let digest = Sha256::digest(format!("{endpoint_id}/{study}/{series}").as_bytes());
    format!("w{}", &hex::encode(digest)[..32])
}

/// The gateway id of a series reached through the gateway endpoint `endpoint_id`
/// (`{source}.{id}`), or none when that is not an id the gateway gives.
pub(super) fn series_id(endpoint_id: &str, study: &str, series: &str) -> Option<String> {
    let (source, _) = split_gateway_id(endpoint_id)?;
    Some(gateway_resource_id(source, &series_key(endpoint_id, study, series)))
}

/// A study's DICOM Study Instance UID (`identifier` with system `urn:dicom:uid`).
fn study_uid(study: &Value) -> Option<&str> {
    study
        .get("identifier")?
        .as_array()?
        .iter()
        .find(|i| i.get("system").and_then(Value::as_str) == Some("urn:dicom:uid"))
        .and_then(|i| i.get("value")?.as_str())
        .map(|v| v.trim_start_matches("urn:oid:"))
}

/// The ids of the Endpoints a `reference` list names (`Endpoint/{id}`).
fn endpoint_ids(list: Option<&Value>) -> Vec<&str> {
    list.and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|r| r.get("reference")?.as_str())
        .filter_map(|r| match fhir::reference::parse(r) {
            Some(("Endpoint", id)) => Some(id),
            _ => None,
        })
        .collect()
}

/// One series of a study and where its WADO-RS base is: (gateway endpoint id, source's
/// series URL, series UID, description).
pub(super) struct Series {
    pub endpoint_id: String,
    pub url: String,
    pub study: String,
    pub uid: String,
    pub title: Option<String>,
}

/// The series of `study` that a WADO-RS Endpoint among `record` serves.
pub(super) fn series_of<R: Borrow<Value>>(study: &Value, record: &[R]) -> Vec<Series> {
    if fhir::resource_type(study) != Some("ImagingStudy") {
        return Vec::new();
    }
    let Some(study_uid) = study_uid(study) else { return Vec::new() };
    let address = |id: &str| {
        record
            .iter()
            .map(Borrow::borrow)
            .find(|r| is_wado_endpoint(r) && fhir::resource_id(r) == Some(id))
            .and_then(|r| r.get("address")?.as_str())
    };
    let study_endpoints = endpoint_ids(study.get("endpoint"));
    study
        .get("series")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|s| {
            let uid = s.get("uid")?.as_str()?;
            let own = endpoint_ids(s.get("endpoint"));
            let endpoints = if own.is_empty() { &study_endpoints } else { &own };
            let (endpoint_id, base) = endpoints.iter().find_map(|id| Some((*id, address(id)?)))?;
            Some(Series {
                endpoint_id: endpoint_id.to_string(),
                url: format!("{}/studies/{study_uid}/series/{uid}", base.trim_end_matches('/')),
                study: study_uid.to_string(),
                uid: uid.to_string(),
                title: s.get("description").and_then(Value::as_str).map(str::to_string),
            })
        })
        .collect()
}

impl Reader {
    /// The series of a released ImagingStudy the gateway serves, as attachments.
    pub(super) fn series_attachments<R: Borrow<Value>>(
        &self,
        study: &Value,
        source: &str,
        record: &[R],
    ) -> Vec<ReleasedAttachment> {
        let pointed_by = format!("ImagingStudy/{}", fhir::resource_id(study).unwrap_or(""));
        series_of(study, record)
            .into_iter()
            .filter(|s| self.attachment_id(source, &s.url).is_some())
            .filter_map(|s| {
                Some(ReleasedAttachment::new(
                    series_id(&s.endpoint_id, &s.study, &s.uid)?,
                    source,
                    s.url,
                    Some(SERIES_CONTENT_TYPE.to_string()),
                    s.title,
                    pointed_by.clone(),
                ))
            })
            .collect()
    }

    /// A WADO-RS Endpoint as it goes out: its address, when the source serves it, becomes the
    /// gateway's WADO-RS base for it.
    pub(super) fn outward_endpoint(&self, r: &mut Value, source: &str, base: &str) {
        if !is_wado_endpoint(r) {
            return;
        }
        let Some(id) = fhir::resource_id(r).map(str::to_string) else { return };
        let served = r.get("address").and_then(Value::as_str).is_some_and(|a| self.attachment_id(source, a).is_some());
        if served {
            let url = if base.is_empty() { format!("wado-rs/{id}") } else { format!("{base}/wado-rs/{id}") };
            r["address"] = Value::String(url);
        }
    }

    /// `GET wado-rs/{endpoint}/studies/{study}/series/{series}`: the series' content when an
    /// ImagingStudy released to the caller now names it through that endpoint; anything else
    /// is `NotFound`, alike (see [`Reader::binary`]).
    pub async fn series(
        &self,
        access: &Access,
        trail: &Trail,
        endpoint_id: &str,
        study: &str,
        series: &str,
    ) -> Result<super::BinaryContent, ReadError> {
        let id = series_id(endpoint_id, study, series).unwrap_or_default();
        self.binary(access, trail, &id).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_series_is_named_by_its_own_endpoint_else_the_studys() {
        let study = json!({"resourceType": "ImagingStudy", "id": "s",
            "identifier": [{"system": "urn:dicom:uid", "value": "urn:oid:1.2.3"}],
            "endpoint": [{"reference": "Endpoint/img.pacs"}],
            "series": [{"uid": "1.2.3.1", "description": "Axial"},
                       {"uid": "1.2.3.2", "endpoint": [{"reference": "Endpoint/img.other"}]},
                       {"uid": "1.2.3.3", "endpoint": [{"reference": "Endpoint/img.none"}]}]});
        let record = vec![
            json!({"resourceType": "Endpoint", "id": "img.pacs", "connectionType": {"code": "dicom-wado-rs"}, "address": "https://pacs.example/wado/"}),
            json!({"resourceType": "Endpoint", "id": "img.other", "connectionType": {"code": "dicom-wado-rs"}, "address": "wado-rs"}),
            json!({"resourceType": "Endpoint", "id": "img.none", "connectionType": {"code": "hl7-fhir-rest"}, "address": "x"}),
        ];
        let series = series_of(&study, &record);
        assert_eq!(series.len(), 2, "an Endpoint that is not WADO-RS names no series");
        assert_eq!(series[0].url, "https://pacs.example/wado/studies/1.2.3/series/1.2.3.1");
        assert_eq!(series[0].title.as_deref(), Some("Axial"));
        assert_eq!(
            (series[1].endpoint_id.as_str(), series[1].url.as_str()),
            ("img.other", "wado-rs/studies/1.2.3/series/1.2.3.2")
        );
        let id = series_id("img.pacs", "1.2.3", "1.2.3.1").unwrap();
        assert!(id.starts_with("img.w") && fhir::is_valid_id(&id), "{id}");
        assert_ne!(Some(id), series_id("img.pacs", "1.2.3", "1.2.3.2"));
        assert_eq!(series_id("no-source", "1", "2"), None);
    }
}
