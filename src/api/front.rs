//! The one middleware in front of every route: the request is counted and timed by its
//! route (metrics), refused when its client address is over a per-address limit, run in its
//! language, and refused when its path holds a control character — in that order, each
//! concern's code in its own module. One layer, because axum clones and boxes a `from_fn`
//! layer's inner service for every request: four such layers cloned the rest of the stack
//! four times per request. It never reads a body or a query string.

use super::{language, metrics, rate_limit, text, ApiState};
use axum::extract::{Request, State};
use axum::middleware::Next;
use axum::response::Response;
use std::sync::Arc;

pub async fn front(State(state): State<Arc<ApiState>>, request: Request, next: Next) -> Response {
    let tracked = metrics::Tracked::start(&request);
    let response = match rate_limit::per_ip(&state, &request) {
        Some(refused) => refused,
        None => {
            language::choose(request, |request| async move {
                match text::refuse_control_paths(&request) {
                    Some(refused) => refused,
                    None => next.run(request).await,
                }
            })
            .await
        }
    };
    tracked.finish(&state, &response);
    response
}
