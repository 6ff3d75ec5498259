//! What the reader hands to renderers: one page of matches, or a patient's whole released
//! record. Their fields are private and only the reader makes them (from what the policy
//! released), so a renderer cannot be handed a record that did not go through the policy.
//! Tests build them with the `#[cfg(test)]` constructors.

use crate::aggregate::MissingSource;
use crate::fhir::bundle::{entries_bytes, WriteJson};
use crate::fhir::model::codes::SearchEntryMode;
use crate::fhir::outcome::Issue;
use crate::policy::Released;
use bytes::Bytes;
use serde_json::Value;
use std::sync::{Arc, Mutex, PoisonError};

/// Pages kept per decision as whole entry lists (see [`Rendered::page`]): an app reading a
/// record pages through it, or asks for the same `$everything` again and again.
const KEPT_PAGES: usize = 4;

/// A decision's released resources as they go out (attachment URLs made the gateway's),
/// serialized once for that decision and kept with it (see `decisions`): a page is then
/// written by copying bytes instead of copying and serializing every resource again.
pub(super) struct Rendered {
    pub(super) released: Arc<Released>,
    /// `json[i]` is `released.resources()[i]` as it goes out, compact JSON.
    pub(super) json: Vec<Box<[u8]>>,
    /// The last few pages written whole: a searchset's entries (`fullUrl`, resource,
    /// `search`) for these resources, as bytes sent without copying (at most
    /// [`KEPT_PAGES`], each no larger than the rendered record and its entry shells).
    pages: Mutex<Vec<KeptPage>>,
}

/// Whole answers kept per page (see [`Rendered::answer`]): the same page asked for with a
/// URL or two (with and without `_count`, say).
const KEPT_ANSWERS: usize = 2;

/// A page's entries as written for one base URL and one selection of resources, and the
/// last few whole answers written around them.
struct KeptPage {
    base_url: String,
    indexes: Vec<usize>,
    entries: Bytes,
    /// `(key, pieces)`: an answer's pieces (its shell around `entries`, which it shares) by
    /// everything else it was written from.
    answers: Vec<(String, Vec<Bytes>)>,
}

/// Where in `pages` the page of `indexes` written for `base_url` is kept, if it is.
fn kept_at(pages: &[KeptPage], base_url: &str, indexes: &[usize]) -> Option<usize> {
    pages.iter().position(|p| p.base_url == base_url && p.indexes == indexes)
}

impl Rendered {
    pub(super) fn new(released: Arc<Released>, json: Vec<Box<[u8]>>) -> Rendered {
        Rendered { released, json, pages: Mutex::new(Vec::new()) }
    }

    /// The entries of a page of these resources (`indexes`, in order), each named
    /// `{base_url}/{type}/{id}`, as a searchset writes them: written once, then kept.
    fn page(self: &Arc<Self>, base_url: &str, indexes: Vec<usize>) -> Bytes {
        // A panic while the lock was held left at most a list of pages: still usable.
        let kept = |pages: &[KeptPage]| kept_at(pages, base_url, &indexes).map(|at| pages[at].entries.clone());
        if let Some(hit) = kept(&self.pages.lock().unwrap_or_else(PoisonError::into_inner)) {
            return hit;
        }
        let entries: Vec<(String, Out, SearchEntryMode)> = indexes
            .iter()
            .map(|&i| {
                let out = Out::rendered(self, i);
                (format!("{base_url}/{}/{}", out.resource_type(), out.id()), out, SearchEntryMode::Match)
            })
            .collect();
        let bytes = Bytes::from(entries_bytes(entries));
        let mut pages = self.pages.lock().unwrap_or_else(PoisonError::into_inner);
        if kept(&pages).is_none() {
            if pages.len() >= KEPT_PAGES {
                pages.remove(0);
            }
            pages.push(KeptPage {
                base_url: base_url.to_string(),
                indexes,
                entries: bytes.clone(),
                answers: Vec::new(),
            });
        }
        bytes
    }

    /// A whole answer around a page of these resources: the one written before for the
    /// same page and `key`, or `write` given the page's entries (then kept with the page).
    /// `key` must name everything else `write` puts in the answer.
    fn answer(
        self: &Arc<Self>,
        base_url: &str,
        indexes: Vec<usize>,
        key: String,
        write: impl FnOnce(Bytes) -> Vec<Bytes>,
    ) -> Vec<Bytes> {
        {
            let pages = self.pages.lock().unwrap_or_else(PoisonError::into_inner);
            if let Some(at) = kept_at(&pages, base_url, &indexes) {
                if let Some((_, pieces)) = pages[at].answers.iter().find(|(k, _)| *k == key) {
                    return pieces.clone();
                }
            }
        }
        let pieces = write(self.page(base_url, indexes.clone()));
        let mut pages = self.pages.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(at) = kept_at(&pages, base_url, &indexes) {
            let answers = &mut pages[at].answers;
            if !answers.iter().any(|(k, _)| *k == key) {
                if answers.len() >= KEPT_ANSWERS {
                    answers.remove(0);
                }
                answers.push((key, pieces.clone()));
            }
        }
        pieces
    }
}

