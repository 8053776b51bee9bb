//! The consent step both protocols share: the request a consent page answers, kept in the
//! session under a per-protocol key with the page's CSRF token, and taken back (once) when
//! the page's form is answered.

use axum::http::StatusCode;
use axum::response::Response;
use tower_sessions::Session;

use super::pages::{self, ConsentPage, Problem};
use super::session::Login;

/// The pending request a consent form answers, kept in the session; answered once.
#[derive(serde::Serialize, serde::Deserialize)]
pub struct Pending {
    pub id: String,
    pub csrf: String,
    /// The request's parameters, to finish it after the answer.
    pub fields: Vec<(String, String)>,
    /// The consent items the page showed: Allow covers these and no more.
    pub shared: Vec<String>,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending")
            .field("id", &self.id)
            .field("csrf", &"[redacted]")
            .field("fields", &self.fields)
            .field("shared", &self.shared)
            .finish()
    }
}

/// The consent page's form. A missing field reads as empty, so a form without the token
/// gets the same page as one with a wrong token, not the extractor's plain-text rejection.
#[derive(serde::Deserialize)]
pub struct ConsentForm {
    #[serde(default)]
    csrf: String,
    #[serde(default)]
    request: String,
    #[serde(default)]
    pub decision: String,
}

impl std::fmt::Debug for ConsentForm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConsentForm")
            .field("csrf", &"[redacted]")
            .field("request", &self.request)
            .field("decision", &self.decision)
            .finish()
    }
}

/// Keeps the request under `key` for the consent page about to be shown.
pub async fn hold(
    session: &Session,
    key: &str,
    fields: Vec<(String, String)>,
    shared: Vec<String>,
) -> Result<Pending, Response> {
    let pending = Pending {
        id: super::ua::random_b64::<18>(),
        csrf: super::ua::random_b64::<18>(),
        fields,
        shared,
    };
    match session.insert(key, &pending).await {
        Ok(()) => Ok(pending),
        Err(e) => Err(internal(&e.to_string())),
    }
}

/// The pending request `form` answers, with the login it was made in; taken out of the
/// session, so it is answered once. A form of another window or session, or without the
/// token, gets a page.
pub async fn answer(
    session: &Session,
    key: &str,
    form: &ConsentForm,
) -> Result<(Pending, Login), Response> {
    let pending: Option<Pending> = session.get(key).await.ok().flatten();
    let Some(pending) = pending.filter(|p| {
        p.id == form.request
            && subtle::ConstantTimeEq::ct_eq(p.csrf.as_bytes(), form.csrf.as_bytes()).into()
    }) else {
        return Err(pages::error(Problem::Expired));
    };
    let Some(login) = super::session::login(session).await else {
        return Err(pages::error(Problem::SessionEnded));
    };
    if let Err(e) = session.remove::<Pending>(key).await {
        return Err(internal(&e.to_string()));
    }
    Ok((pending, login))
}

fn internal(what: &str) -> Response {
    tracing::error!(error = %what, "consent");
    pages::error(Problem::Internal)
}

/// The consent page for a held request: `site` is what the relying party calls itself (the
/// OpenID 2.0 realm, the OIDC client's name), `site_host` the host the answer goes to, `action`
/// where the page posts its answer, and `return_origin` the relying party's origin, which
/// the page's Content-Security-Policy lets the redirect after the answer go to.
pub fn page(
    pending: &Pending,
    site: String,
    site_host: String,
    action: &'static str,
    return_origin: Option<&str>,
) -> Response {
    let (shared, csrf, id) = (
        pending.shared.clone(),
        pending.csrf.clone(),
        pending.id.clone(),
    );
    pages::page(StatusCode::OK, return_origin, move |t| {
        askama::Template::render(&ConsentPage {
            t,
            site: &site,
            site_host: &site_host,
            shared: shared.iter().map(|w| pages::describe_item(w, t)).collect(),
            action,
            csrf: &csrf,
            request_id: &id,
        })
    })
}
