//! The pages a person sees (askama templates in `templates/`, their strings in
//! [`super::i18n`]), and the headers every page carries: a strict Content-Security-Policy that
//! forbids framing, no referrer to other sites, no content sniffing, no caching of pages that
//! hold a CSRF token, and HSTS when the request came over HTTPS.
//!
//! A handler builds a page as a function of the language ([`page`], [`error`]); the page is
//! rendered in English at once, and [`finish`], the layer around the OP's routes, renders it
//! again in the language the request's `Accept-Language` prefers. So the language is chosen
//! in one place, and every HTML response passes that layer, which also adds the security
//! headers to any HTML a handler produced without them.

use std::sync::{Arc, LazyLock};

use askama::Template;
use axum::body::Body;
use axum::extract::{ConnectInfo, Path, Request, State};
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::i18n::{Lang, Strings};

const CSS: &str = include_str!("../../static/akaid.css");
/// HSTS over HTTPS: two years (the preload list's minimum is one).
const HSTS: &str = "max-age=63072000";

/// The stylesheet's address, with a hash of its content so it can be cached for good.
pub static CSS_PATH: LazyLock<String> = LazyLock::new(|| {
    use sha2::Digest;
    let digest = sha2::Sha256::digest(CSS.as_bytes());
    format!("/static/akaid-{}.css", &hex::encode(digest)[..12])
});

/// The stylesheet's address, for the layout.
pub fn css_path() -> &'static str {
    CSS_PATH.as_str()
}

#[derive(Debug, Template)]
#[template(path = "ua_challenge.html")]
pub struct UaChallengePage {
    pub t: &'static Strings,
}

#[derive(Debug, Template)]
#[template(path = "sim_needed.html")]
pub struct SimNeededPage<'a> {
    pub t: &'static Strings,
    /// The relying party that asked; `None` for the account page.
    pub site: Option<&'a str>,
}

#[derive(Template)]
#[template(path = "consent.html")]
pub struct ConsentPage<'a> {
    pub t: &'static Strings,
    /// The relying party in full: an OpenID 2.0 realm, or an OpenID Connect client's name.
    pub site: &'a str,
    /// The host answers go to, shown prominently.
    pub site_host: &'a str,
    /// What is shared, described in the page's language.
    pub shared: Vec<String>,
    pub action: &'a str,
    pub csrf: &'a str,
    pub request_id: &'a str,
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

#[derive(Debug, Template)]
#[template(path = "error.html")]
pub struct ErrorPage<'a> {
    pub t: &'static Strings,
    pub title: &'a str,
    pub what_happened: &'a str,
    pub what_to_do: &'a str,
    /// A technical detail for the site's developers (a protocol message, in English).
    pub detail: Option<&'a str>,
}

/// One relying party on the account page.
#[derive(Debug, Clone)]
pub struct AllowedSite {
    pub relying_party: String,
    pub name: String,
    pub host: String,
    /// Consent items (`identifier`, `phone`, …), described on the page.
    pub shared: Vec<String>,
    pub since: time::OffsetDateTime,
}

#[derive(Template)]
#[template(path = "account.html")]
pub struct AccountPage<'a> {
    pub t: &'static Strings,
    pub sites: &'a [AllowedSite],
    pub csrf: &'a str,
}

impl AccountPage<'_> {
    fn since(&self, site: &AllowedSite) -> String {
        let date = time::format_description::parse_borrowed::<2>(self.t.date_format)
            .ok()
            .and_then(|f| site.since.format(&f).ok())
            .unwrap_or_else(|| site.since.date().to_string());
        self.t.fill(self.t.account_since, "date", date)
    }

    fn describe(&self, item: &str) -> String {
        describe_item(item, self.t)
    }
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
    pub t: &'static Strings,
    pub csrf: &'a str,
    pub fields: &'a [(String, String)],
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
    pub t: &'static Strings,
    pub site_host: &'a str,
    pub action: &'a str,
    pub fields: &'a [(String, String)],
}

/// The OP identifier's page, or a user identifier's (`local_id`), with the OpenID 2.0 HTML
/// discovery links (§7.3.3).
#[derive(Debug, Template)]
#[template(path = "discovery.html")]
pub struct DiscoveryPage<'a> {
    pub t: &'static Strings,
    pub endpoint: &'a str,
    pub local_id: Option<&'a str>,
}