/// One resource of an answer: as it goes out, either built for this answer or rendered
/// once for the decision it was released under.
#[derive(Debug)]
pub struct Out(Piece);

enum Piece {
    Value(Value),
    Rendered(Arc<Rendered>, usize),
    One(Arc<RenderedOne>),
}

impl std::fmt::Debug for Piece {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Piece::Value(_) => f.write_str("Value"),
            Piece::Rendered(_, i) => write!(f, "Rendered({i})"),
            Piece::One(one) => write!(f, "One({})", one.index),
        }
    }
}

/// One released resource as it goes out, serialized once for a decision kept to read one
/// resource (which renders nothing else): read again by id, it is sent as it was written.
pub(super) struct RenderedOne {
    /// Its place among the decision's released resources.
    pub(super) index: usize,
    resource_type: String,
    id: String,
    json: Box<[u8]>,
}

impl RenderedOne {
    /// `r` (as it goes out) at `index` of its decision's released resources.
    pub(super) fn new(index: usize, r: &Value) -> RenderedOne {
        RenderedOne {
            index,
            resource_type: crate::fhir::resource_type(r).unwrap_or_default().to_string(),
            id: crate::fhir::resource_id(r).unwrap_or_default().to_string(),
            json: serde_json::to_vec(r).unwrap_or_default().into_boxed_slice(),
        }
    }
}

impl Out {
    pub(super) fn value(v: Value) -> Out {
        Out(Piece::Value(v))
    }

    /// An OperationOutcome the answer carries (made by the renderer, not a record's).
    pub fn outcome(outcome: Value) -> Out {
        Out(Piece::Value(outcome))
    }

    pub(super) fn rendered(r: &Arc<Rendered>, index: usize) -> Out {
        Out(Piece::Rendered(r.clone(), index))
    }

    pub(super) fn rendered_one(one: Arc<RenderedOne>) -> Out {
        Out(Piece::One(one))
    }

    /// The resource as released (before attachment URLs are made the gateway's); none for
    /// one read by id alone and sent as written (it is on no page).
    pub(super) fn released(&self) -> Option<&Value> {
        match &self.0 {
            Piece::Value(v) => Some(v),
            Piece::Rendered(r, i) => Some(&r.released.resources()[*i]),
            Piece::One(_) => None,
        }
    }

    /// What names the resource (its type and id, which finishing does not change): a
    /// rendered one as the record holds it, so that naming it makes none of the release's
    /// finished copies.
    fn named(&self) -> Option<&Value> {
        match &self.0 {
            Piece::Value(v) => Some(v),
            Piece::Rendered(r, i) => r.released.unfinished_one(*i),
            Piece::One(_) => None,
        }
    }

    /// The resource to change before it goes out, when it is not rendered yet.
    pub(super) fn value_mut(&mut self) -> Option<&mut Value> {
        match &mut self.0 {
            Piece::Value(v) => Some(v),
            Piece::Rendered(..) | Piece::One(_) => None,
        }
    }

    /// A resource not rendered yet made ready to go out with `outward`; a rendered one
    /// already is.
    pub(super) fn outward_with(self, outward: impl FnOnce(Value) -> Value) -> Out {
        match self.0 {
            Piece::Value(v) => Out(Piece::Value(outward(v))),
            rendered => Out(rendered),
        }
    }

    /// The resource as it goes out, as a value (to be narrowed by `_summary`/`_elements`):
    /// a rendered one is read back from its bytes.
    pub fn into_value(self) -> Value {
        match self.0 {
            Piece::Value(v) => v,
            Piece::Rendered(r, i) => {
                serde_json::from_slice(&r.json[i]).unwrap_or_else(|_| r.released.resources()[i].clone())
            }
            Piece::One(one) => serde_json::from_slice(&one.json).unwrap_or_default(),
        }
    }

    /// The resource as it goes out, compact JSON (a rendered one as it was written).
    pub fn to_json(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.write_json(&mut out);
        out
    }

    pub fn resource_type(&self) -> &str {
        match &self.0 {
            Piece::One(one) => &one.resource_type,
            _ => self.named().and_then(crate::fhir::resource_type).unwrap_or(""),
        }
    }

    pub fn id(&self) -> &str {
        match &self.0 {
            Piece::One(one) => &one.id,
            _ => self.named().and_then(crate::fhir::resource_id).unwrap_or(""),
        }
    }
}

