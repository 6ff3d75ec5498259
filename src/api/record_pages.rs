//! The per-patient record pages at `/records`: the records menu, each record's summary and
//! sections, who accessed it, and the apps the account allowed (with revoke). Thin: each
//! handler checks the session, opens the record through `read::Reader` as the account's
//! view of it (the policy decides what is released), writes the access log entry before
//! answering (failing closed), and renders `portal::record_view`. A link id that is not the
//! signed-in account's answers exactly like one that does not exist.

use super::ApiState;
use super::extract::SignedIn;
use super::pages::{PageError, csrf_form, field, page, see_other};
use crate::auth::accounts::PatientLink;
use crate::auth::sessions::Session;
use crate::i18n::{t, tr};
use crate::portal::access_log;
use crate::portal::fhir_text;
use crate::portal::record_view::{RecordView, SECTIONS};
use crate::read::{ReadError, RecordChoice, Trail, Use, WholeRecord};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum_extra::extract::cookie::CookieJar;
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;

/// How many access-log entries the page lists.
const ACCESS_LOG_ROWS: i64 = 200;

pub fn router(state: Arc<ApiState>) -> Router {
    let mut router = Router::new()
        .route("/records", get(menu))
        .route("/records/{link}", get(home))
        .route("/records/{link}/access-log", get(access_log_page))
        .route("/records/{link}/documents/{id}", get(document))
        .route("/records/{link}/documents/{id}/readable", get(readable_document))
        .route("/records/{link}/apps", get(apps_page))
        .route("/records/{link}/apps/revoke", post(revoke_app));
    for (slug, _) in SECTIONS {
        router = router.route(
            &format!("/records/{{link}}/{slug}"),
            get(
                move |State(state): State<Arc<ApiState>>,
                      visitor: SignedIn,
                      ConnectInfo(from): ConnectInfo<SocketAddr>,
                      Path(link): Path<String>| async move {
                    section_page(state, visitor, from, link, slug).await
                },
            ),
        );
    }
    router.with_state(state)
}

/// Why a record page cannot be shown.
#[derive(Debug, thiserror::Error)]
pub(super) enum RecordPageError {
    /// Not one of the account's records (or no such link): the same answer either way.
    #[error("no such record page")]
    NotFound,
    /// One of the account's records, but the policy gives this account nothing of it now.
    #[error("the record is not available to this account now")]
    NotAvailable,
    /// The store, the record or the access log failed.
    #[error("something failed on our side")]
    Unavailable,
}

/// A plain message page that keeps the signed-in frame (sign-out button).
pub(super) fn message(status: StatusCode, s: &Session, title: &str, text: &str) -> Response {
    PageError::new(status, title, text).signed_in(s).into_response()
}

impl From<RecordPageError> for PageError {
    fn from(e: RecordPageError) -> PageError {
        match e {
            RecordPageError::NotFound => {
                PageError::new(StatusCode::NOT_FOUND, t("error-page-not-found-title"), t("error-page-not-found"))
            }
            RecordPageError::NotAvailable => PageError::new(
                StatusCode::FORBIDDEN,
                t("error-record-not-available-title"),
                t("error-record-not-available"),
            ),
            RecordPageError::Unavailable => PageError::unavailable(),
        }
    }
}

/// A record page's error, in the signed-in frame.
pub(super) fn failure(e: RecordPageError, s: &Session) -> Response {
    PageError::from(e).signed_in(s).into_response()
}

/// A record opened by the signed-in account: the link, the released record, and every
/// record the account may open (for the switcher).
pub(super) struct Opened {
    pub(super) link: PatientLink,
    /// The account's view of the record (the viewer the policy decided for).
    pub(super) access: crate::auth::Access,
    pub(super) record: WholeRecord,
    pub(super) records: Vec<RecordChoice>,
}

