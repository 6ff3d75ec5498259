//! The portal's share pages at `/records/{link}/share`: the form to share chosen sections
//! of the record (label, optional passcode, required expiry), the links made so far with
//! how often each was opened (and revoke), and the page showing a new link and its QR code
//! once. Thin: session and CSRF, then `share::Shares`; the snapshot is the account's view of
//! the record, through the reader. A link id that is not the account's answers like a
//! made-up one.

use super::ApiState;
use super::extract::SignedIn;
use super::pages::{csrf_form, field, page, see_other};
use super::record_pages::{RecordPageError, failure, frame, open_page, own_link, render};
use super::share_routes::described;
use crate::auth::sessions::Session;
use crate::i18n::t;
use crate::portal::record_view::RecordView;
use crate::read::{ReadError, Trail};
use crate::share::{ShareError, ShareRequest, snapshot};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;

/// How long a link may work, in days (the first is the default; words in `lifetime_words`).
const LIFETIMES: &[i64] = &[30, 1, 7, 90, 365];

pub fn router(state: Arc<ApiState>) -> Router {
    Router::new()
        .route("/records/{link}/share", get(share_page).post(make))
        .route("/records/{link}/share/revoke", post(revoke))
        .with_state(state)
}

fn choices() -> Vec<Value> {
    snapshot::SECTIONS.iter().map(|(name, _, _)| json!({"name": name, "words": section_words(name)})).collect()
}

fn lifetimes() -> Vec<Value> {
    LIFETIMES.iter().map(|days| json!({"days": days, "words": lifetime_words(*days)})).collect()
}

/// A section's name in the page's language (the JSON API keeps `snapshot::words`).
fn section_words(section: &str) -> String {
    let key = match section {
        "allergies" => "section-allergies",
        "immunizations" => "section-immunizations",
        "medications" => "section-medications",
        "problems" => "section-health-problems",
        "results" => "section-test-results",
        "visits" => "section-visits",
        "procedures" => "section-procedures",
        "documents" => "section-documents",
        "everything" => "section-everything-you-see",
        other => return snapshot::words(other).to_string(),
    };
    t(key)
}

/// Why the chosen sections cannot be shared, in the page's language.
fn sections_problem(e: &snapshot::SnapshotError) -> String {
    match e {
        snapshot::SnapshotError::NoSection => t("share-problem-no-section"),
        snapshot::SnapshotError::UnknownSection(name) => {
            crate::i18n::tr("share-problem-unknown-section", &[("section", name.as_str().into())])
        }
    }
}

/// How long a link works, in the page's language.
fn lifetime_words(days: i64) -> String {
    match days {
        1 => t("share-for-1-day"),
        7 => t("share-for-1-week"),
        30 => t("share-for-30-days"),
        90 => t("share-for-3-months"),
        _ => t("share-for-1-year"),
    }
}

/// `GET /records/{link}/share`.
async fn share_page(
    State(state): State<Arc<ApiState>>,
    visitor: SignedIn,
    ConnectInfo(from): ConnectInfo<SocketAddr>,
    Path(link): Path<String>,
) -> Response {
    let (jar, s, _, opened) = match open_page(&state, visitor, &link, format!("/records/{link}/share"), from).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let links = match state.shares.list(&link).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(error = %e, "share links unavailable");
            return (jar, failure(RecordPageError::Unavailable, &s)).into_response();
        }
    };
    let now = chrono::Utc::now();
    let links: Vec<Value> = links
        .iter()
        .map(|l| {
            let mut d = described(l, now);
            d["expires_words"] = crate::portal::fhir_text::date_time(&l.expires_at).into();
            d["sectionWords"] = l.sections.iter().map(|x| section_words(x)).collect::<Vec<_>>().into();
            d
        })
        .collect();
    let view = RecordView::of(&opened.record, now);
    let context = frame(&s, &opened, &view, "share", &t("share-title"));
    let extra = json!({"choices": choices(), "lifetimes": lifetimes(), "links": links, "message": null});
    (jar, render("record_share.html", context, extra)).into_response()
}

