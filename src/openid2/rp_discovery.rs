//! Relying-party discovery (OpenID Authentication 2.0 §13, §9.2.1; Yadis 1.0 §6.2): before it
//! answers a relying party, the OP fetches the realm's XRDS and checks that the `return_to`
//! it was given is one the site itself lists, so an attacker who controls some page under a
//! realm cannot collect assertions meant for the site.
//!
//! Fetching toward URLs that relying parties choose is a way into the operator's network
//! (server-side request forgery), so every connection is checked against an address policy:
//! only globally routable addresses, plus the blocks the operator allows
//! (`openid2_rp_discovery_allow`). The check is made on the addresses the name resolves to,
//! in the resolver reqwest connects through, so a name cannot be made to resolve elsewhere
//! between the check and the connection; redirects (at most three) pass the same check.
//! Answers are small (at most [`MAX_BODY`]), time-limited, and cached per realm.
//!
//! This is the OP's only outgoing HTTP on behalf of relying parties; the pure parts (where
//! the XRDS is, whether a `return_to` is listed, which addresses are public) are functions
//! with unit tests.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration as StdDuration;

use time::{Duration, OffsetDateTime};

use super::realm::Realm;
use super::xrds;
use crate::config::RpDiscovery as Mode;
use crate::web::client_ip::CidrList;

/// The largest document read from a relying party.
pub const MAX_BODY: usize = 256 * 1024;
/// Redirects followed in one fetch.
const MAX_REDIRECTS: usize = 3;
/// How long a document (or its absence) is reused.
const CACHE_TTL: Duration = Duration::minutes(10);
/// How long a failure to reach a site is reused.
const FAILURE_TTL: Duration = Duration::minutes(1);
/// Realms cached at most.
const CACHE_MAX: usize = 10_000;

/// What discovery says about one `return_to`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// The site lists this `return_to`.
    Listed,
    /// The site lists return addresses, and this is not one of them.
    NotListed { listed: Vec<String> },
    /// The site publishes no return addresses (no XRDS, or none in it).
    Unpublished,
    /// The site could not be asked: unreachable, too slow, too big, or outside the address
    /// policy.
    Unreachable(String),
    /// Discovery is off.
    Off,
}

impl Verdict {
    /// Whether the assertion may go out under `mode`.
    pub fn allows(&self, mode: Mode) -> bool {
        match self {
            Self::Listed | Self::Off => true,
            Self::NotListed { .. } => false,
            Self::Unpublished | Self::Unreachable(_) => mode != Mode::Require,
        }
    }
}

/// What one realm's discovery found.
#[derive(Debug, Clone)]
enum Found {
    Urls(Vec<String>),
    Unreachable(String),
}

#[derive(Debug, Clone)]
struct Cached {
    found: Found,
    at: OffsetDateTime,
}

/// Relying-party discovery with its HTTP client and cache; cheap to clone.
#[derive(Debug, Clone)]
pub struct RpDiscoverer {
    mode: Mode,
    /// `None` when discovery is off; an error when the HTTP client could not be built (then
    /// every site is unreachable, which `require` refuses).
    client: Option<Result<reqwest::Client, String>>,
    allow: CidrList,
    cache: Arc<Mutex<HashMap<String, Cached>>>,
}

