//! The pages a person sees (askama templates in `templates/`), and the headers every page
//! carries: a strict Content-Security-Policy that forbids framing, no referrer to other
//! sites, no content sniffing, and no caching of pages that hold a CSRF token.

use askama::Template;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// The name people see for the operator on every page.
pub const OPERATOR: &str = "Your mobile operator";

const CSS: &str = include_str!("../../static/akaid.css");

#[derive(Debug, Template)]
#[template(path = "ua_challenge.html")]
pub struct UaChallengePage {
    pub operator: &'static str,
}

#[derive(Debug, Template)]
#[template(path = "sim_needed.html")]
pub struct SimNeededPage<'a> {
    pub operator: &'static str,
    pub site: &'a str,
}

#[derive(Template)]
#[template(path = "consent.html")]
pub struct ConsentPage<'a> {
    pub operator: &'static str,
    pub site: &'a str,
    pub site_host: &'a str,
    pub shared: Vec<String>,
    pub action: &'a str,
    pub csrf: &'a str,
    pub request_id: &'a str,
}

#[derive(Debug, Template)]
#[template(path = "error.html")]
pub struct ErrorPage<'a> {
    pub operator: &'static str,
    pub title: &'a str,
    pub what_happened: &'a str,
    pub what_to_do: &'a str,
}

/// One relying party on the account page.
#[derive(Debug)]
pub struct AllowedSite {
    pub relying_party: String,
    pub name: String,
    pub host: String,
    pub shared: Vec<String>,
    pub since: String,
}

#[derive(Template)]
#[template(path = "account.html")]
pub struct AccountPage<'a> {
    pub operator: &'static str,
    pub sites: Vec<AllowedSite>,
    pub csrf: &'a str,
}

impl std::fmt::Debug for AccountPage<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AccountPage")
            .field("sites", &self.sites)
            .field("csrf", &"[redacted]")
            .finish_non_exhaustive()
    }
}

#[derive(Template)]
#[template(path = "logout_confirm.html")]
pub struct LogoutConfirmPage<'a> {
    pub operator: &'static str,
    pub csrf: &'a str,
    pub fields: Vec<(String, String)>,
}

impl std::fmt::Debug for LogoutConfirmPage<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogoutConfirmPage")
            .field("csrf", &"[redacted]")
            .field("fields", &self.fields)
            .finish()
    }
}

#[derive(Debug, Template)]
#[template(path = "self_post.html")]
pub struct SelfPostPage<'a> {
    pub operator: &'static str,
    pub site_host: &'a str,
    pub action: &'a str,
    pub fields: Vec<(String, String)>,
}

impl std::fmt::Debug for ConsentPage<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsentPage")
            .field("site", &self.site)
            .field("shared", &self.shared)
            .field("csrf", &"[redacted]")
            .finish_non_exhaustive()
    }
}

/// An HTML response with the security headers. `form_action` names the origins a form on
/// the page may post to besides our own (the relying party's, for the self-posting form and
/// for the redirect that follows the consent POST: DESIGN.md §2.7).
pub fn html(status: StatusCode, page: &impl Template, form_action: Option<&str>) -> Response {
    match page.render() {
        Ok(body) => {
            let mut response = (status, body).into_response();
            secure(&mut response, form_action);
            response
        }
        Err(e) => {
            tracing::error!(error = %e, "rendering a page failed");
            let mut response =
                (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response();
            secure(&mut response, None);
            response
        }
    }
}

/// What a consent item (`identifier`, `phone`, `offline_access`, a profile field name) means to
/// a person.
pub fn describe_item(item: &str) -> String {
    match item {
        "identifier" => "An identifier for you that only this site gets".to_owned(),
        "phone" => "Your mobile number".to_owned(),
        "offline_access" => "Staying signed in while you are away from the site".to_owned(),
        other => crate::profile::ProfileField::parse(other)
            .map_or_else(|| other.to_owned(), |f| f.describe().to_owned()),
    }
}

/// An error page a person can act on.
pub fn error(status: StatusCode, title: &str, what_happened: &str, what_to_do: &str) -> Response {
    html(
        status,
        &ErrorPage {
            operator: OPERATOR,
            title,
            what_happened,
            what_to_do,
        },
        None,
    )
}

/// Adds the page headers to `response`.
pub fn secure(response: &mut Response, form_action: Option<&str>) {
    let csp = format!(
        "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; \
         frame-ancestors 'none'; form-action 'self'{}",
        form_action
            .filter(|o| o
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b';' && b != b','))
            .map(|o| format!(" {o}"))
            .unwrap_or_default()
    );
    let headers = response.headers_mut();
    let fixed: [(HeaderName, &str); 5] = [
        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
        (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        (header::REFERRER_POLICY, "no-referrer"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::CACHE_CONTROL, "no-store"),
    ];
    for (name, value) in fixed {
        headers.insert(name, HeaderValue::from_static(value));
    }
    if let Ok(value) = HeaderValue::from_str(&csp) {
        headers.insert(header::CONTENT_SECURITY_POLICY, value);
    }
}

/// `GET /static/akaid.css`.
pub async fn web_static_css_get() -> Response {
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, "public, max-age=86400"),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        CSS,
    )
        .into_response()
}
