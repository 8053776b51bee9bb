//! The software handset as a browser (`akaid ue login`): follows redirects, keeps cookies,
//! answers Ua challenges with its GBA module (TS 24.109 §5: username B-TID, password
//! base64(Ks_NAF)), bootstrapping first when it has no valid B-TID, and answers the consent
//! form and the self-posting OpenID form as a person tapping the button would.

use std::sync::Arc;

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, LOCATION};
use url::Url;

use super::ua::{GbaModule, gba_challenge};
use super::ub::{Handset, UeError};
use crate::clock::{Clock, SystemClock};

/// Requests one login may take at most (redirects, challenges, forms).
const MAX_STEPS: usize = 24;

/// What the consent page gets from the handset's user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    Deny,
}

/// Where a login ended.
#[derive(Debug, Clone)]
pub struct Landing {
    pub url: Url,
    pub status: u16,
    pub body: String,
    /// Whether a consent page was answered on the way.
    pub consented: bool,
    /// Whether the handset answered a Ua challenge on the way.
    pub authenticated: bool,
}

/// A handset browser: cookies persist across logins, as in a real browser.
#[derive(Debug)]
pub struct Browser {
    http: reqwest::Client,
    jar: Arc<reqwest::cookie::Jar>,
    gba: GbaModule,
    /// A URL prefix not to follow a redirect into: the login ends there, with the
    /// redirect's target as the landing URL (status 303, empty body).
    pub stop_before: Option<String>,
}

impl Browser {
    pub fn new(bsf: Url, handset: Handset) -> Result<Self, UeError> {
        let jar = Arc::new(reqwest::cookie::Jar::default());
        let http = reqwest::Client::builder()
            .user_agent(super::USER_AGENT)
            .cookie_provider(jar.clone())
            .redirect(reqwest::redirect::Policy::none())
            .timeout(std::time::Duration::from_secs(15))
            .build()
            .map_err(|e| UeError::Http(e.to_string()))?;
        Ok(Self {
            http,
            jar,
            gba: GbaModule::new(bsf, handset)?,
            stop_before: None,
        })
    }

    /// The handset (its USIM state changes with each bootstrap).
    pub fn handset(&self) -> &Handset {
        &self.gba.handset
    }

    /// The `Cookie` header this browser would send to `url`.
    pub fn cookies(&self, url: &Url) -> Option<String> {
        use reqwest::cookie::CookieStore;
        self.jar
            .cookies(url)
            .and_then(|v| v.to_str().ok().map(str::to_owned))
    }

    /// Opens `start` and goes on until a page that is neither a redirect, a GBA challenge,
    /// the consent form nor a self-posting form.
    pub async fn login(&mut self, start: &Url, decision: Decision) -> Result<Landing, UeError> {
        let mut method = reqwest::Method::GET;
        let mut url = start.clone();
        let mut form: Option<Vec<(String, String)>> = None;
        let mut authorization: Option<crate::secret::Secret<String>> = None;
        let mut consented = false;
        let mut authenticated = false;
        let mut challenges = 0;
        let mut last_btid = None;
        for _ in 0..MAX_STEPS {
            let body = form
                .as_ref()
                .map(|f| {
                    url::form_urlencoded::Serializer::new(String::new())
                        .extend_pairs(f)
                        .finish()
                })
                .unwrap_or_default();
            let mut request = self.http.request(method.clone(), url.clone());
            if form.is_some() {
                request = request
                    .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                    .body(body.clone());
            }
            if let Some(a) = authorization.take() {
                request = request.header(AUTHORIZATION, a.expose().as_str());
            }
            let response = request
                .send()
                .await
                .map_err(|e| UeError::Http(e.without_url().to_string()))?;
            let status = response.status().as_u16();
            let headers = response.headers().clone();
            let text = response
                .text()
                .await
                .map_err(|e| UeError::Http(e.without_url().to_string()))?;
            if (300..400).contains(&status) {
                let location = headers
                    .get(LOCATION)
                    .and_then(|v| v.to_str().ok())
                    .ok_or_else(|| UeError::Protocol(format!("{status} without Location")))?;
                url = url
                    .join(location)
                    .map_err(|e| UeError::Protocol(format!("Location: {e}")))?;
                if let Some(prefix) = &self.stop_before
                    && url.as_str().starts_with(prefix.as_str())
                {
                    return Ok(Landing {
                        url,
                        status,
                        body: String::new(),
                        consented,
                        authenticated,
                    });
                }
                method = reqwest::Method::GET;
                form = None;
                continue;
            }
            if status == 401
                && let Some(challenge) = gba_challenge(&headers)
            {
                challenges += 1;
                if challenges > 3 {
                    return Err(UeError::Protocol(
                        "the server keeps challenging a fresh GBA answer".into(),
                    ));
                }
                // A second challenge that is not stale means the key was not accepted:
                // the B-TID may have gone, so bootstrap again.
                if challenges > 1
                    && !challenge.stale
                    && let Some(btid) = &last_btid
                {
                    self.gba.forget(btid);
                }
                let answer = self
                    .gba
                    .answer(
                        &challenge,
                        method.as_str(),
                        &url,
                        body.as_bytes(),
                        SystemClock.now(),
                    )
                    .await?;
                authorization = Some(answer.authorization);
                last_btid = Some(answer.btid);
                authenticated = true;
                continue;
            }
            if status == 200
                && let Some(page) = find_form(&text)
            {
                if page.has_button("decision") {
                    let value = match decision {
                        Decision::Allow => "allow",
                        Decision::Deny => "deny",
                    };
                    let mut fields = page.hidden.clone();
                    fields.push(("decision".into(), value.into()));
                    consented = true;
                    url = url
                        .join(&page.action)
                        .map_err(|e| UeError::Protocol(format!("form action: {e}")))?;
                    method = reqwest::Method::POST;
                    form = Some(fields);
                    continue;
                }
                if page.self_posting {
                    url = url
                        .join(&page.action)
                        .map_err(|e| UeError::Protocol(format!("form action: {e}")))?;
                    method = reqwest::Method::POST;
                    form = Some(page.hidden.clone());
                    continue;
                }
            }
            return Ok(Landing {
                url,
                status,
                body: text,
                consented,
                authenticated,
            });
        }
        Err(UeError::Protocol(format!(
            "no landing page after {MAX_STEPS} requests"
        )))
    }
}

