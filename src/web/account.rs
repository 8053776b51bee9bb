//! The subscriber's own page, `/account`: the relying parties they have allowed (one consent
//! record model for OpenID 2.0 realms and OpenID Connect clients), each with a Revoke button.
//! Signing in to it is the same Ua login as any relying party's; revoking needs the page's
//! CSRF token, bound to the session.

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use tower_sessions::Session;

use super::AppState;
use super::pages::{self, AccountPage, AllowedSite, Problem};
use super::ua::UaRequest;

const CSRF: &str = "account_csrf";

/// `GET /account`
pub async fn account_get(
    State(state): State<AppState>,
    session: Session,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let target = uri
        .path_and_query()
        .map_or_else(|| uri.path().to_owned(), |p| p.as_str().to_owned());
    let ua = UaRequest {
        method: method.as_str(),
        uri: &target,
        headers: &headers,
        body: &[],
    };
    let login = match state.ua.login(&session, &ua, None, None).await {
        Ok(login) => login,
        Err(response) => return response,
    };
    let rows = match state.ctx.store.consents.list(&login.impi).await {
        Ok(rows) => rows,
        Err(e) => return internal(&e.to_string()),
    };
    let csrf = match session.get::<String>(CSRF).await.ok().flatten() {
        Some(token) => token,
        None => {
            let token = super::ua::random_b64::<24>();
            if let Err(e) = session.insert(CSRF, &token).await {
                return internal(&e.to_string());
            }
            token
        }
    };
    let mut sites = Vec::with_capacity(rows.len());
    for row in rows {
        let (name, host) = display_name(&state, &row.relying_party).await;
        sites.push(AllowedSite {
            name,
            host,
            shared: row.shared.split(' ').map(str::to_owned).collect(),
            since: row.created_at,
            relying_party: row.relying_party,
        });
    }
    pages::page(StatusCode::OK, None, move |t| {
        askama::Template::render(&AccountPage {
            t,
            sites: &sites,
            csrf: &csrf,
        })
    })
}

#[derive(Debug)]
struct RevokeForm {
    csrf: String,
    relying_party: String,
}

/// `POST /account/revoke`: forgets one consent, then back to the page.
pub async fn account_revoke_post(
    State(state): State<AppState>,
    session: Session,
    body: Bytes,
) -> Response {
    let Ok(form) = revoke_form(&body) else {
        return refused("the form was incomplete");
    };
    let Some(login) = super::session::login(&session).await else {
        return refused("no login in the session");
    };
    let expected = session.get::<String>(CSRF).await.ok().flatten();
    let valid = expected.is_some_and(|token| {
        subtle::ConstantTimeEq::ct_eq(token.as_bytes(), form.csrf.as_bytes()).into()
    });
    if !valid {
        return refused("the token is not the session's");
    }
    let now = state.ctx.clock.now();
    match state
        .consents
        .remove(
            &*state.ctx.store.consents,
            &login.impi,
            &form.relying_party,
            now,
        )
        .await
    {
        Ok(removed) => {
            // What an OpenID Connect client was issued on the strength of that consent (its
            // refresh tokens, and access tokens at userinfo) ends with it.
            if let Some(id) = form.relying_party.strip_prefix("oidc:")
                && let Ok(id) = id.parse::<crate::ids::ClientId>()
                && let Err(e) = state
                    .ctx
                    .store
                    .grants
                    .revoke_grants_of(&login.impi, &id, now)
                    .await
            {
                return internal(&e.to_string());
            }
            if removed {
                tracing::info!(
                    relying_party = form.relying_party,
                    "consent revoked by the subscriber"
                );
            }
            let mut response = StatusCode::SEE_OTHER.into_response();
            response
                .headers_mut()
                .insert(header::LOCATION, HeaderValue::from_static("/account"));
            response
        }
        Err(e) => internal(&e.to_string()),
    }
}

fn revoke_form(body: &[u8]) -> Result<RevokeForm, ()> {
    let mut csrf = None;
    let mut relying_party = None;
    for (k, v) in url::form_urlencoded::parse(body) {
        match &*k {
            "csrf" => csrf = Some(v.into_owned()),
            "relying_party" => relying_party = Some(v.into_owned()),
            _ => {}
        }
    }
    Ok(RevokeForm {
        csrf: csrf.ok_or(())?,
        relying_party: relying_party.ok_or(())?,
    })
}

/// How a consent's relying party is shown: a line of detail and the name in the heading (a
/// realm's URL and host; an OpenID Connect client's redirect host and registered name).
async fn display_name(state: &AppState, relying_party: &str) -> (String, String) {
    if let Some(realm) = relying_party.strip_prefix("openid2:") {
        let host = crate::openid2::Realm::parse(realm)
            .map(|r| r.host().to_owned())
            .unwrap_or_else(|_| realm.to_owned());
        return (realm.to_owned(), host);
    }
    if let Some(id) = relying_party.strip_prefix("oidc:") {
        let client = match id.parse::<crate::ids::ClientId>() {
            Ok(id) => state.ctx.store.clients.get(&id).await.ok().flatten(),
            Err(_) => None,
        };
        return match client {
            Some(c) => {
                let host = c
                    .redirect_uris
                    .first()
                    .and_then(|u| url::Url::parse(u).ok())
                    .and_then(|u| u.host_str().map(str::to_owned))
                    .unwrap_or_default();
                (host, c.name)
            }
            None => (String::new(), id.to_owned()),
        };
    }
    (relying_party.to_owned(), relying_party.to_owned())
}

fn refused(why: &str) -> Response {
    tracing::info!("account: revoke refused: {why}");
    pages::error(Problem::RevokeRefused)
}

fn internal(what: &str) -> Response {
    tracing::error!("account page: {what}");
    pages::error(Problem::Internal)
}
