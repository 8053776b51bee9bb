//! The OpenID Connect provider's HTTP side (DESIGN.md §2.7), thin like the OpenID 2.0 one:
//! the discovery document (Discovery 1.0 §4) and the JWK Set (RFC 7517 §5) so far.
//!
//! Both are public, the same for everyone, and fetched by relying-party libraries (some in
//! browsers): they allow any origin and may be cached. The JWKS is cached for less than the
//! overlap a retired key stays published after its last token (`oidc_key_overlap_margin_secs`,
//! 600 s by default), and a relying party that meets an unknown `kid` fetches it again.

use axum::extract::State;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

use super::discovery::{ProviderMetadata, issuer};
use crate::web::AppState;

/// How long relying parties may cache the discovery document: it changes only with the
/// configuration.
const DISCOVERY_CACHE: &str = "public, max-age=3600";
/// How long relying parties may cache the JWKS.
const JWKS_CACHE: &str = "public, max-age=300";

fn json_response(body: &impl Serialize, cache_control: &'static str) -> Response {
    match serde_json::to_vec(body) {
        Ok(bytes) => {
            let mut response = (StatusCode::OK, bytes).into_response();
            let headers = response.headers_mut();
            headers.insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            headers.insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static(cache_control),
            );
            headers.insert(
                header::ACCESS_CONTROL_ALLOW_ORIGIN,
                HeaderValue::from_static("*"),
            );
            headers.insert(
                header::X_CONTENT_TYPE_OPTIONS,
                HeaderValue::from_static("nosniff"),
            );
            response
        }
        Err(e) => unavailable(&format!("cannot serialise the document: {e}")),
    }
}

/// 503 with a JSON body; the cause is logged, not shown.
fn unavailable(cause: &str) -> Response {
    tracing::error!(error = %cause, "OpenID Connect endpoint");
    let mut response = (
        StatusCode::SERVICE_UNAVAILABLE,
        axum::Json(serde_json::json!({
            "error": "temporarily_unavailable",
            "error_description": "the OpenID Provider is not ready; try again shortly",
        })),
    )
        .into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from_static("5"));
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// `GET /.well-known/openid-configuration`: OpenID Provider Metadata (Discovery 1.0 §4.2).
pub async fn oidc_discovery_get(State(state): State<AppState>) -> Response {
    let doc = ProviderMetadata::new(&issuer(&state.ctx.config.public_url));
    json_response(&doc, DISCOVERY_CACHE)
}

/// `GET /jwks`: the public signing keys, active and recently retired (RFC 7517 §5).
pub async fn oidc_jwks_get(State(state): State<AppState>) -> Response {
    let jwks = state.key_ring.jwks();
    if jwks.keys.is_empty() {
        // A state built without loading the keys (`AppState::new`, a BSF-only process).
        return unavailable("the signing keys are not loaded in this process");
    }
    json_response(jwks.as_ref(), JWKS_CACHE)
}