/// How a page is rendered in a given language.
type Render = dyn Fn(&'static Strings) -> askama::Result<String> + Send + Sync;

/// The page of a response, for [`finish`] to render again in the request's language.
#[derive(Clone)]
struct Localize(Arc<Render>);

/// An HTML page with the security headers, rendered by `render` in the request's language
/// (English until [`finish`] sees the request's `Accept-Language`). `form_action` names the
/// origin a form on the page may post to besides our own (the relying party's, for the
/// self-posting form and for the redirect that follows the consent POST: DESIGN.md §2.7).
pub fn page<F>(status: StatusCode, form_action: Option<&str>, render: F) -> Response
where
    F: Fn(&'static Strings) -> askama::Result<String> + Send + Sync + 'static,
{
    let mut response = match render(Lang::En.strings()) {
        Ok(body) => (status, body).into_response(),
        Err(e) => return render_failed(&e),
    };
    secure(&mut response, form_action);
    set_language(&mut response, Lang::En);
    response.extensions_mut().insert(Localize(Arc::new(render)));
    response
}

fn render_failed(e: &askama::Error) -> Response {
    tracing::error!(error = %e, "rendering a page failed");
    let mut response = (StatusCode::INTERNAL_SERVER_ERROR, "internal error").into_response();
    secure(&mut response, None);
    response
}

fn set_language(response: &mut Response, lang: Lang) {
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_LANGUAGE,
        HeaderValue::from_static(lang.tag()),
    );
    headers.insert(header::VARY, HeaderValue::from_static("Accept-Language"));
}

/// What a consent item (`identifier`, `phone`, `offline_access`, a profile field name) means to
/// a person; an unknown item (from an older version) is shown as it is stored.
pub fn describe_item(item: &str, t: &'static Strings) -> String {
    use crate::profile::ProfileField;
    match item {
        "identifier" => t.item_identifier,
        "phone" => t.item_phone,
        "offline_access" => t.item_offline_access,
        other => match ProfileField::parse(other) {
            Some(field) => field.describe(t),
            None => return other.to_owned(),
        },
    }
    .to_owned()
}

/// Each error a person can meet, with what the page says about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// An OpenID Connect client_id that is not registered.
    UnknownSite,
    /// A redirect_uri the client did not register.
    UnregisteredReturn,
    /// An OpenID 2.0 return_to the realm's XRDS does not list (§13).
    ReturnNotListed { url: String, host: String },
    /// A realm that publishes no return_to list, where one is required.
    SiteUnverifiable { host: String },
    /// A realm the operator's policy denies.
    BlockedSite { host: String },
    /// A consent answer without the pending request's token: expired, used, another
    /// window's or another session's.
    Expired,
    /// A consent answer after the login ended.
    SessionEnded,
    /// A consent answer that is neither Allow nor Deny.
    BadAnswer,
    /// A malformed protocol request; `detail` is the protocol error, for developers.
    BadRequest { detail: String },
    /// A return address that cannot be put in a `Location` header.
    BadReturnAddress,
    /// An identifier URL that is not ours.
    NoSuchIdentifier,
    /// A revoke form without the session's token.
    RevokeRefused,
    /// A sign-out request that cannot be checked; `detail` says why, for developers.
    LogoutRefused { detail: String },
    /// Signed out, with no site to go back to (not an error: 200).
    SignedOut,
    /// The key service or database is not answering.
    Unavailable,
    /// Anything else; the cause is logged, never shown.
    Internal,
}