/// The first POST form of a page, as far as a handset needs it.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Form {
    action: String,
    hidden: Vec<(String, String)>,
    buttons: Vec<(String, String)>,
    /// The OpenID self-posting form (`id="openid-return"`).
    self_posting: bool,
}

impl Form {
    fn has_button(&self, name: &str) -> bool {
        self.buttons.iter().any(|(n, _)| n == name)
    }
}

fn find_form(html: &str) -> Option<Form> {
    let start = html.find("<form")?;
    let end = html[start..]
        .find("</form>")
        .map_or(html.len(), |e| start + e);
    let inner = &html[start..end];
    let form_tag = &inner[..inner.find('>')?];
    if !attr(form_tag, "method").is_some_and(|m| m.eq_ignore_ascii_case("post")) {
        return None;
    }
    let action = attr(form_tag, "action")?;
    let self_posting = attr(form_tag, "id").as_deref() == Some("openid-return");
    let mut hidden = Vec::new();
    let mut buttons = Vec::new();
    for (tag_name, list) in [("<input", &mut hidden), ("<button", &mut buttons)] {
        let mut rest = inner;
        while let Some(i) = rest.find(tag_name) {
            let tag = &rest[i..];
            let tag = &tag[..tag.find('>').unwrap_or(tag.len())];
            let is_hidden = tag_name == "<button" || attr(tag, "type").as_deref() == Some("hidden");
            if is_hidden && let Some(name) = attr(tag, "name") {
                list.push((name, attr(tag, "value").unwrap_or_default()));
            }
            rest = &rest[i + tag_name.len()..];
        }
    }
    Some(Form {
        action,
        hidden,
        buttons,
        self_posting,
    })
}

/// The value of attribute `name` in a start tag, entity-decoded.
fn attr(tag: &str, name: &str) -> Option<String> {
    crate::web::scrape::attributes(tag)
        .into_iter()
        .find_map(|(n, v)| (n == name).then_some(v))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_consent_form_is_found_with_its_fields() {
        let html = r#"<main><form method="post" action="/openid/consent">
<input type="hidden" name="csrf" value="a&amp;b">
<input type="hidden" name="request" value="r1">
<button type="submit" name="decision" value="allow" class="allow">Allow</button>
<button type="submit" name="decision" value="deny">Deny</button></form>"#;
        let form = find_form(html).unwrap();
        assert_eq!(form.action, "/openid/consent");
        assert_eq!(
            form.hidden,
            vec![
                ("csrf".into(), "a&b".into()),
                ("request".into(), "r1".into())
            ]
        );
        assert!(form.has_button("decision"));
        assert!(!form.self_posting);
    }

    #[test]
    fn a_get_form_is_not_followed() {
        assert_eq!(find_form(r#"<form method="get" action="/x"></form>"#), None);
    }
}