/// A plain page for an error of the share form (in the signed-in frame).
fn problem(s: &Session, link: &str, status: StatusCode, text: &str) -> Response {
    let context = json!({"title": t("share-title"), "signed_in": true, "csrf": s.csrf_token, "link": link,
                         "made": null, "message": text});
    page(status, crate::portal::render("share_made.html", context), None)
}

/// `POST /records/{link}/share`: makes the link and shows it, with its QR code, once.
async fn make(
    State(state): State<Arc<ApiState>>,
    visitor: SignedIn,
    ConnectInfo(from): ConnectInfo<SocketAddr>,
    Path(link): Path<String>,
    body: Bytes,
) -> Response {
    let SignedIn { jar, session: s, account } = visitor;
    let form = match csrf_form(&s, &body) {
        Ok(form) => form,
        Err(e) => return (jar, e).into_response(),
    };
    let record_link = match own_link(&state, &account, &link).await {
        Ok(l) => l,
        Err(e) => return (jar, failure(e, &s)).into_response(),
    };
    let access = crate::auth::access_for_link(&account, &record_link);
    let days = field(&form, "days").and_then(|d| d.parse::<i64>().ok()).filter(|d| LIFETIMES.contains(d));
    let Some(days) = days else {
        return (jar, problem(&s, &link, StatusCode::BAD_REQUEST, &t("share-problem-days"))).into_response();
    };
    let now = chrono::Utc::now();
    let passcode = field(&form, "passcode").filter(|p| !p.is_empty());
    let req = ShareRequest {
        sections: form.iter().filter(|(k, _)| k == "section").map(|(_, v)| v.clone()).collect(),
        label: field(&form, "label").unwrap_or_default(),
        passcode,
        expires_at: now + chrono::Duration::days(days),
    };
    let trail = Trail::new(format!("/records/{link}/share"), Some(from.ip()));
    let response = match state.shares.create(&state.reader, &access, &trail, &req, now).await {
        Ok(made) => {
            let context = json!({"title": t("share-made-title"), "signed_in": true, "csrf": s.csrf_token, "link": link,
                                 "made": made, "qr": made.qr_svg, "message": null,
                                 "expires_words": crate::portal::fhir_text::date_time(&made.expires_at),
                                 "section_words": made.sections.iter().map(|x| section_words(x)).collect::<Vec<_>>()});
            page(StatusCode::OK, crate::portal::render("share_made.html", context), None)
        }
        Err(ShareError::Invalid(m)) => problem(&s, &link, StatusCode::BAD_REQUEST, &m),
        Err(ShareError::Sections(e)) => problem(&s, &link, StatusCode::BAD_REQUEST, &sections_problem(&e)),
        Err(ShareError::Read(ReadError::NotFound | ReadError::Forbidden(_))) => {
            failure(RecordPageError::NotAvailable, &s)
        }
        Err(ShareError::TooMany { retry_after }) => {
            super::pages::PageError::too_many(retry_after).signed_in(&s).into_response()
        }
        Err(e) => {
            tracing::error!(error = %e, "a share link could not be made");
            failure(RecordPageError::Unavailable, &s)
        }
    };
    (jar, response).into_response()
}

/// `POST /records/{link}/share/revoke`: the link stops at once; back to the share page.
async fn revoke(
    State(state): State<Arc<ApiState>>,
    visitor: SignedIn,
    Path(link): Path<String>,
    body: Bytes,
) -> Response {
    let SignedIn { jar, session: s, account } = visitor;
    let form = match csrf_form(&s, &body) {
        Ok(form) => form,
        Err(e) => return (jar, e).into_response(),
    };
    if let Err(e) = own_link(&state, &account, &link).await {
        return (jar, failure(e, &s)).into_response();
    }
    let id = field(&form, "id").unwrap_or_default();
    let response = match state.shares.revoke(&link, &id, chrono::Utc::now()).await {
        Ok(()) | Err(ShareError::Gone) => see_other(&format!("/records/{link}/share")),
        Err(e) => {
            tracing::error!(error = %e, "a share link could not be revoked");
            failure(RecordPageError::Unavailable, &s)
        }
    };
    (jar, response).into_response()
}