impl Problem {
    pub fn status(&self) -> StatusCode {
        match self {
            Problem::UnknownSite
            | Problem::UnregisteredReturn
            | Problem::ReturnNotListed { .. }
            | Problem::SiteUnverifiable { .. }
            | Problem::BadAnswer
            | Problem::BadRequest { .. }
            | Problem::BadReturnAddress
            | Problem::LogoutRefused { .. } => StatusCode::BAD_REQUEST,
            Problem::BlockedSite { .. }
            | Problem::Expired
            | Problem::SessionEnded
            | Problem::RevokeRefused => StatusCode::FORBIDDEN,
            Problem::NoSuchIdentifier => StatusCode::NOT_FOUND,
            Problem::SignedOut => StatusCode::OK,
            Problem::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            Problem::Internal => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// Title, what happened and what to do, in `t`'s language.
    pub fn texts(&self, t: &'static Strings) -> [String; 3] {
        let plain = |a: &str, b: &str, c: &str| [a.to_owned(), b.to_owned(), c.to_owned()];
        match self {
            Problem::UnknownSite => plain(
                t.unknown_site_title,
                t.unknown_site_happened,
                t.unknown_site_to_do,
            ),
            Problem::UnregisteredReturn => plain(
                t.unregistered_return_title,
                t.unregistered_return_happened,
                t.unregistered_return_to_do,
            ),
            Problem::ReturnNotListed { url, host } => [
                t.return_not_listed_title.to_owned(),
                t.fill(
                    t.fill(t.return_not_listed_happened, "url", url),
                    "host",
                    host,
                ),
                t.return_not_listed_to_do.to_owned(),
            ],
            Problem::SiteUnverifiable { host } => [
                t.site_unverifiable_title.to_owned(),
                t.fill(t.site_unverifiable_happened, "host", host),
                t.site_unverifiable_to_do.to_owned(),
            ],
            Problem::BlockedSite { host } => [
                t.blocked_site_title.to_owned(),
                t.fill(t.blocked_site_happened, "host", host),
                t.blocked_site_to_do.to_owned(),
            ],
            Problem::Expired => plain(t.expired_title, t.expired_happened, t.expired_to_do),
            Problem::SessionEnded => plain(
                t.session_ended_title,
                t.session_ended_happened,
                t.session_ended_to_do,
            ),
            Problem::BadAnswer => plain(
                t.bad_answer_title,
                t.bad_answer_happened,
                t.bad_answer_to_do,
            ),
            Problem::BadRequest { .. } => plain(
                t.bad_request_title,
                t.bad_request_happened,
                t.bad_request_to_do,
            ),
            Problem::BadReturnAddress => plain(
                t.bad_return_address_title,
                t.bad_return_address_happened,
                t.bad_return_address_to_do,
            ),
            Problem::NoSuchIdentifier => plain(
                t.no_such_identifier_title,
                t.no_such_identifier_happened,
                t.no_such_identifier_to_do,
            ),
            Problem::RevokeRefused => plain(
                t.revoke_refused_title,
                t.revoke_refused_happened,
                t.revoke_refused_to_do,
            ),
            Problem::LogoutRefused { .. } => plain(
                t.logout_refused_title,
                t.logout_refused_happened,
                t.logout_refused_to_do,
            ),
            Problem::SignedOut => plain(
                t.signed_out_title,
                t.signed_out_happened,
                t.signed_out_to_do,
            ),
            Problem::Unavailable => plain(
                t.unavailable_title,
                t.unavailable_happened,
                t.unavailable_to_do,
            ),
            Problem::Internal => plain(t.internal_title, t.internal_happened, t.internal_to_do),
        }
    }

    /// The technical detail shown to the site's developers, if any.
    fn detail(&self) -> Option<&str> {
        match self {
            Problem::BadRequest { detail } | Problem::LogoutRefused { detail } => Some(detail),
            _ => None,
        }
    }
}

/// The page for `problem`: what happened and what to do, never internals.
pub fn error(problem: Problem) -> Response {
    page(problem.status(), None, move |t| {
        let [title, what_happened, what_to_do] = problem.texts(t);
        ErrorPage {
            t,
            title: &title,
            what_happened: &what_happened,
            what_to_do: &what_to_do,
            detail: problem.detail(),
        }
        .render()
    })
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

fn is_html(response: &Response) -> bool {
    response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            let media = v.split(';').next().unwrap_or("").trim();
            media.eq_ignore_ascii_case("text/html")
                || media.eq_ignore_ascii_case("application/xhtml+xml")
        })
}

/// The layer around the OP's routes: renders a page in the request's language, makes sure
/// every HTML response has the security headers, and over HTTPS adds HSTS and marks the
/// session cookie `Secure` (also behind a trusted proxy that terminates TLS and says so in
/// `X-Forwarded-Proto`).
pub async fn finish(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let lang = Lang::from_headers(request.headers());
    let peer = request
        .extensions()
        .get::<ConnectInfo<std::net::SocketAddr>>()
        .map(|c| c.0.ip());
    let https = state.ctx.config.public_url.scheme() == "https"
        || peer.is_some_and(|peer| {
            state
                .ctx
                .config
                .trusted_proxies
                .forwarded_https(peer, request.headers())
        });
    let mut response = next.run(request).await;
    if let Some(Localize(render)) = response.extensions_mut().remove::<Localize>()
        && lang != Lang::En
    {
        match render(lang.strings()) {
            Ok(body) => {
                response.headers_mut().remove(header::CONTENT_LENGTH);
                *response.body_mut() = Body::from(body);
                set_language(&mut response, lang);
            }
            Err(e) => return render_failed(&e),
        }
    }
    if is_html(&response)
        && !response
            .headers()
            .contains_key(header::CONTENT_SECURITY_POLICY)
    {
        secure(&mut response, None);
    }
    if https {
        response.headers_mut().insert(
            header::STRICT_TRANSPORT_SECURITY,
            HeaderValue::from_static(HSTS),
        );
        secure_cookies(&mut response);
    }
    response
}

/// Adds `Secure` to every cookie the response sets that lacks it.
fn secure_cookies(response: &mut Response) {
    let headers = response.headers_mut();
    let cookies: Vec<HeaderValue> = headers
        .get_all(header::SET_COOKIE)
        .iter()
        .cloned()
        .collect();
    if cookies.is_empty() {
        return;
    }
    headers.remove(header::SET_COOKIE);
    for cookie in cookies {
        let secure = cookie.to_str().ok().and_then(|text| {
            let has = text
                .split(';')
                .skip(1)
                .any(|a| a.trim().eq_ignore_ascii_case("secure"));
            (!has).then(|| HeaderValue::from_str(&format!("{text}; Secure")).ok())?
        });
        headers.append(header::SET_COOKIE, secure.unwrap_or(cookie));
    }
}

/// `GET /static/{file}`: the stylesheet, under its content-hashed name (cached for a year:
/// a new version has a new name) or its plain name (cached for a day).
pub async fn web_static_get(Path(file): Path<String>) -> Response {
    let cache = if file == CSS_PATH.trim_start_matches("/static/") {
        "public, max-age=31536000, immutable"
    } else if file == "akaid.css" {
        "public, max-age=86400"
    } else {
        return StatusCode::NOT_FOUND.into_response();
    };
    (
        [
            (header::CONTENT_TYPE, "text/css; charset=utf-8"),
            (header::CACHE_CONTROL, cache),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
        ],
        CSS,
    )
        .into_response()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn every_problem_has_a_page_in_every_language() {
        let problems = [
            Problem::UnknownSite,
            Problem::UnregisteredReturn,
            Problem::ReturnNotListed {
                url: "http://x.example/r".into(),
                host: "x.example".into(),
            },
            Problem::SiteUnverifiable {
                host: "x.example".into(),
            },
            Problem::BlockedSite {
                host: "x.example".into(),
            },
            Problem::Expired,
            Problem::SessionEnded,
            Problem::BadAnswer,
            Problem::BadRequest {
                detail: "openid.mode missing".into(),
            },
            Problem::BadReturnAddress,
            Problem::NoSuchIdentifier,
            Problem::RevokeRefused,
            Problem::LogoutRefused {
                detail: "foreign token".into(),
            },
            Problem::SignedOut,
            Problem::Unavailable,
            Problem::Internal,
        ];
        for lang in Lang::ALL {
            let t = lang.strings();
            for problem in &problems {
                let texts = problem.texts(t);
                assert!(
                    texts.iter().all(|s| !s.is_empty() && !s.contains('{')),
                    "{lang:?} {problem:?}: {texts:?}"
                );
                let [title, what_happened, what_to_do] = &texts;
                let html = ErrorPage {
                    t,
                    title,
                    what_happened,
                    what_to_do,
                    detail: problem.detail(),
                }
                .render()
                .unwrap();
                assert!(
                    html.contains(&format!("<html lang=\"{}\"", t.lang)),
                    "{html}"
                );
                assert!(html.contains(title.as_str()));
            }
        }
    }

    #[test]
    fn page_text_is_escaped() {
        let html = ErrorPage {
            t: Lang::En.strings(),
            title: "t",
            what_happened: "<script>alert(1)</script>",
            what_to_do: "x",
            detail: Some("\"><img>"),
        }
        .render()
        .unwrap();
        assert!(
            !html.contains("<script>alert") && !html.contains("\"><img>"),
            "{html}"
        );
    }

    #[test]
    fn consent_items_are_described_in_the_pages_language() {
        let de = Lang::De.strings();
        assert_eq!(describe_item("phone", de), de.item_phone);
        assert_eq!(describe_item("email", de), de.item_email);
        assert_eq!(
            describe_item("offline_access", Lang::En.strings()),
            "Staying signed in while you are away from the site"
        );
        for field in crate::profile::ProfileField::ALL {
            assert_ne!(field.describe(de), field.describe(Lang::En.strings()));
        }
    }

    #[test]
    fn secure_is_added_to_cookies_once() {
        let mut response = Response::new(Body::empty());
        let h = response.headers_mut();
        h.append(
            header::SET_COOKIE,
            HeaderValue::from_static("a=1; HttpOnly"),
        );
        h.append(header::SET_COOKIE, HeaderValue::from_static("b=2; Secure"));
        secure_cookies(&mut response);
        let set: Vec<&str> = response
            .headers()
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        assert_eq!(set, ["a=1; HttpOnly; Secure", "b=2; Secure"]);
    }

    #[test]
    fn the_stylesheet_has_a_content_hashed_name() {
        assert!(css_path().starts_with("/static/akaid-") && css_path().ends_with(".css"));
        assert_eq!(css_path().len(), "/static/akaid-.css".len() + 12);
    }
}
