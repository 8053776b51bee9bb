//! `akaid ue proxy`: an HTTP/1.1 forward proxy (RFC 9110 §7.6, RFC 9112 §3.2.2) that plays a
//! handset's GBA module for a browser configured to use it (DESIGN.md §4, TS 24.109 §5).
//!
//! It appends the `3gpp-gba` product token to the browser's `User-Agent` (TS 24.109 §5.2.1), so
//! a NAF challenges with Digest instead of showing its "needs your SIM" page; when a response
//! is a `401` with a `3GPP-bootstrapping@` realm it bootstraps over Ub if it holds no valid
//! B-TID, answers with Ks_NAF ([`super::ua`]) and resends the request, so the browser sees only
//! the final response. Request bodies are buffered (up to [`MAX_BODY`]) so they can be resent;
//! responses stream through. Redirects and cookies stay the browser's business.
//!
//! HTTPS targets come through `CONNECT` tunnels, passed on as raw TCP: the proxy cannot see
//! the 401 inside TLS. A real handset's GBA module sits in its own HTTP stack behind TLS
//! (TS 33.222 §5.3, Ua id `01 00 01 yy zz`); doing that here would mean intercepting TLS with a
//! CA of the proxy's own, which this tool deliberately does not do.

use std::convert::Infallible;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Method, Request, Response, StatusCode, Uri, Version};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::net::{TcpListener, TcpStream};
use url::Url;

use super::ua::{GbaModule, UaAnswer, gba_challenge, parse_gba_challenge};
use super::ub::{Handset, UeError};
use crate::clock::{Clock, SystemClock};
use crate::gba::Btid;
use crate::secret::Secret;
use crate::web::ua::{GBA_TOKEN, can_do_gba};

/// The largest request body the proxy buffers; a larger one gets `413`.
pub const MAX_BODY: usize = 1024 * 1024;
/// How long an upstream server may take to connect.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long an upstream server may take to send its response head.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(60);
/// Answers to `stale=true` one request may send (each with the new nonce).
const MAX_STALE_RETRIES: u32 = 2;
/// Hop-by-hop headers (RFC 9110 §7.6.1, plus the `Proxy-*` and `Keep-Alive` of HTTP/1.0
/// practice and `Transfer-Encoding`, which hyper sets for each hop): never forwarded.
const HOP_BY_HOP: [&str; 9] = [
    "connection",
    "proxy-connection",
    "keep-alive",
    "proxy-authorization",
    "proxy-authenticate",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// What the proxy needs: the BSF to bootstrap with and the handset whose USIM answers.
#[derive(Debug)]
pub struct ProxySettings {
    pub bsf: Url,
    pub handset: Handset,
    /// Where the USIM's SQN state is written after each bootstrap (as `--state` keeps it).
    pub usim_state_file: Option<PathBuf>,
}

type ProxyBody = BoxBody<Bytes, hyper::Error>;

/// Serves proxy connections from `listener` until the task is dropped. Fails only when it
/// cannot start.
pub async fn serve(listener: TcpListener, settings: ProxySettings) -> Result<(), UeError> {
    let proxy = Arc::new(Proxy::new(settings)?);
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(e) => {
                // Out of file descriptors and the like: wait instead of spinning.
                tracing::warn!(error = %e, "proxy: cannot accept a connection");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        let proxy = proxy.clone();
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |request| {
                let proxy = proxy.clone();
                async move { Ok::<_, Infallible>(proxy.handle(request).await) }
            });
            let served = hyper::server::conn::http1::Builder::new()
                .timer(TokioTimer::new())
                .header_read_timeout(Duration::from_secs(30))
                .serve_connection(TokioIo::new(stream), service)
                .with_upgrades()
                .await;
            if let Err(e) = served {
                tracing::debug!(error = %e, "proxy: browser connection ended");
            }
        });
    }
}

struct Proxy {
    /// One bootstrap at a time; the USIM is one card.
    gba: tokio::sync::Mutex<GbaModule>,
    usim_state_file: Option<PathBuf>,
    client: Client<HttpConnector, Full<Bytes>>,
}

/// How the GBA module took part in a request, for the log line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Gba {
    No,
    Answered,
    Bootstrapped,
}

impl Gba {
    fn as_str(self) -> &'static str {
        match self {
            Gba::No => "no",
            Gba::Answered => "answered",
            Gba::Bootstrapped => "bootstrapped",
        }
    }
}

impl Proxy {
    fn new(settings: ProxySettings) -> Result<Self, UeError> {
        let mut connector = HttpConnector::new();
        connector.set_connect_timeout(Some(CONNECT_TIMEOUT));
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_timer(TokioTimer::new())
            .pool_idle_timeout(Duration::from_secs(30))
            .build(connector);
        Ok(Self {
            gba: tokio::sync::Mutex::new(GbaModule::new(settings.bsf, settings.handset)?),
            usim_state_file: settings.usim_state_file,
            client,
        })
    }