/// Opens `link_id` for `account_id` as the account's view of that record, and writes the
/// page view to the access log before anything is shown.
/// A signed-in visitor's view of one of their records (the page view already in the access
/// log), or the response to send instead: to sign in, or the not-found/refused/unavailable page.
pub(super) async fn open_page(
    state: &ApiState,
    visitor: SignedIn,
    link: &str,
    what: String,
    from: SocketAddr,
) -> Result<(CookieJar, Session, String, Opened), Response> {
    let SignedIn { jar, session: s, account } = visitor;
    match open(state, &account, link, what, from).await {
        Ok(opened) => Ok((jar, s, account, opened)),
        Err(e) => Err((jar, failure(e, &s)).into_response()),
    }
}

/// The account's record link `link_id` (the same answer for another account's link and a
/// made-up one).
pub(super) async fn own_link(
    state: &ApiState,
    account_id: &str,
    link_id: &str,
) -> Result<PatientLink, RecordPageError> {
    links_of(state, account_id).await?.into_iter().find(|l| l.id == link_id).ok_or(RecordPageError::NotFound)
}

/// The records the account may open, named as the account may see them (every page's
/// record picker, the authorization's and the account page's included).
pub(super) async fn choices(state: &ApiState, account_id: &str) -> Result<Vec<RecordChoice>, RecordPageError> {
    Ok(state.reader.choices(account_id, links_of(state, account_id).await?).await)
}

async fn links_of(state: &ApiState, account_id: &str) -> Result<Vec<PatientLink>, RecordPageError> {
    state.accounts.links(account_id).await.map_err(|e| {
        tracing::error!(error = %e, "the account's record links are unavailable");
        RecordPageError::Unavailable
    })
}

async fn open(
    state: &ApiState,
    account_id: &str,
    link_id: &str,
    what: String,
    from: SocketAddr,
) -> Result<Opened, RecordPageError> {
    let link = own_link(state, account_id, link_id).await?;
    let access = crate::auth::access_for_link(account_id, &link);
    let trail = Trail::new(what, Some(from.ip()));
    let record = state.reader.own_record(&access, &trail, Use::Page).await.map_err(|e| match e {
        ReadError::NotFound | ReadError::Forbidden(_) | ReadError::InsufficientScope(_) => {
            RecordPageError::NotAvailable
        }
        _ => RecordPageError::Unavailable,
    })?;
    let records = choices(state, account_id).await?;
    Ok(Opened { link, access, record, records })
}

/// The context every record page shares: whose record, the switcher, the section menu,
/// the source banner and the withheld-notice.
pub(super) fn frame(s: &Session, opened: &Opened, view: &RecordView, current: &str, title: &str) -> Value {
    let choice = opened.records.iter().find(|r| r.id == opened.link.id);
    let name = view.whose.name.clone().or_else(|| choice.map(|c| c.name.clone()));
    let sections: Vec<Value> = SECTIONS
        .iter()
        .map(|(slug, key)| json!({"slug": slug, "title": t(key), "count": view.count(slug), "current": *slug == current}))
        .collect();
    let records: Vec<Value> = opened
        .records
        .iter()
        .map(|r| json!({"id": r.id, "name": r.name, "relation": r.relation, "current": r.id == opened.link.id}))
        .collect();
    json!({
        "title": title,
        "wide": true,
        "signed_in": true,
        "csrf": s.csrf_token,
        "link": opened.link.id,
        "current": current,
        "whose": {
            "name": name,
            "age": view.whose.age,
            "deceased": view.whose.deceased,
            "is_self": opened.link.relationship == "SELF",
            "relation": choice.map(|c| c.relation.clone()),
        },
        "records": records,
        "sections": sections,
        "missing": view.missing,
        "notices": view.notices,
    })
}

pub(super) fn render(template: &str, mut context: Value, extra: Value) -> Response {
    if let (Some(c), Value::Object(e)) = (context.as_object_mut(), extra) {
        c.extend(e);
    }
    page(StatusCode::OK, crate::portal::render(template, context), None)
}

