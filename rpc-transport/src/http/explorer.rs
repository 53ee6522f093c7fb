//! Discovery over HTTP: `GET /openrpc.json`, the OpenRPC document
//! `rpc.discover` answers, and the explorer page at `GET /` for a browser
//! (a request that accepts `text/html`; other clients keep the JSON index).
//!
//! The page is one self-contained HTML document: its CSS and JS are
//! embedded in the binary (`explorer/`), with no CDN and no build step. It
//! reads `rpc.discover` through `POST /rpc`, calls methods the same way,
//! and polls `/metrics` every second for its live panel. Every request it
//! makes carries the Basic password the browser was given for the page.

use std::sync::{Arc, LazyLock};

use axum::extract::State;
use axum::http::header::{ACCEPT, CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};

use super::Gateway;
use super::ops;
use super::reply::JSON;

/// The page, its style and script put in place once.
static PAGE: LazyLock<String> = LazyLock::new(|| {
    include_str!("explorer/index.html")
        .replacen("/*CSS*/", include_str!("explorer/explorer.css"), 1)
        .replacen("/*JS*/", include_str!("explorer/explorer.js"), 1)
});

/// `GET /`: the explorer page for a browser, else the JSON index.
pub(crate) async fn index(state: State<Arc<Gateway>>, headers: HeaderMap) -> Response {
    if wants_html(&headers) {
        page().await
    } else {
        ops::index(state).await
    }
}

/// Whether the request's `Accept` names `text/html` (a browser's does).
fn wants_html(headers: &HeaderMap) -> bool {
    headers
        .get_all(ACCEPT)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|media| media.split(';').next().unwrap_or("").trim() == "text/html")
}

/// The explorer page.
async fn page() -> Response {
    let html = HeaderValue::from_static("text/html; charset=utf-8");
    let fresh = HeaderValue::from_static("no-cache");
    (
        [(CONTENT_TYPE, html), (CACHE_CONTROL, fresh)],
        PAGE.as_str(),
    )
        .into_response()
}

/// `GET /openrpc.json`: the OpenRPC document of the gateway's services.
pub(crate) async fn openrpc(State(gateway): State<Arc<Gateway>>) -> Response {
    let document = gateway.registry.openrpc();
    ([(CONTENT_TYPE, JSON)], document.to_string()).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_has_its_style_and_script_inline() {
        assert!(!PAGE.contains("/*CSS*/") && !PAGE.contains("/*JS*/"));
        assert!(PAGE.contains("rpc.discover") && PAGE.contains("--accent"));
        assert!(
            !PAGE.contains("http://") && !PAGE.contains("https://"),
            "no network"
        );
    }

    #[test]
    fn browsers_get_the_page_and_others_the_index() {
        let mut headers = HeaderMap::new();
        assert!(!wants_html(&headers));
        headers.insert(ACCEPT, HeaderValue::from_static("application/json"));
        assert!(!wants_html(&headers));
        headers.insert(
            ACCEPT,
            HeaderValue::from_static("text/html,application/xhtml+xml;q=0.9,*/*;q=0.8"),
        );
        assert!(wants_html(&headers));
    }
}