    async fn handle(&self, request: Request<Incoming>) -> Response<ProxyBody> {
        let method = request.method().clone();
        if method == Method::CONNECT {
            let host = request.uri().to_string();
            let response = self.connect(request).await;
            log(&method, &host, response.status(), Gba::No);
            return response;
        }
        let url = match target(request.uri()) {
            Ok(url) => url,
            Err(why) => {
                let response = text(StatusCode::BAD_REQUEST, why);
                log(&method, "-", response.status(), Gba::No);
                return response;
            }
        };
        let authority = authority(&url);
        let (response, gba) = self.forward(request, &url, &authority).await;
        log(&method, &authority, response.status(), gba);
        response
    }

    /// Forwards a request with an absolute-form `url`, answering GBA challenges on the way.
    async fn forward(
        &self,
        request: Request<Incoming>,
        url: &Url,
        authority: &str,
    ) -> (Response<ProxyBody>, Gba) {
        let (parts, body) = request.into_parts();
        let body = match buffer(&parts.headers, body).await {
            Ok(body) => body,
            Err(response) => return (response, Gba::No),
        };
        let mut headers = parts.headers;
        strip_hop_by_hop(&mut headers);
        // The body is buffered and sent with its length; hyper sets Content-Length.
        for name in [header::CONTENT_LENGTH, header::EXPECT, header::HOST] {
            headers.remove(name);
        }
        if let Ok(host) = HeaderValue::from_str(authority) {
            headers.insert(header::HOST, host);
        }
        add_gba_token(&mut headers);
        let uri = match Uri::try_from(url.as_str()) {
            Ok(uri) => uri,
            Err(_) => return (text(StatusCode::BAD_REQUEST, "bad request-target"), Gba::No),
        };
        let upstream = Upstream {
            method: &parts.method,
            uri: &uri,
            headers: &headers,
            body: &body,
        };

        let mut gba = Gba::No;
        let mut authorization: Option<Secret<String>> = None;
        let mut last_btid: Option<Btid> = None;
        let mut rebootstrapped = false;
        let mut stale_retries = 0;
        loop {
            let response = match self.send(&upstream, authorization.take()).await {
                Ok(response) => response,
                Err(why) => {
                    let message = format!("akaid ue proxy: cannot reach {authority}: {why}");
                    return (text(StatusCode::BAD_GATEWAY, &message), gba);
                }
            };
            let challenge = (response.status() == StatusCode::UNAUTHORIZED)
                .then(|| gba_challenge(response.headers()))
                .flatten();
            let Some(challenge) = challenge else {
                return (pass_back(response), gba);
            };
            // What an answer already sent and this new challenge tell us.
            let forget = match &last_btid {
                None => None,
                Some(_) if challenge.stale && stale_retries < MAX_STALE_RETRIES => {
                    stale_retries += 1;
                    None
                }
                // A fresh challenge after an answer: the NAF could not get Ks_NAF for the
                // B-TID (the BSF forgot it, or it expired). Bootstrap once more, unless this
                // request has just bootstrapped: then something else is wrong.
                Some(btid) if !challenge.stale && !rebootstrapped && gba != Gba::Bootstrapped => {
                    rebootstrapped = true;
                    Some(btid.clone())
                }
                Some(_) => return (refused(response), gba),
            };
            drop(response);
            match self
                .answer(&challenge, &parts.method, url, &body, forget)
                .await
            {
                Ok(answer) => {
                    if answer.bootstrapped {
                        gba = Gba::Bootstrapped;
                    } else if gba == Gba::No {
                        gba = Gba::Answered;
                    }
                    authorization = Some(answer.authorization);
                    last_btid = Some(answer.btid);
                }
                Err(e) => {
                    tracing::warn!(error = %e, host = %authority, "proxy: GBA sign-in failed");
                    let message =
                        format!("akaid ue proxy: GBA sign-in with {authority} failed: {e}");
                    return (text(StatusCode::BAD_GATEWAY, &message), gba);
                }
            }
        }
    }