/// `GET /records`: the records menu (straight to the record when there is only one).
async fn menu(State(state): State<Arc<ApiState>>, visitor: SignedIn) -> Response {
    let SignedIn { jar, session: s, account } = visitor;
    let Ok(records) = choices(&state, &account).await else {
        return failure(RecordPageError::Unavailable, &s);
    };
    let response = match records.as_slice() {
        [] => see_other("/enroll"),
        [one] => see_other(&format!("/records/{}", one.id)),
        _ => page(
            StatusCode::OK,
            crate::portal::render(
                "records.html",
                json!({"title": t("records-title"), "records": records, "signed_in": true, "csrf": s.csrf_token}),
            ),
            None,
        ),
    };
    (jar, response).into_response()
}

/// `GET /records/{link}`: the summary.
async fn home(
    State(state): State<Arc<ApiState>>,
    visitor: SignedIn,
    ConnectInfo(from): ConnectInfo<SocketAddr>,
    Path(link): Path<String>,
) -> Response {
    let (jar, s, _, opened) = match open_page(&state, visitor, &link, format!("/records/{link}"), from).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let view = RecordView::of(&opened.record, state.clock.now());
    // Clinicians, and the organizations one can call.
    let contacts: Vec<_> = view
        .care_team
        .people
        .iter()
        .chain(view.care_team.organizations.iter().filter(|o| o.details.iter().any(|d| d.key == "detail-phone")))
        .collect();
    // A large record's download is prepared as a job (started with a form, never a link).
    let large = state.exports.downloads().is_large(opened.record.resources().len());
    let extra = json!({"upcoming": view.upcoming, "recent": view.recent, "contacts": contacts, "large": large});
    (jar, render("record_home.html", frame(&s, &opened, &view, "home", &t("section-summary")), extra)).into_response()
}

/// `GET /records/{link}/documents/{id}`: the content of a document of the record (a PDF
/// opens, other formats are saved), read through the reader as the account's view of the
/// record — content no released item points at is the page-not-found of a made-up address.
async fn document(
    State(state): State<Arc<ApiState>>,
    visitor: SignedIn,
    ConnectInfo(from): ConnectInfo<SocketAddr>,
    Path((link, id)): Path<(String, String)>,
) -> Response {
    let SignedIn { jar, session: s, account } = visitor;
    let what = format!("/records/{link}/documents/{id}");
    let response = match content_of(&state, &account, &s, &link, &id, what, from).await {
        Ok(content) => super::binary_routes::raw(content),
        Err(refused) => refused,
    };
    (jar, response).into_response()
}

/// The largest document read onto a page.
const MAX_READABLE_BYTES: usize = 4 * 1024 * 1024;

/// `GET /records/{link}/documents/{id}/readable`: a C-CDA document's title and sections as
/// text on a page (the same decision and log entry as opening it); anything else is opened.
async fn readable_document(
    State(state): State<Arc<ApiState>>,
    visitor: SignedIn,
    ConnectInfo(from): ConnectInfo<SocketAddr>,
    Path((link, id)): Path<(String, String)>,
) -> Response {
    use futures::StreamExt;
    let SignedIn { jar, session: s, account } = visitor;
    let what = format!("/records/{link}/documents/{id}/readable");
    let content = match content_of(&state, &account, &s, &link, &id, what, from).await {
        Ok(content) => content,
        Err(refused) => return (jar, refused).into_response(),
    };
    if !crate::portal::documents_view::is_xml(Some(content.content_type())) {
        return (jar, see_other(&format!("/records/{link}/documents/{id}"))).into_response();
    }
    let mut bytes = Vec::new();
    let mut stream = content.into_stream();
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(chunk) if bytes.len() + chunk.len() <= MAX_READABLE_BYTES => bytes.extend_from_slice(&chunk),
            _ => return (jar, see_other(&format!("/records/{link}/documents/{id}"))).into_response(),
        }
    }
    let Some(doc) = crate::portal::documents_view::readable_cda(&String::from_utf8_lossy(&bytes)) else {
        return (jar, see_other(&format!("/records/{link}/documents/{id}"))).into_response();
    };
    let title = doc.title.clone().unwrap_or_else(|| t("document-untitled"));
    let context = json!({"title": title, "doc": doc, "link": link, "id": id, "signed_in": true, "csrf": s.csrf_token});
    (jar, page(StatusCode::OK, crate::portal::render("record_document.html", context), None)).into_response()
}