impl WriteJson for Out {
    fn write_json(&self, out: &mut Vec<u8>) {
        match &self.0 {
            Piece::Value(v) => v.write_json(out),
            Piece::Rendered(r, i) => out.extend_from_slice(&r.json[*i]),
            Piece::One(one) => out.extend_from_slice(&one.json),
        }
    }
}

/// One page of matches, the resources `_include`/`_revinclude` added to it (released ones
/// only), and what the caller should be told (warnings about missing sources, ignored
/// parameters, and the policy's notices).
#[derive(Debug)]
pub struct Matches {
    pub(super) resources: Vec<Out>,
    pub(super) included: Vec<Out>,
    pub(super) total: usize,
    pub(super) next_cursor: Option<String>,
    pub(super) warnings: Vec<Issue>,
}

impl Matches {
    /// How many resources match in all (what the viewer may see, not what the sources hold).
    pub fn total(&self) -> usize {
        self.total
    }

    /// The cursor of the next page, if there is one.
    pub fn next_cursor(&self) -> Option<&str> {
        self.next_cursor.as_deref()
    }

    pub fn warnings(&self) -> &[Issue] {
        &self.warnings
    }

    /// The whole answer for this page, when every resource on it went out as rendered for
    /// one kept decision and nothing was included: `write` is given the page's entries as
    /// bytes kept with that decision (each named `{base_url}/{type}/{id}`, `search.mode`
    /// `match`: exactly what writing this page's resources would give) the first time for
    /// `key`, then the same pieces are handed out again (at most [`KEPT_ANSWERS`] keys per
    /// page). `key` must name everything `write` adds to the entries (self and next links,
    /// total, warnings). Only the decision's own viewer gets them. None otherwise: the caller
    /// writes the answer.
    pub fn kept_answer(
        &self,
        base_url: &str,
        key: String,
        write: impl FnOnce(Bytes) -> Vec<Bytes>,
    ) -> Option<Vec<Bytes>> {
        let (rendered, indexes) = self.kept_selection()?;
        Some(rendered.answer(base_url, indexes, key, write))
    }

    /// The rendering every resource of this page went out as and their places in it, when
    /// there is one and nothing was included.
    fn kept_selection(&self) -> Option<(&Arc<Rendered>, Vec<usize>)> {
        if !self.included.is_empty() {
            return None;
        }
        let mut rendered: Option<&Arc<Rendered>> = None;
        let mut indexes = Vec::with_capacity(self.resources.len());
        for out in &self.resources {
            let Piece::Rendered(r, i) = &out.0 else { return None };
            match rendered {
                Some(first) if !Arc::ptr_eq(first, r) => return None,
                _ => rendered = Some(r),
            }
            indexes.push(*i);
        }
        Some((rendered?, indexes))
    }

    /// The page's resources and the included ones, taken out.
    pub fn into_parts(self) -> (Vec<Out>, Vec<Out>) {
        (self.resources, self.included)
    }
}

/// A patient's whole released record at once (portal pages, downloads, exports): the
/// resources in record order, the sources missing from it, and the notices it carries.
#[derive(Debug, Clone)]
pub struct WholeRecord {
    pub(super) patient_id: String,
    pub(super) resources: Vec<Value>,
    pub(super) missing: Vec<MissingSource>,
    /// The policy's notices (the withheld-notice for patient-facing viewers).
    pub(super) notices: Vec<Issue>,
    /// The attachments of `resources` the gateway serves (see `binary`).
    pub(super) documents: Vec<super::ReleasedAttachment>,
}

impl WholeRecord {
    /// The record's gateway patient id.
    pub fn patient_id(&self) -> &str {
        &self.patient_id
    }

    /// Every released resource, in record order.
    pub fn resources(&self) -> &[Value] {
        &self.resources
    }

    /// The sources that did not answer, as this viewer may be told of them.
    pub fn missing(&self) -> &[MissingSource] {
        &self.missing
    }

    /// The policy's notices (the withheld-notice for patient-facing viewers).
    pub fn notices(&self) -> &[Issue] {
        &self.notices
    }

    /// A record as if released, for renderers' unit tests.
    #[cfg(test)]
    pub fn for_test(
        patient_id: &str,
        resources: Vec<Value>,
        missing: Vec<MissingSource>,
        notices: Vec<Issue>,
    ) -> WholeRecord {
        WholeRecord { patient_id: patient_id.to_string(), resources, missing, notices, documents: Vec::new() }
    }

    /// The same record with `documents` released, for renderers' unit tests.
    #[cfg(test)]
    pub fn with_documents(mut self, documents: Vec<super::ReleasedAttachment>) -> WholeRecord {
        self.documents = documents;
        self
    }

    /// Drops the missing sources, for renderers' unit tests.
    #[cfg(test)]
    pub fn without_missing(mut self) -> WholeRecord {
        self.missing.clear();
        self
    }
}