impl RpDiscoverer {
    pub fn new(mode: Mode, allow: CidrList, timeout: StdDuration) -> Self {
        let client = match mode {
            Mode::Off => None,
            Mode::Check | Mode::Require => Some(client(&allow, timeout).inspect_err(|e| {
                tracing::error!("relying-party discovery cannot make its HTTP client: {e}");
            })),
        };
        Self {
            mode,
            client,
            allow,
            cache: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Whether `return_to` is one of the return addresses `realm`'s site publishes.
    pub async fn verify(&self, realm: &Realm, return_to: &str, now: OffsetDateTime) -> Verdict {
        let client = match &self.client {
            None => return Verdict::Off,
            Some(Err(e)) => return Verdict::Unreachable(e.clone()),
            Some(Ok(client)) => client,
        };
        let found = match self.cached(realm.as_str(), now) {
            Some(found) => found,
            None => {
                let found = match discover(client, &self.allow, &discovery_url(realm)).await {
                    Ok(urls) => Found::Urls(urls),
                    Err(reason) => {
                        // Once per realm and FAILURE_TTL, not per login.
                        tracing::info!(realm = realm.as_str(), "relying-party discovery: {reason}");
                        Found::Unreachable(reason)
                    }
                };
                self.remember(realm.as_str(), &found, now);
                found
            }
        };
        match found {
            Found::Unreachable(reason) => Verdict::Unreachable(reason),
            Found::Urls(urls) if urls.is_empty() => Verdict::Unpublished,
            Found::Urls(urls) if is_listed(&urls, return_to) => Verdict::Listed,
            Found::Urls(listed) => Verdict::NotListed { listed },
        }
    }

    fn cached(&self, realm: &str, now: OffsetDateTime) -> Option<Found> {
        let cache = self.cache.lock().ok()?;
        let hit = cache.get(realm)?;
        let ttl = match hit.found {
            Found::Urls(_) => CACHE_TTL,
            Found::Unreachable(_) => FAILURE_TTL,
        };
        (now >= hit.at && now - hit.at < ttl).then(|| hit.found.clone())
    }

    fn remember(&self, realm: &str, found: &Found, now: OffsetDateTime) {
        if let Ok(mut cache) = self.cache.lock() {
            if cache.len() >= CACHE_MAX {
                cache.clear();
            }
            cache.insert(
                realm.to_owned(),
                Cached {
                    found: found.clone(),
                    at: now,
                },
            );
        }
    }
}

fn client(allow: &CidrList, timeout: StdDuration) -> Result<reqwest::Client, String> {
    let redirect_allow = allow.clone();
    reqwest::Client::builder()
        .user_agent(concat!(
            "akaid/",
            env!("CARGO_PKG_VERSION"),
            " (OpenID RP discovery)"
        ))
        .timeout(timeout)
        .connect_timeout(timeout)
        .no_proxy()
        .dns_resolver(Arc::new(PolicyResolver {
            allow: allow.clone(),
        }))
        .redirect(reqwest::redirect::Policy::custom(move |attempt| {
            if attempt.previous().len() >= MAX_REDIRECTS {
                attempt.error("too many redirects")
            } else if let Err(e) = check_url(attempt.url(), &redirect_allow) {
                attempt.error(e)
            } else {
                attempt.follow()
            }
        }))
        .build()
        .map_err(|e| e.to_string())
}

/// Resolves names as the system does, then keeps only the addresses the policy allows.
#[derive(Debug)]
struct PolicyResolver {
    allow: CidrList,
}

impl reqwest::dns::Resolve for PolicyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let allow = self.allow.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0))
                .await?
                .filter(|a| address_allowed(a.ip(), &allow))
                .collect();
            if addrs.is_empty() {
                let message = format!("{host} has no address that discovery may reach");
                return Err(Box::new(std::io::Error::new(
                    std::io::ErrorKind::PermissionDenied,
                    message,
                ))
                    as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The checks a URL passes before anything is fetched from it: http or https, and an IP
/// literal host (which no resolver sees) inside the address policy.
fn check_url(url: &url::Url, allow: &CidrList) -> Result<(), String> {
    if url.scheme() != "http" && url.scheme() != "https" {
        return Err(format!("{url} is not http or https"));
    }
    let literal = match url.host() {
        Some(url::Host::Ipv4(ip)) => Some(IpAddr::V4(ip)),
        Some(url::Host::Ipv6(ip)) => Some(IpAddr::V6(ip)),
        Some(url::Host::Domain(_)) => None,
        None => return Err(format!("{url} has no host")),
    };
    match literal {
        Some(ip) if !address_allowed(ip, allow) => {
            Err(format!("{ip} is outside the addresses discovery may reach"))
        }
        _ => Ok(()),
    }
}

/// Yadis (§6.2.4–6.2.6): the document itself, or the one named by `X-XRDS-Location` in the
/// headers or in an HTML `<meta http-equiv>`; then its `return_to` services.
async fn discover(
    client: &reqwest::Client,
    allow: &CidrList,
    url: &str,
) -> Result<Vec<String>, String> {
    let first = fetch(client, allow, url).await?;
    let Some(first) = first else {
        return Ok(Vec::new());
    };
    let document = if first.is_xrds {
        first.body
    } else {
        let location = first.xrds_location.or_else(|| {
            first
                .is_html
                .then(|| xrds_location_in_html(&first.body))
                .flatten()
        });
        let Some(location) = location else {
            return Ok(Vec::new());
        };
        let location = url::Url::parse(&first.url)
            .and_then(|base| base.join(&location))
            .map_err(|e| format!("X-XRDS-Location {location:?}: {e}"))?;
        match fetch(client, allow, location.as_str()).await? {
            Some(doc) => doc.body,
            None => return Ok(Vec::new()),
        }
    };
    xrds::return_to_urls(&document).map_err(|e| format!("the XRDS document is malformed: {e}"))
}

#[derive(Debug)]
struct Fetched {
    url: String,
    body: String,
    is_xrds: bool,
    is_html: bool,
    xrds_location: Option<String>,
}

/// One GET; `None` for an answer that is not a success (the site publishes nothing there).
async fn fetch(
    client: &reqwest::Client,
    allow: &CidrList,
    url: &str,
) -> Result<Option<Fetched>, String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("{url}: {e}"))?;
    check_url(&parsed, allow)?;
    let mut response = client
        .get(parsed)
        .header(
            reqwest::header::ACCEPT,
            "application/xrds+xml, text/html;q=0.5, */*;q=0.1",
        )
        .send()
        .await
        .map_err(|e| describe_error(url, &e))?;
    if !response.status().is_success() {
        return Ok(None);
    }
    let media_type = response
        .headers()
        .get(reqwest::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default();
    let xrds_location = response
        .headers()
        .get("x-xrds-location")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let final_url = response.url().to_string();
    let mut body = Vec::new();
    while let Some(chunk) = response
        .chunk()
        .await
        .map_err(|e| describe_error(url, &e))?
    {
        if body.len() + chunk.len() > MAX_BODY {
            return Err(format!("{url}: the answer is larger than {MAX_BODY} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Some(Fetched {
        url: final_url,
        body: String::from_utf8_lossy(&body).into_owned(),
        is_xrds: media_type == "application/xrds+xml",
        is_html: media_type == "text/html" || media_type == "application/xhtml+xml",
        xrds_location,
    }))
}

fn describe_error(url: &str, e: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut text = format!("{url}: ");
    text.push_str(if e.is_timeout() {
        "no answer in time"
    } else if e.is_redirect() {
        "a redirect was refused"
    } else if e.is_connect() {
        "cannot connect"
    } else {
        "the request failed"
    });
    // The innermost cause says why (e.g. the address policy's refusal).
    let mut source = e.source();
    let mut last = None;
    while let Some(s) = source {
        last = Some(s.to_string());
        source = s.source();
    }
    if let Some(last) = last {
        text.push_str(" (");
        text.push_str(&last);
        text.push(')');
    }
    text
}

/// The URL discovery starts from (§13): the realm, with a wildcard host label replaced by
/// `www`.
pub fn discovery_url(realm: &Realm) -> String {
    let text = realm.as_str();
    match text.split_once("://*.") {
        Some((scheme, rest)) => format!("{scheme}://www.{rest}"),
        None => text.to_owned(),
    }
}

/// Whether `return_to` is one of the listed return addresses. A listed URL is matched the way
/// a realm is (§9.2.1: "as if the discovered URL were the realm"), so a listed
/// `https://rp.example/return` admits `https://rp.example/return?session=1`.
pub fn is_listed(listed: &[String], return_to: &str) -> bool {
    listed
        .iter()
        .filter_map(|url| Realm::parse(url).ok())
        .any(|pattern| pattern.matches(return_to))
}

/// The `content` of `<meta http-equiv="X-XRDS-Location" content="…">` in an HTML page's head
/// (Yadis §6.2.5), entity-decoded. Attribute names and the header name
/// are case-insensitive; values may be quoted with `"` or `'`.
pub fn xrds_location_in_html(html: &str) -> Option<String> {
    let lower = html.to_ascii_lowercase();
    let head_end = lower.find("<body").unwrap_or(lower.len());
    let mut at = 0;
    while let Some(start) = lower[at..head_end].find("<meta") {
        let tag_start = at + start;
        let tag_end = tag_start + lower[tag_start..].find('>')?;
        let tag = &html[tag_start..tag_end];
        let attrs = crate::web::scrape::attributes(tag);
        let is_xrds = attrs
            .iter()
            .any(|(k, v)| k == "http-equiv" && v.eq_ignore_ascii_case("x-xrds-location"));
        if is_xrds && let Some((_, content)) = attrs.iter().find(|(k, _)| k == "content") {
            return Some(content.clone());
        }
        at = tag_end;
    }
    None
}

/// Whether discovery may connect to `ip`: a globally routable address, or one inside a
/// block the operator allows.
pub fn address_allowed(ip: IpAddr, allow: &CidrList) -> bool {
    allow.0.iter().any(|c| c.contains(ip)) || is_global(ip)
}

/// Globally routable unicast (the IANA special-purpose registries, RFC 6890): not loopback,
/// private, shared (CGN), link-local, documentation, benchmarking, multicast or reserved.
fn is_global(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_global_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return is_global_v4(v4);
            }
            let s = v6.segments();
            !(v6.is_unspecified()
                || v6.is_loopback()
                || v6.is_multicast()
                || (s[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (s[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
                || (s[0] == 0x2001 && s[1] == 0x0db8) // documentation
                || (s[0] == 0x0064 && s[1] == 0xff9b) // NAT64: the embedded v4 decides
                || s[..6] == [0, 0, 0, 0, 0, 0]) // IPv4-compatible, deprecated
        }
    }
}

fn is_global_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    !(a == 0
        || a == 10
        || a == 127
        || (a == 100 && (64..128).contains(&b)) // shared address space
        || (a == 169 && b == 254)
        || (a == 172 && (16..32).contains(&b))
        || (a == 192 && b == 0 && c == 0)
        || (a == 192 && b == 0 && c == 2)
        || (a == 192 && b == 168)
        || (a == 198 && (18..20).contains(&b))
        || (a == 198 && b == 51 && c == 100)
        || (a == 203 && b == 0 && c == 113)
        || a >= 224)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cidrs(text: &str) -> CidrList {
        text.parse().unwrap()
    }

    #[test]
    fn only_public_addresses_unless_allowed() {
        let none = CidrList::default();
        for blocked in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "255.255.255.255",
            "::1",
            "::",
            "fd00::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:10.0.0.1",
            "2001:db8::1",
        ] {
            assert!(
                !address_allowed(blocked.parse().unwrap(), &none),
                "{blocked}"
            );
        }
        for public in ["93.184.216.34", "172.32.0.1", "8.8.8.8", "2a00:1450::1"] {
            assert!(address_allowed(public.parse().unwrap(), &none), "{public}");
        }
        let loopback = cidrs("127.0.0.0/8,::1/128");
        assert!(address_allowed("127.0.0.1".parse().unwrap(), &loopback));
        assert!(address_allowed("::1".parse().unwrap(), &loopback));
        assert!(!address_allowed("10.0.0.1".parse().unwrap(), &loopback));
    }

    #[test]
    fn ip_literal_urls_are_checked_before_any_connection() {
        let none = CidrList::default();
        let url = |s: &str| url::Url::parse(s).unwrap();
        assert!(check_url(&url("http://127.0.0.1:8000/"), &none).is_err());
        assert!(check_url(&url("http://[::1]/"), &none).is_err());
        assert!(check_url(&url("http://169.254.169.254/latest/"), &none).is_err());
        assert!(check_url(&url("ftp://rp.example/"), &none).is_err());
        assert!(check_url(&url("https://rp.example/"), &none).is_ok());
        assert!(check_url(&url("http://127.0.0.1:8000/"), &cidrs("127.0.0.0/8")).is_ok());
    }

    #[test]
    fn a_wildcard_realm_is_discovered_at_www() {
        let realm = Realm::parse("https://*.rp.example/openid/").unwrap();
        assert_eq!(discovery_url(&realm), "https://www.rp.example/openid/");
        let realm = Realm::parse("https://rp.example/").unwrap();
        assert_eq!(discovery_url(&realm), "https://rp.example/");
    }

    #[test]
    fn listed_urls_match_like_realms() {
        let listed = vec![
            "https://rp.example/return".to_owned(),
            "https://*.shop.example/cb".to_owned(),
        ];
        assert!(is_listed(&listed, "https://rp.example/return"));
        assert!(is_listed(&listed, "https://rp.example/return?session=1"));
        assert!(is_listed(&listed, "https://rp.example/return/more"));
        assert!(is_listed(&listed, "https://eu.shop.example/cb"));
        assert!(!is_listed(&listed, "https://rp.example/other"));
        assert!(!is_listed(&listed, "http://rp.example/return"));
        assert!(!is_listed(&listed, "https://rp.example.evil/return"));
        assert!(!is_listed(&[], "https://rp.example/return"));
        assert!(!is_listed(&["not a url".to_owned()], "https://rp.example/"));
    }

    #[test]
    fn xrds_location_is_read_from_the_html_head() {
        let page = r#"<!DOCTYPE html><html><HEAD><title>x</title>
            <meta charset="utf-8">
            <META HTTP-EQUIV='X-XRDS-Location' content="https://rp.example/xrds?a=1&amp;b=2">
            </head><body><meta http-equiv="X-XRDS-Location" content="https://evil/"></body></html>"#;
        assert_eq!(
            xrds_location_in_html(page).as_deref(),
            Some("https://rp.example/xrds?a=1&b=2")
        );
        assert_eq!(xrds_location_in_html("<html><head></head></html>"), None);
        // Only the head counts.
        assert_eq!(
            xrds_location_in_html(
                r#"<html><body><meta http-equiv="X-XRDS-Location" content="https://x/"></body>"#
            ),
            None
        );
        // Unterminated tags end the search instead of panicking.
        assert_eq!(
            xrds_location_in_html("<meta http-equiv=\"x-xrds-location"),
            None
        );
    }

    #[test]
    fn verdicts_follow_the_mode() {
        let unpublished = Verdict::Unpublished;
        let unreachable = Verdict::Unreachable("x".into());
        let not_listed = Verdict::NotListed { listed: vec![] };
        assert!(unpublished.allows(Mode::Check));
        assert!(unreachable.allows(Mode::Check));
        assert!(!unpublished.allows(Mode::Require));
        assert!(!unreachable.allows(Mode::Require));
        assert!(!not_listed.allows(Mode::Check));
        assert!(Verdict::Listed.allows(Mode::Require));
    }

    /// A site that accepts connections and never answers costs the timeout once; the failure
    /// is cached.
    #[tokio::test]
    async fn a_silent_site_is_unreachable_within_the_timeout_and_cached() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = accepted.clone();
        tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                held.push(socket);
            }
        });
        let discoverer = RpDiscoverer::new(
            Mode::Check,
            cidrs("127.0.0.0/8"),
            StdDuration::from_millis(300),
        );
        let realm = Realm::parse(&format!("http://{addr}/")).unwrap();
        let now = OffsetDateTime::UNIX_EPOCH + Duration::days(20_000);
        let return_to = format!("http://{addr}/return");
        let verdict = discoverer.verify(&realm, &return_to, now).await;
        assert!(
            matches!(&verdict, Verdict::Unreachable(r) if r.contains("no answer in time")),
            "{verdict:?}"
        );
        let again = discoverer
            .verify(&realm, &return_to, now + Duration::seconds(30))
            .await;
        assert!(matches!(again, Verdict::Unreachable(_)));
        assert_eq!(accepted.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn loopback_is_not_fetched_by_default() {
        let discoverer =
            RpDiscoverer::new(Mode::Check, CidrList::default(), StdDuration::from_secs(1));
        let realm = Realm::parse("http://localhost:9/").unwrap();
        let verdict = discoverer
            .verify(
                &realm,
                "http://localhost:9/return",
                OffsetDateTime::UNIX_EPOCH,
            )
            .await;
        assert!(
            matches!(&verdict, Verdict::Unreachable(r) if r.contains("may reach")),
            "{verdict:?}"
        );
    }
}