/// A document's content through the reader, as the account's view of the record `link_id`;
/// the page to answer instead when it is not released (the page-not-found of a made-up
/// address) or cannot be had.
async fn content_of(
    state: &ApiState,
    account: &str,
    s: &Session,
    link_id: &str,
    id: &str,
    what: String,
    from: SocketAddr,
) -> Result<crate::read::BinaryContent, Response> {
    let link = own_link(state, account, link_id).await.map_err(|e| failure(e, s))?;
    let access = crate::auth::access_for_link(account, &link);
    let trail = Trail::new(what, Some(from.ip()));
    state.reader.binary(&access, &trail, id).await.map_err(|e| match e {
        ReadError::NotFound | ReadError::Forbidden(_) | ReadError::InsufficientScope(_) => {
            failure(RecordPageError::NotFound, s)
        }
        e => {
            tracing::warn!(error = %e, "a document could not be opened");
            failure(RecordPageError::Unavailable, s)
        }
    })
}

/// `GET /records/{link}/{section}`.
async fn section_page(
    state: Arc<ApiState>,
    visitor: SignedIn,
    from: SocketAddr,
    link: String,
    slug: &'static str,
) -> Response {
    let (jar, s, _, opened) = match open_page(&state, visitor, &link, format!("/records/{link}/{slug}"), from).await {
        Ok(v) => v,
        Err(r) => return r,
    };
    let view = RecordView::of(&opened.record, state.clock.now());
    let title = t(SECTIONS.iter().find(|(x, _)| *x == slug).map_or("section-record", |(_, key)| key));
    let context = frame(&s, &opened, &view, slug, &title);
    let response = match slug {
        "results" => {
            let corrections = super::rights_pages::beside_items(&state, &opened).await;
            render("record_results.html", context, json!({"results": view.results, "corrections": corrections}))
        }
        "care-team" => render("record_care_team.html", context, json!({"care_team": view.care_team})),
        _ => {
            let items = view.items(slug).unwrap_or_default();
            let empty = tr("section-empty", &[("section", title.as_str().into())]);
            // Accepted corrections beside their items, and a way to ask for one.
            let corrections = super::rights_pages::beside_items(&state, &opened).await;
            let extra = json!({"heading": title, "items": items, "empty": empty,
                               "corrections": corrections, "correctable": true});
            render("record_list.html", context, extra)
        }
    };
    (jar, response).into_response()
}

/// `GET /records/{link}/access-log`: who accessed this record. Shown when the policy lets
/// the account see the record at all (the same decision as every other page); a proxy does
/// not see the patient's own activity.
async fn access_log_page(
    State(state): State<Arc<ApiState>>,
    visitor: SignedIn,
    ConnectInfo(from): ConnectInfo<SocketAddr>,
    Path(link): Path<String>,
) -> Response {
    let (jar, s, account, opened) =
        match open_page(&state, visitor, &link, format!("/records/{link}/access-log"), from).await {
            Ok(v) => v,
            Err(r) => return r,
        };
    let records = match state.reader.access_log_of(&opened.access, &opened.record, ACCESS_LOG_ROWS).await {
        Ok(r) if opened.link.relationship != "SELF" => access_log::for_proxy(r),
        Ok(r) => r,
        Err(e) => {
            tracing::error!(error = %e, "access log read failed");
            return (jar, failure(RecordPageError::Unavailable, &s)).into_response();
        }
    };
    let names = match names(&state, &account, &records).await {
        Ok(n) => n,
        Err(e) => return (jar, failure(e, &s)).into_response(),
    };
    let rows = access_log::rows(&records, &names);
    let view = RecordView::of(&opened.record, state.clock.now());
    let context = frame(&s, &opened, &view, "access-log", &t("access-log-heading"));
    (jar, render("record_access_log.html", context, json!({"rows": rows}))).into_response()
}