    /// The GBA module's answer to `challenge`, after dropping the bootstrap `forget` names;
    /// the USIM state is saved whenever a bootstrap may have changed it.
    async fn answer(
        &self,
        challenge: &crate::gba::digest::Challenge,
        method: &Method,
        url: &Url,
        body: &[u8],
        forget: Option<Btid>,
    ) -> Result<UaAnswer, UeError> {
        let mut gba = self.gba.lock().await;
        if let Some(btid) = &forget {
            gba.forget(btid);
        }
        let answer = gba
            .answer(challenge, method.as_str(), url, body, SystemClock.now())
            .await;
        // A failed bootstrap may have moved SEQ_MS too (the USIM accepted AUTN, the BSF then
        // refused): save after any failure as well.
        let usim_may_have_changed = match &answer {
            Ok(a) => a.bootstrapped,
            Err(_) => true,
        };
        if usim_may_have_changed
            && let Some(path) = &self.usim_state_file
            && let Err(e) = super::state::save(path, &gba.handset.usim)
        {
            tracing::error!(error = %e, "proxy: cannot save the USIM state");
        }
        answer
    }

    async fn send(
        &self,
        upstream: &Upstream<'_>,
        authorization: Option<Secret<String>>,
    ) -> Result<Response<Incoming>, String> {
        let mut request = Request::new(Full::new(upstream.body.clone()));
        *request.method_mut() = upstream.method.clone();
        *request.uri_mut() = upstream.uri.clone();
        *request.version_mut() = Version::HTTP_11;
        *request.headers_mut() = upstream.headers.clone();
        if let Some(authorization) = authorization {
            let mut value = HeaderValue::from_str(authorization.expose())
                .map_err(|_| "the GBA answer is not a header value".to_owned())?;
            value.set_sensitive(true);
            request.headers_mut().insert(header::AUTHORIZATION, value);
        }
        match tokio::time::timeout(RESPONSE_TIMEOUT, self.client.request(request)).await {
            Ok(Ok(response)) => Ok(response),
            Ok(Err(e)) => Err(error_chain(&e)),
            Err(_) => Err(format!(
                "no response within {} s",
                RESPONSE_TIMEOUT.as_secs()
            )),
        }
    }

    /// `CONNECT host:port`: a raw TCP tunnel, opened before the browser is told `200`.
    async fn connect(&self, request: Request<Incoming>) -> Response<ProxyBody> {
        let Some((host, port)) = request
            .uri()
            .authority()
            .filter(|_| request.uri().scheme().is_none())
            .and_then(|a| Some((a.host().to_owned(), a.port_u16()?)))
        else {
            return text(
                StatusCode::BAD_REQUEST,
                "CONNECT needs a request-target of the form host:port",
            );
        };
        let bare_host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        let upstream = match tokio::time::timeout(
            CONNECT_TIMEOUT,
            TcpStream::connect((bare_host, port)),
        )
        .await
        {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => {
                let message = format!("akaid ue proxy: cannot reach {host}:{port}: {e}");
                return text(StatusCode::BAD_GATEWAY, &message);
            }
            Err(_) => {
                let message = format!("akaid ue proxy: cannot reach {host}:{port}: timed out");
                return text(StatusCode::BAD_GATEWAY, &message);
            }
        };
        tokio::spawn(async move {
            let mut upstream = upstream;
            match hyper::upgrade::on(request).await {
                Ok(upgraded) => {
                    let mut browser = TokioIo::new(upgraded);
                    if let Err(e) = tokio::io::copy_bidirectional(&mut browser, &mut upstream).await
                    {
                        tracing::debug!(error = %e, "proxy: tunnel ended");
                    }
                }
                Err(e) => tracing::debug!(error = %e, "proxy: CONNECT was not upgraded"),
            }
        });
        Response::new(empty())
    }
}

/// A request as it goes upstream, the same for each resend but for `Authorization`.
struct Upstream<'a> {
    method: &'a Method,
    uri: &'a Uri,
    headers: &'a HeaderMap,
    body: &'a Bytes,
}

/// The absolute-form request-target as a URL; a proxy takes nothing else but `CONNECT`'s
/// authority-form (RFC 9112 §3.2.2).
fn target(uri: &Uri) -> Result<Url, &'static str> {
    match uri.scheme_str() {
        Some("http") if uri.authority().is_some() => {}
        Some("https") => {
            return Err("https:// targets go through a CONNECT tunnel, not a plain request");
        }
        _ => {
            return Err(
                "this is a forward proxy: the request-target must be an absolute http:// URL",
            );
        }
    }
    let url = Url::parse(&uri.to_string()).map_err(|_| "bad request-target")?;
    if url.host_str().is_none_or(str::is_empty) {
        return Err("bad request-target: no host");
    }
    Ok(url)
}

/// `host[:port]` of `url`, as the `Host` header carries it.
fn authority(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    }
}

/// The request body, whole; `413` past [`MAX_BODY`].
async fn buffer(headers: &HeaderMap, body: Incoming) -> Result<Bytes, Response<ProxyBody>> {
    let too_large = || {
        text(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("akaid ue proxy buffers request bodies up to {MAX_BODY} bytes"),
        )
    };
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > MAX_BODY as u64) {
        return Err(too_large());
    }
    match Limited::new(body, MAX_BODY).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(too_large()),
        Err(_) => Err(text(
            StatusCode::BAD_REQUEST,
            "akaid ue proxy: the request body broke off",
        )),
    }
}

