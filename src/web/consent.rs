//! The consent step both protocols share: the request a consent page answers, kept in the
//! session under a per-protocol key with the page's CSRF token, and taken back (once) when
//! the page's form is answered.

use axum::http::StatusCode;
use axum::response::Response;
use tower_sessions::Session;

use super::pages;
use super::session::Login;

/// The pending request a consent form answers, kept in the session; answered once.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
pub struct Pending {
    pub id: String,
    pub csrf: String,
    /// The request's parameters, to finish it after the answer.
    pub fields: Vec<(String, String)>,
    /// The consent items the page showed: Allow covers these and no more.
    pub shared: Vec<String>,
}

/// The consent page's form.
#[derive(Debug, serde::Deserialize)]
pub struct ConsentForm {
    csrf: String,
    request: String,
    pub decision: String,
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
        return Err(pages::error(
            StatusCode::FORBIDDEN,
            "This answer cannot be used",
            "The sign-in request it belongs to has expired or was made in another window.",
            "Go back to the site and start the sign-in again.",
        ));
    };
    let Some(login) = super::session::login(session).await else {
        return Err(pages::error(
            StatusCode::FORBIDDEN,
            "You are not signed in",
            "The sign-in that this answer belongs to has ended.",
            "Go back to the site and start the sign-in again.",
        ));
    };
    if let Err(e) = session.remove::<Pending>(key).await {
        return Err(internal(&e.to_string()));
    }
    Ok((pending, login))
}

fn internal(what: &str) -> Response {
    tracing::error!(error = %what, "consent");
    pages::error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "Something went wrong",
        "The sign-in service had an internal problem.",
        "Go back to the site and try again.",
    )
}