/// The display names of the accounts and apps in the log.
async fn names(
    state: &ApiState,
    me: &str,
    records: &[crate::audit::AuditRecord],
) -> Result<access_log::Names, RecordPageError> {
    let (accounts, apps) = access_log::actors(records);
    let mut names = access_log::Names { me: me.to_string(), ..Default::default() };
    for a in accounts {
        if let Some(n) = state.accounts.display_name(&a).await.map_err(|_| RecordPageError::Unavailable)? {
            names.accounts.insert(a, n);
        }
    }
    for c in apps {
        if let Some(client) = state.oauth.clients.client(&c).await.map_err(|_| RecordPageError::Unavailable)? {
            names.apps.insert(c, client.name.clone());
        }
    }
    Ok(names)
}

/// `GET /records/{link}/apps`: the apps this account allowed, with a revoke button each.
async fn apps_page(
    State(state): State<Arc<ApiState>>,
    visitor: SignedIn,
    ConnectInfo(from): ConnectInfo<SocketAddr>,
    Path(link): Path<String>,
) -> Response {
    let (jar, s, account, opened) = match open_page(&state, visitor, &link, format!("/records/{link}/apps"), from).await
    {
        Ok(v) => v,
        Err(r) => return r,
    };
    let apps = match state.grants.of_account(&account).await {
        Ok(a) => a,
        Err(e) => {
            tracing::error!(error = %e, "grants read failed");
            return (jar, failure(RecordPageError::Unavailable, &s)).into_response();
        }
    };
    let apps: Vec<Value> = apps
        .into_iter()
        .map(|a| {
            let texts: Vec<String> = a
                .scopes
                .split_whitespace()
                .filter(|s| *s != "launch/patient" && *s != "fhirUser")
                .map(crate::auth::authorize::describe)
                .collect();
            json!({
                "grant_id": a.grant_id,
                "app_name": a.app_name,
                "scope_texts": texts,
                "granted": fhir_text::date(&a.granted_at),
                "last_used": a.last_used.as_deref().map(fhir_text::date_time),
            })
        })
        .collect();
    let view = RecordView::of(&opened.record, state.clock.now());
    let context = frame(&s, &opened, &view, "apps", &t("apps-allowed"));
    (jar, render("record_apps.html", context, json!({"apps": apps}))).into_response()
}

/// `POST /records/{link}/apps/revoke`: the app's tokens stop working at once; back to the
/// apps page.
async fn revoke_app(
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
    let result = async {
        let links = state.accounts.links(&account).await.map_err(|_| RecordPageError::Unavailable)?;
        if !links.iter().any(|l| l.id == link) {
            return Err(RecordPageError::NotFound);
        }
        let grant_id = field(&form, "grant_id").unwrap_or_default();
        if !state.grants.belongs_to(&grant_id, &account).await.map_err(|_| RecordPageError::Unavailable)? {
            return Ok(false);
        }
        state.oauth.tokens.revoke_grant(&grant_id).await.map_err(|_| RecordPageError::Unavailable)?;
        // The app's export jobs end with its grant.
        state.exports.end_basis(None, Some(&grant_id)).await.map_err(|e| {
            tracing::error!(error = %e, "cannot cancel the revoked grant's jobs");
            RecordPageError::Unavailable
        })?;
        Ok(true)
    }
    .await;
    let response = match result {
        Ok(true) => see_other(&format!("/records/{link}/apps")),
        Ok(false) => message(StatusCode::BAD_REQUEST, &s, &t("error-bad-request-title"), &t("app-not-yours")),
        Err(e) => failure(e, &s),
    };
    (jar, response).into_response()
}