/// Removes the hop-by-hop headers and those `Connection` names (RFC 9110 §7.6.1).
fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let listed: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in listed {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
}

/// Appends the `3gpp-gba` product token to `User-Agent` (TS 24.109 §5.2.1).
fn add_gba_token(headers: &mut HeaderMap) {
    if can_do_gba(headers) {
        return;
    }
    let value = match headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
    {
        Some(ua) if !ua.trim().is_empty() => format!("{} {GBA_TOKEN}", ua.trim_end()),
        _ => GBA_TOKEN.to_owned(),
    };
    if let Ok(value) = HeaderValue::from_str(&value) {
        headers.insert(header::USER_AGENT, value);
    }
}

/// The upstream response for the browser, without the hop-by-hop headers.
fn pass_back(response: Response<Incoming>) -> Response<ProxyBody> {
    let (mut parts, body) = response.into_parts();
    strip_hop_by_hop(&mut parts.headers);
    Response::from_parts(parts, body.boxed())
}

/// A GBA `401` the proxy gave up answering, for the browser: its page as it is, but without
/// the GBA challenges, which the browser cannot answer and would take for a password prompt.
fn refused(response: Response<Incoming>) -> Response<ProxyBody> {
    let mut response = pass_back(response);
    let others: Vec<HeaderValue> = response
        .headers()
        .get_all(header::WWW_AUTHENTICATE)
        .iter()
        .filter(|v| parse_gba_challenge(v).is_none())
        .cloned()
        .collect();
    response.headers_mut().remove(header::WWW_AUTHENTICATE);
    for value in others {
        response
            .headers_mut()
            .append(header::WWW_AUTHENTICATE, value);
    }
    response
}

fn empty() -> ProxyBody {
    Full::new(Bytes::new())
        .map_err(|never| match never {})
        .boxed()
}

/// The proxy's own answer: a short plain-text body.
fn text(status: StatusCode, message: &str) -> Response<ProxyBody> {
    let body = Full::new(Bytes::from(format!("{message}\n")))
        .map_err(|never| match never {})
        .boxed();
    let mut response = Response::new(body);
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// An error with its causes, `outer: inner: …` (hyper's own message alone says little).
fn error_chain(e: &dyn std::error::Error) -> String {
    let mut message = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

/// The one log line per request: never the path (it may carry codes) nor credentials.
fn log(method: &Method, host: &str, status: StatusCode, gba: Gba) {
    tracing::info!(
        method = %method,
        host = %host,
        status = status.as_u16(),
        gba = gba.as_str(),
        "proxied"
    );
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn the_gba_token_is_appended_once() {
        for (given, want) in [
            (Some("Mozilla/5.0 X"), "Mozilla/5.0 X 3gpp-gba"),
            (Some("Mozilla/5.0 X 3gpp-gba"), "Mozilla/5.0 X 3gpp-gba"),
            (Some(" "), "3gpp-gba"),
            (None, "3gpp-gba"),
        ] {
            let mut headers = HeaderMap::new();
            if let Some(ua) = given {
                headers.insert(header::USER_AGENT, HeaderValue::from_str(ua).unwrap());
            }
            add_gba_token(&mut headers);
            assert_eq!(headers[header::USER_AGENT], want, "{given:?}");
        }
    }

    #[test]
    fn connection_names_and_hop_by_hop_headers_are_removed() {
        let mut h = HeaderMap::new();
        for (name, value) in [
            ("connection", "keep-alive, X-Hop"),
            ("x-hop", "1"),
            ("keep-alive", "timeout=5"),
            ("proxy-authorization", "Basic eDp5"),
            ("te", "trailers"),
            ("x-end", "2"),
        ] {
            h.insert(
                HeaderName::from_static(name),
                HeaderValue::from_static(value),
            );
        }
        strip_hop_by_hop(&mut h);
        assert_eq!(h.len(), 1, "{h:?}");
        assert_eq!(h["x-end"], "2");
    }

    #[test]
    fn only_absolute_http_targets_are_proxied() {
        let ok = target(&"http://op.example:8080/authorize?x=1".parse().unwrap()).unwrap();
        assert_eq!(authority(&ok), "op.example:8080");
        assert_eq!(
            authority(&target(&"http://op.example/".parse().unwrap()).unwrap()),
            "op.example"
        );
        assert!(target(&"/authorize".parse().unwrap()).is_err());
        assert!(target(&"https://op.example/".parse().unwrap()).is_err());
    }
}
