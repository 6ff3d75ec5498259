//! A stored export or download-job file as an HTTP response, streamed from storage
//! ([`Files`]) piece by piece: one byte range when the request asks for one (`206 Partial
//! Content`; several ranges are answered with the whole file, `200`; a range past the end
//! with `416`), gzip-compressed on the way when the client accepts it (`Accept-Encoding:
//! gzip`, as the Bulk Data IG lets a client ask) and no range was asked for. It never
//! holds a file in memory, and decides nothing about who may have it (the route checked
//! and logged that before calling here).

use crate::export::files::{Files, Piece};
use async_compression::tokio::bufread::GzipEncoder;
use axum::body::Body;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};

/// A file to send: its pieces end to end, its length and type.
pub struct StoredFile<'a> {
    pub files: &'a Files,
    pub pieces: Vec<Piece>,
    pub bytes: u64,
    pub content_type: &'static str,
    /// Whether gzip is worth offering (not for a zip).
    pub compressible: bool,
}

/// What the request's `Range` asks of a file of `len` bytes.
#[derive(Debug, PartialEq, Eq)]
enum Wanted {
    Whole,
    Part(u64, u64),
    Unsatisfiable,
}

fn wanted(headers: &HeaderMap, len: u64) -> Wanted {
    let Some(text) = headers.get(header::RANGE).and_then(|v| v.to_str().ok()) else { return Wanted::Whole };
    // A Range that does not parse is ignored, as RFC 9110 lets a server do.
    let Ok(parsed) = http_range_header::parse_range_header(text) else { return Wanted::Whole };
    match parsed.validate(len) {
        Err(_) => Wanted::Unsatisfiable,
        Ok(_) if len == 0 => Wanted::Unsatisfiable,
        Ok(ranges) => match ranges.as_slice() {
            [one] => Wanted::Part(*one.start(), *one.end()),
            // Several ranges: the whole file instead of a multipart answer.
            _ => Wanted::Whole,
        },
    }
}

/// Whether the client accepts gzip (`gzip` or `*` with a non-zero weight).
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers.get_all(header::ACCEPT_ENCODING).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).any(
        |coding| {
            let mut parts = coding.split(';');
            let name = parts.next().unwrap_or("").trim().to_ascii_lowercase();
            let weight = parts
                .find_map(|p| p.trim().strip_prefix("q=").map(|q| q.trim().parse::<f32>().unwrap_or(0.0)))
                .unwrap_or(1.0);
            (name == "gzip" || name == "x-gzip" || name == "*") && weight > 0.0
        },
    )
}

impl StoredFile<'_> {
    /// The response to a GET with `headers`.
    pub fn respond(self, headers: &HeaderMap) -> Response {
        let len = self.bytes;
        let (status, range) = match wanted(headers, len) {
            Wanted::Unsatisfiable => {
                let mut r = StatusCode::RANGE_NOT_SATISFIABLE.into_response();
                if let Ok(v) = HeaderValue::from_str(&format!("bytes */{len}")) {
                    r.headers_mut().insert(header::CONTENT_RANGE, v);
                }
                r.headers_mut().insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
                return r;
            }
            Wanted::Whole => (StatusCode::OK, 0..len),
            Wanted::Part(first, last) => (StatusCode::PARTIAL_CONTENT, first..last + 1),
        };
        let gzip = self.compressible && status == StatusCode::OK && accepts_gzip(headers);
        let sent = range.end - range.start;
        let stream = self.files.read(self.pieces, range.clone());
        let mut r = if gzip {
            let reader = tokio_util::io::StreamReader::new(stream);
            let encoded = GzipEncoder::new(tokio::io::BufReader::with_capacity(64 * 1024, reader));
            Body::from_stream(tokio_util::io::ReaderStream::with_capacity(encoded, 64 * 1024)).into_response()
        } else {
            Body::from_stream(stream).into_response()
        };
        *r.status_mut() = status;
        let h = r.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static(self.content_type));
        h.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        if self.compressible {
            h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
        }
        if gzip {
            h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
        } else {
            h.insert(header::CONTENT_LENGTH, HeaderValue::from(sent));
        }
        if status == StatusCode::PARTIAL_CONTENT {
            if let Ok(v) = HeaderValue::from_str(&format!("bytes {}-{}/{len}", range.start, range.end - 1)) {
                h.insert(header::CONTENT_RANGE, v);
            }
        }
        r
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with(name: header::HeaderName, value: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(name, HeaderValue::from_str(value).unwrap());
        h
    }

    #[test]
    fn ranges_are_read_as_rfc_9110_says() {
        let r = |v: &str| wanted(&with(header::RANGE, v), 100);
        assert_eq!(wanted(&HeaderMap::new(), 100), Wanted::Whole);
        assert_eq!(r("bytes=0-9"), Wanted::Part(0, 9));
        assert_eq!(r("bytes=90-"), Wanted::Part(90, 99));
        assert_eq!(r("bytes=-10"), Wanted::Part(90, 99));
        assert_eq!(r("bytes=95-200"), Wanted::Part(95, 99));
        assert_eq!(r("bytes=0-1,5-9"), Wanted::Whole, "several ranges: the whole file");
        assert_eq!(r("bytes=100-"), Wanted::Unsatisfiable);
        assert_eq!(r("bytes=200-300"), Wanted::Unsatisfiable);
        assert_eq!(r("pages=1-2"), Wanted::Whole, "not bytes: ignored");
        assert_eq!(r("bytes=x-y"), Wanted::Whole, "malformed: ignored");
        assert_eq!(wanted(&with(header::RANGE, "bytes=0-"), 0), Wanted::Unsatisfiable);
    }

    #[test]
    fn gzip_is_accepted_unless_weighed_zero() {
        let g = |v: &str| accepts_gzip(&with(header::ACCEPT_ENCODING, v));
        assert!(g("gzip") && g("deflate, gzip;q=0.5") && g("*") && g("GZIP"));
        assert!(!g("gzip;q=0") && !g("br") && !g("identity") && !accepts_gzip(&HeaderMap::new()));
    }
}
