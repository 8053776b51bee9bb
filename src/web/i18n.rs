//! Every human-facing string of the pages, per language, and the choice of language from
//! `Accept-Language` (RFC 9110 §12.5.4, with the "lookup" matching of RFC 4647 §3.4 so that
//! `de-AT` gets German).
//!
//! A language is one `Strings` value: the struct has a field per string, so a language that
//! leaves one out does not compile. Texts with a variable part name it in braces (`{host}`,
//! `{site}`, `{url}`, `{date}`); [`Strings::fill`] puts the value in, and a test checks that
//! every language uses the same placeholders as English. Protocol error codes sent to relying
//! parties are not here: they are part of the protocols, not of the pages.
//!
//! To add a language: a new `Lang` variant, its tag in [`Lang::tag`], a `const XX: Strings`
//! written out in full, and the variant in [`Lang::ALL`] and [`Lang::strings`].

use axum::http::{HeaderMap, header};

/// The languages the pages are written in; the first is the fallback.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lang {
    En,
    De,
}

impl Lang {
    /// Every language, the fallback first.
    pub const ALL: [Lang; 2] = [Lang::En, Lang::De];

    /// The BCP 47 tag (`<html lang>`, `Content-Language`).
    pub fn tag(self) -> &'static str {
        self.strings().lang
    }

    pub fn strings(self) -> &'static Strings {
        match self {
            Lang::En => &EN,
            Lang::De => &DE,
        }
    }

    /// The language for a request's `Accept-Language` header (English without one).
    pub fn from_headers(headers: &HeaderMap) -> Lang {
        let values: Vec<&str> = headers
            .get_all(header::ACCEPT_LANGUAGE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .collect();
        Lang::negotiate(&values.join(","))
    }

    /// The best language for an `Accept-Language` value: the one with the highest weight,
    /// a range naming the language exactly counting before a longer range that starts with
    /// it (`de-AT` for `de`), which counts before `*`; among equal weights the one listed
    /// first, English for `*`. A weight of 0 excludes; nothing acceptable gives English.
    pub fn negotiate(accept_language: &str) -> Lang {
        let ranges = parse_accept_language(accept_language);
        let mut best: Option<(u16, usize, Lang)> = None;
        for lang in Lang::ALL {
            let Some((q, position)) = weight(&ranges, lang.tag()) else {
                continue;
            };
            if q == 0 {
                continue;
            }
            let better = match best {
                None => true,
                Some((bq, bpos, _)) => q > bq || (q == bq && position < bpos),
            };
            if better {
                best = Some((q, position, lang));
            }
        }
        best.map_or(Lang::En, |(_, _, lang)| lang)
    }
}

/// One language range of `Accept-Language` with its weight in thousandths, in header order.
#[derive(Debug, PartialEq, Eq)]
struct Range {
    range: String,
    q: u16,
}

/// At most this many ranges are read from one header.
const MAX_RANGES: usize = 32;

/// The well-formed ranges of an `Accept-Language` value; a malformed member is skipped.
fn parse_accept_language(value: &str) -> Vec<Range> {
    value
        .split(',')
        .filter_map(|member| {
            let mut parts = member.split(';');
            let range = parts.next()?.trim().to_ascii_lowercase();
            if !valid_range(&range) {
                return None;
            }
            let mut q = 1000;
            for param in parts {
                let (name, value) = param.split_once('=')?;
                if name.trim().eq_ignore_ascii_case("q") {
                    q = parse_qvalue(value.trim())?;
                }
            }
            Some(Range { range, q })
        })
        .take(MAX_RANGES)
        .collect()
}

/// `*`, or 1–8 letters followed by `-`-separated subtags of 1–8 letters or digits.
fn valid_range(range: &str) -> bool {
    if range == "*" {
        return true;
    }
    let mut subtags = range.split('-');
    let first_ok = subtags
        .next()
        .is_some_and(|s| (1..=8).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphabetic()));
    first_ok
        && subtags
            .all(|s| (1..=8).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric()))
}

/// RFC 9110 §12.4.2 `qvalue`: `0`–`1` with at most three decimals, in thousandths.
fn parse_qvalue(text: &str) -> Option<u16> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if fraction.len() > 3 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut thousandths: u16 = 0;
    for (i, b) in fraction.bytes().enumerate() {
        thousandths += u16::from(b - b'0') * [100, 10, 1][i];
    }
    match whole {
        "0" => Some(thousandths),
        "1" if thousandths == 0 => Some(1000),
        _ => None,
    }
}

/// The weight `ranges` give `tag`, and the position of the range that gave it: from the most
/// specific kind of match (exact, then a longer range starting with `tag-`, then `*`), the
/// highest weight of that kind.
fn weight(ranges: &[Range], tag: &str) -> Option<(u16, usize)> {
    let prefix = format!("{tag}-");
    let kinds: [&dyn Fn(&str) -> bool; 3] = [
        &|r: &str| r == tag,
        &|r: &str| r.starts_with(&prefix),
        &|r: &str| r == "*",
    ];
    for matches in kinds {
        let best = ranges
            .iter()
            .enumerate()
            .filter(|(_, r)| matches(&r.range))
            .max_by(|(ia, a), (ib, b)| a.q.cmp(&b.q).then(ib.cmp(ia)));
        if let Some((position, r)) = best {
            // `*` stands for every language equally: English, the fallback, comes first.
            let position = if r.range == "*" { usize::MAX } else { position };
            return Some((r.q, position));
        }
    }
    None
}

macro_rules! strings {
    ($($(#[doc = $doc:literal])+ $name:ident,)+) => {
        /// The strings of one language (see the module documentation).
        #[derive(Debug)]
        pub struct Strings {
            $($(#[doc = $doc])+ pub $name: &'static str,)+
        }

        impl Strings {
            /// Every string with its name, for the completeness tests.
            pub fn entries(&self) -> Vec<(&'static str, &'static str)> {
                vec![$((stringify!($name), self.$name),)+]
            }
        }
    };
}

strings! {
    /// The BCP 47 language tag.
    lang,
    /// The operator as people know it; heads every page.
    operator,
    /// The skip link to the main content.
    skip_to_content,
    /// The footer line.
    footer,
    /// The footer's link to /account.
    footer_account,
    /// `time` format description for dates on the account page.
    date_format,

    /// The consent page's `<title>`: `{host}`.
    consent_title,
    /// Above the site's host in the consent heading.
    consent_intro,
    /// What the site asks, below its name.
    consent_question,
    /// Heading of the list of what is shared: `{host}`.
    consent_shared_heading,
    /// What "remember" means, before the link to the account page.
    consent_remember,
    /// The link to the account page from the consent page.
    consent_remember_link,
    /// What Deny does.
    consent_deny_note,
    /// The Allow button.
    consent_allow,
    /// The Deny button.
    consent_deny,

    /// The 401 Ua page's title and heading.
    ua_title,
    /// What GBA sign-in is.
    ua_what,
    /// Why the page is showing.
    ua_why_here,
    /// Heading over what to do.
    what_to_do_heading,
    /// First thing to try.
    ua_todo_browser,
    /// Second thing to try.
    ua_todo_mobile_data,
    /// Last resort.
    ua_todo_other_way,

    /// The "needs your SIM" page's title and heading.
    sim_title,
    /// Who asked: `{site}`.
    sim_intro,
    /// The same, for the account page.
    sim_intro_account,
    /// How the operator confirms it, and why this browser cannot.
    sim_how,
    /// First thing to try.
    sim_todo_phone,
    /// Second thing to try.
    sim_todo_mobile_data,
    /// Last resort.
    sim_todo_other_way,

    /// The account page's title and heading.
    account_title,
    /// Above the list of allowed sites.
    account_intro,
    /// When no site is allowed.
    account_empty,
    /// Before what a site receives: `{date}`.
    account_since,
    /// The Revoke button.
    account_revoke,
    /// The Revoke button's accessible name: `{host}`.
    account_revoke_label,
    /// What revoking does and does not do.
    account_revoke_note,

    /// The sign-out confirmation's title.
    logout_title,
    /// Its heading.
    logout_heading,
    /// What signing out means.
    logout_text,
    /// The Sign out button.
    logout_button,
    /// What to do when the person did not ask for it.
    logout_stay,

    /// The OP identifier's page (`/`): title and heading.
    home_title,
    /// What the service is.
    home_text,
    /// A user identifier's page (`/id/…`).
    identifier_text,

    /// The self-posting form's title and heading: `{host}`.
    return_title,
    /// Why there is a button to press.
    return_text,
    /// The button: `{host}`.
    return_button,

    /// Consent item `identifier`.
    item_identifier,
    /// Consent item `phone`.
    item_phone,
    /// Consent item `offline_access`.
    item_offline_access,
    /// Profile field `nickname`.
    item_nickname,
    /// Profile field `email`.
    item_email,
    /// Profile field `fullname`.
    item_fullname,
    /// Profile field `dob`.
    item_dob,
    /// Profile field `gender`.
    item_gender,
    /// Profile field `postcode`.
    item_postcode,
    /// Profile field `country`.
    item_country,
    /// Profile field `language`.
    item_language,
    /// Profile field `timezone`.
    item_timezone,

    /// Label of the technical detail on an error page (shown as sent, in English).
    error_detail,

    /// Unknown site: title.
    unknown_site_title,
    /// Unknown site: what happened.
    unknown_site_happened,
    /// Unknown site: what to do.
    unknown_site_to_do,
    /// A redirect address the site did not register: title.
    unregistered_return_title,
    /// … what happened.
    unregistered_return_happened,
    /// … what to do.
    unregistered_return_to_do,
    /// An OpenID 2.0 return_to the site does not list: title.
    return_not_listed_title,
    /// … what happened: `{url}`, `{host}`.
    return_not_listed_happened,
    /// … what to do.
    return_not_listed_to_do,
    /// A site that publishes no return addresses: title.
    site_unverifiable_title,
    /// … what happened: `{host}`.
    site_unverifiable_happened,
    /// … what to do.
    site_unverifiable_to_do,
    /// A site the operator blocks: title.
    blocked_site_title,
    /// … what happened: `{host}`.
    blocked_site_happened,
    /// … what to do.
    blocked_site_to_do,
    /// A consent answer for an expired, used or foreign request: title.
    expired_title,
    /// … what happened.
    expired_happened,
    /// … what to do.
    expired_to_do,
    /// A consent answer after the login ended: title.
    session_ended_title,
    /// … what happened.
    session_ended_happened,
    /// … what to do.
    session_ended_to_do,
    /// A consent answer that is neither Allow nor Deny: title.
    bad_answer_title,
    /// … what happened.
    bad_answer_happened,
    /// … what to do.
    bad_answer_to_do,
    /// A malformed sign-in request: title.
    bad_request_title,
    /// … what happened.
    bad_request_happened,
    /// … what to do.
    bad_request_to_do,
    /// A return address that cannot be put in a redirect: title.
    bad_return_address_title,
    /// … what happened.
    bad_return_address_happened,
    /// … what to do.
    bad_return_address_to_do,
    /// An identifier URL this OP did not issue: title.
    no_such_identifier_title,
    /// … what happened.
    no_such_identifier_happened,
    /// … what to do.
    no_such_identifier_to_do,
    /// A revoke form without the session's token: title.
    revoke_refused_title,
    /// … what happened.
    revoke_refused_happened,
    /// … what to do.
    revoke_refused_to_do,
    /// A sign-out request that cannot be checked: title.
    logout_refused_title,
    /// … what happened.
    logout_refused_happened,
    /// … what to do.
    logout_refused_to_do,
    /// Signed out with nowhere to go back to: title.
    signed_out_title,
    /// … what happened.
    signed_out_happened,
    /// … what to do.
    signed_out_to_do,
    /// The service cannot check the SIM now: title.
    unavailable_title,
    /// … what happened.
    unavailable_happened,
    /// … what to do.
    unavailable_to_do,
    /// An internal error: title.
    internal_title,
    /// … what happened.
    internal_happened,
    /// … what to do.
    internal_to_do,
}

impl Strings {
    /// `text` with its `{name}` placeholder replaced by `value`.
    pub fn fill(&self, text: impl AsRef<str>, name: &str, value: impl std::fmt::Display) -> String {
        text.as_ref()
            .replace(&format!("{{{name}}}"), &value.to_string())
    }
}

/// English, complete: the fallback.
pub const EN: Strings = Strings {
    lang: "en",
    operator: "Your mobile operator",
    skip_to_content: "Skip to content",
    footer: "Sign-in with your SIM, run by your mobile operator.",
    footer_account: "Sites you have allowed",
    date_format: "[day] [month repr:long] [year]",

    consent_title: "Sign in to {host}?",
    consent_intro: "Sign in to",
    consent_question: "This site asks your mobile operator to confirm who you are, using the SIM in your phone.",
    consent_shared_heading: "{host} will receive",
    consent_remember: "If you allow, your answer is remembered for this site: next time you are signed in without being asked. You can take it back at any time on the page",
    consent_remember_link: "Sites you have allowed",
    consent_deny_note: "Deny takes you back to the site without signing you in. Nothing is shared.",
    consent_allow: "Allow",
    consent_deny: "Deny",

    ua_title: "Signing in with your SIM",
    ua_what: "Your phone proves who you are with its SIM card, using a standard called GBA (3GPP Generic Bootstrapping Architecture). This normally happens by itself in a moment, with nothing to type.",
    ua_why_here: "If you can read this, your browser did not answer on the SIM's behalf.",
    what_to_do_heading: "What you can do",
    ua_todo_browser: "Open the site in your phone's own browser and sign in again.",
    ua_todo_mobile_data: "Use your operator's mobile data: turn off Wi-Fi and try again.",
    ua_todo_other_way: "If it still does not work, your phone may not support SIM sign-in. Choose another way to sign in if the site offers one, or ask your operator.",

    sim_title: "Sign-in needs your phone's SIM",
    sim_intro: "{site} asked your mobile operator to confirm who you are.",
    sim_intro_account: "Your list of allowed sites is shown only on the phone whose SIM it belongs to.",
    sim_how: "Your operator confirms it with the SIM card in your phone, so there is no password to type here. This browser cannot do that.",
    sim_todo_phone: "Open the site on your phone, in its own browser, and sign in again from there.",
    sim_todo_mobile_data: "Use mobile data rather than Wi-Fi while you sign in.",
    sim_todo_other_way: "Or choose another way to sign in, if the site offers one.",

    account_title: "Sites you have allowed",
    account_intro: "These sites can sign you in with your phone without asking again. Revoke one and it will ask you next time.",
    account_empty: "You have not allowed any site to sign you in with your phone yet.",
    account_since: "Allowed on {date} to receive:",
    account_revoke: "Revoke",
    account_revoke_label: "Revoke {host}",
    account_revoke_note: "Revoking does not sign you out of the site itself; it only stops the site from signing you in with your SIM without asking.",

    logout_title: "Sign out",
    logout_heading: "Sign out of your mobile operator?",
    logout_text: "A site asked to sign you out. Sites will have to ask for your phone again the next time you sign in to them.",
    logout_button: "Sign out",
    logout_stay: "If you did not ask for this, close this page: you stay signed in.",

    home_title: "Sign in with your SIM",
    home_text: "This is your mobile operator's sign-in service. Sites that offer \"Sign in with your operator\" send you here, and the SIM in your phone confirms who you are.",
    identifier_text: "An identifier issued by your mobile operator's sign-in service.",

    return_title: "Returning to {host}",
    return_text: "Your sign-in is ready. Press the button to go back to the site.",
    return_button: "Continue to {host}",

    item_identifier: "An identifier for you that only this site gets",
    item_phone: "Your mobile number",
    item_offline_access: "Staying signed in while you are away from the site",
    item_nickname: "Your nickname",
    item_email: "Your email address",
    item_fullname: "Your full name",
    item_dob: "Your date of birth",
    item_gender: "Your gender",
    item_postcode: "Your postcode",
    item_country: "Your country",
    item_language: "Your preferred language",
    item_timezone: "Your time zone",

    error_detail: "Details for the site's developers",

    unknown_site_title: "This site is not known",
    unknown_site_happened: "The site that sent you here is not registered with this service. Nothing was sent to it.",
    unknown_site_to_do: "Go back to the site you came from. If this keeps happening, tell the site.",
    unregistered_return_title: "This sign-in cannot continue",
    unregistered_return_happened: "The request asks for the answer to go to an address the site did not register. Nothing was sent.",
    unregistered_return_to_do: "Go back to the site and start again. If this keeps happening, tell the site.",
    return_not_listed_title: "This sign-in cannot continue",
    return_not_listed_happened: "The request asks for your sign-in to be sent to {url}, which {host} does not list as one of its own addresses. Nothing was sent.",
    return_not_listed_to_do: "Go back to the site and start again. If this keeps happening, tell the site.",
    site_unverifiable_title: "This site cannot be checked",
    site_unverifiable_happened: "{host} does not say where its sign-ins may be sent, and this service only signs in to sites that do. Nothing was sent.",
    site_unverifiable_to_do: "Go back to the site; it may offer another way to sign in.",
    blocked_site_title: "Signing in to this site is blocked",
    blocked_site_happened: "Your mobile operator does not allow signing in to {host} with your SIM. Nothing was sent to the site.",
    blocked_site_to_do: "Go back to the site and choose another way to sign in. If you think this is a mistake, contact your operator.",
    expired_title: "This answer cannot be used",
    expired_happened: "The sign-in request it belongs to has expired, was already answered, or was made in another window or browser. Nothing was changed.",
    expired_to_do: "Go back to the site and start the sign-in again.",
    session_ended_title: "You are not signed in",
    session_ended_happened: "The sign-in that this answer belongs to has ended. Nothing was changed.",
    session_ended_to_do: "Go back to the site and start the sign-in again.",
    bad_answer_title: "This answer cannot be used",
    bad_answer_happened: "The form was not answered with Allow or Deny. Nothing was changed.",
    bad_answer_to_do: "Go back to the site and start the sign-in again.",
    bad_request_title: "This sign-in request cannot be used",
    bad_request_happened: "The site sent a sign-in request that this service cannot accept. Nothing was sent to it.",
    bad_request_to_do: "Go back to the site you came from and start the sign-in again. If this keeps happening, tell the site.",
    bad_return_address_title: "This sign-in cannot continue",
    bad_return_address_happened: "The site's return address cannot be used. Nothing was sent.",
    bad_return_address_to_do: "Go back to the site and start again. If this keeps happening, tell the site.",
    no_such_identifier_title: "No such identifier",
    no_such_identifier_happened: "This address is not an identifier issued by this service.",
    no_such_identifier_to_do: "Check the address.",
    revoke_refused_title: "This change cannot be made",
    revoke_refused_happened: "The page it came from is out of date, or belongs to another session or window. Nothing was changed.",
    revoke_refused_to_do: "Open your list of allowed sites again and retry.",
    logout_refused_title: "This sign-out request cannot be used",
    logout_refused_happened: "The site's request to sign you out could not be checked, so nothing was changed.",
    logout_refused_to_do: "You are still signed in. Go back to the site and try again.",
    signed_out_title: "You are signed out",
    signed_out_happened: "Your mobile operator no longer has you signed in on this device.",
    signed_out_to_do: "You can close this page.",
    unavailable_title: "Sign-in is unavailable",
    unavailable_happened: "The operator's sign-in service could not check your SIM just now.",
    unavailable_to_do: "Try again in a minute.",
    internal_title: "Something went wrong",
    internal_happened: "The sign-in service had an internal problem. Nothing was sent to the site.",
    internal_to_do: "Go back to the site and try again in a moment.",
};

/// German, complete: formal address ("Sie"), as service pages in German use.
pub const DE: Strings = Strings {
    lang: "de",
    operator: "Ihr Mobilfunkanbieter",
    skip_to_content: "Zum Inhalt springen",
    footer: "Anmeldung mit Ihrer SIM-Karte, betrieben von Ihrem Mobilfunkanbieter.",
    footer_account: "Websites, denen Sie zugestimmt haben",
    date_format: "[day].[month].[year]",

    consent_title: "Bei {host} anmelden?",
    consent_intro: "Anmelden bei",
    consent_question: "Diese Website bittet Ihren Mobilfunkanbieter, mit der SIM-Karte in Ihrem Telefon zu bestätigen, wer Sie sind.",
    consent_shared_heading: "{host} erhält",
    consent_remember: "Wenn Sie zustimmen, wird Ihre Antwort für diese Website gespeichert: Beim nächsten Mal werden Sie ohne Nachfrage angemeldet. Sie können die Zustimmung jederzeit widerrufen, auf der Seite",
    consent_remember_link: "Websites, denen Sie zugestimmt haben",
    consent_deny_note: "Mit „Ablehnen“ kehren Sie ohne Anmeldung zur Website zurück. Es wird nichts weitergegeben.",
    consent_allow: "Zustimmen",
    consent_deny: "Ablehnen",

    ua_title: "Anmeldung mit Ihrer SIM-Karte",
    ua_what: "Ihr Telefon weist mit seiner SIM-Karte nach, wer Sie sind. Dafür gibt es einen Standard namens GBA (3GPP Generic Bootstrapping Architecture). Normalerweise geschieht das in einem Augenblick von selbst, ohne dass Sie etwas eingeben müssen.",
    ua_why_here: "Wenn Sie diesen Text lesen, hat Ihr Browser nicht für die SIM-Karte geantwortet.",
    what_to_do_heading: "Was Sie tun können",
    ua_todo_browser: "Öffnen Sie die Website im Browser Ihres Telefons und melden Sie sich erneut an.",
    ua_todo_mobile_data: "Nutzen Sie die mobilen Daten Ihres Anbieters: Schalten Sie WLAN aus und versuchen Sie es noch einmal.",
    ua_todo_other_way: "Wenn es dann immer noch nicht klappt, unterstützt Ihr Telefon die Anmeldung mit der SIM-Karte vielleicht nicht. Wählen Sie eine andere Anmeldemöglichkeit, falls die Website eine anbietet, oder fragen Sie Ihren Mobilfunkanbieter.",

    sim_title: "Für die Anmeldung wird die SIM-Karte Ihres Telefons gebraucht",
    sim_intro: "{site} hat Ihren Mobilfunkanbieter gebeten, zu bestätigen, wer Sie sind.",
    sim_intro_account: "Die Liste der Websites, denen Sie zugestimmt haben, wird nur auf dem Telefon angezeigt, zu dessen SIM-Karte sie gehört.",
    sim_how: "Ihr Anbieter bestätigt das mit der SIM-Karte in Ihrem Telefon, deshalb gibt es hier kein Passwort. Dieser Browser kann das nicht.",
    sim_todo_phone: "Öffnen Sie die Website auf Ihrem Telefon, in dessen eigenem Browser, und melden Sie sich dort erneut an.",
    sim_todo_mobile_data: "Nutzen Sie bei der Anmeldung mobile Daten statt WLAN.",
    sim_todo_other_way: "Oder wählen Sie eine andere Anmeldemöglichkeit, falls die Website eine anbietet.",

    account_title: "Websites, denen Sie zugestimmt haben",
    account_intro: "Diese Websites können Sie mit Ihrem Telefon anmelden, ohne noch einmal zu fragen. Wenn Sie eine Zustimmung widerrufen, fragt die Website beim nächsten Mal wieder.",
    account_empty: "Sie haben noch keiner Website erlaubt, Sie mit Ihrem Telefon anzumelden.",
    account_since: "Zugestimmt am {date}; die Website erhält:",
    account_revoke: "Widerrufen",
    account_revoke_label: "Zustimmung für {host} widerrufen",
    account_revoke_note: "Durch das Widerrufen werden Sie bei der Website selbst nicht abgemeldet; sie kann Sie nur nicht mehr ohne Nachfrage mit Ihrer SIM-Karte anmelden.",

    logout_title: "Abmelden",
    logout_heading: "Bei Ihrem Mobilfunkanbieter abmelden?",
    logout_text: "Eine Website möchte Sie abmelden. Danach müssen Websites bei der nächsten Anmeldung wieder Ihr Telefon fragen.",
    logout_button: "Abmelden",
    logout_stay: "Wenn Sie das nicht veranlasst haben, schließen Sie diese Seite: Sie bleiben angemeldet.",

    home_title: "Anmelden mit Ihrer SIM-Karte",
    home_text: "Dies ist der Anmeldedienst Ihres Mobilfunkanbieters. Websites, die „Mit Ihrem Mobilfunkanbieter anmelden“ anbieten, leiten Sie hierher, und die SIM-Karte in Ihrem Telefon bestätigt, wer Sie sind.",
    identifier_text: "Eine Kennung, vergeben vom Anmeldedienst Ihres Mobilfunkanbieters.",

    return_title: "Zurück zu {host}",
    return_text: "Ihre Anmeldung ist bereit. Tippen Sie auf die Schaltfläche, um zur Website zurückzukehren.",
    return_button: "Weiter zu {host}",

    item_identifier: "Eine Kennung für Sie, die nur diese Website erhält",
    item_phone: "Ihre Mobilfunknummer",
    item_offline_access: "Angemeldet bleiben, während Sie die Website nicht nutzen",
    item_nickname: "Ihren Spitznamen",
    item_email: "Ihre E-Mail-Adresse",
    item_fullname: "Ihren vollständigen Namen",
    item_dob: "Ihr Geburtsdatum",
    item_gender: "Ihr Geschlecht",
    item_postcode: "Ihre Postleitzahl",
    item_country: "Ihr Land",
    item_language: "Ihre bevorzugte Sprache",
    item_timezone: "Ihre Zeitzone",

    error_detail: "Einzelheiten für die Entwickler der Website",

    unknown_site_title: "Diese Website ist nicht bekannt",
    unknown_site_happened: "Die Website, von der Sie kommen, ist bei diesem Dienst nicht registriert. Es wurde nichts an sie gesendet.",
    unknown_site_to_do: "Kehren Sie zur Website zurück. Wenn das wiederholt passiert, informieren Sie die Website.",
    unregistered_return_title: "Diese Anmeldung kann nicht fortgesetzt werden",
    unregistered_return_happened: "Die Anfrage verlangt, dass die Antwort an eine Adresse geht, die die Website nicht registriert hat. Es wurde nichts gesendet.",
    unregistered_return_to_do: "Kehren Sie zur Website zurück und beginnen Sie erneut. Wenn das wiederholt passiert, informieren Sie die Website.",
    return_not_listed_title: "Diese Anmeldung kann nicht fortgesetzt werden",
    return_not_listed_happened: "Die Anfrage verlangt, dass Ihre Anmeldung an {url} geht, und {host} führt diese Adresse nicht als eigene Adresse. Es wurde nichts gesendet.",
    return_not_listed_to_do: "Kehren Sie zur Website zurück und beginnen Sie erneut. Wenn das wiederholt passiert, informieren Sie die Website.",
    site_unverifiable_title: "Diese Website kann nicht überprüft werden",
    site_unverifiable_happened: "{host} gibt nicht an, wohin ihre Anmeldungen gesendet werden dürfen, und dieser Dienst meldet Sie nur bei Websites an, die das tun. Es wurde nichts gesendet.",
    site_unverifiable_to_do: "Kehren Sie zur Website zurück; vielleicht bietet sie eine andere Anmeldemöglichkeit.",
    blocked_site_title: "Die Anmeldung bei dieser Website ist gesperrt",
    blocked_site_happened: "Ihr Mobilfunkanbieter erlaubt keine Anmeldung bei {host} mit Ihrer SIM-Karte. Es wurde nichts an die Website gesendet.",
    blocked_site_to_do: "Kehren Sie zur Website zurück und wählen Sie eine andere Anmeldemöglichkeit. Wenn Sie das für einen Fehler halten, wenden Sie sich an Ihren Mobilfunkanbieter.",
    expired_title: "Diese Antwort kann nicht verwendet werden",
    expired_happened: "Die Anmeldeanfrage, zu der sie gehört, ist abgelaufen, wurde schon beantwortet oder stammt aus einem anderen Fenster oder Browser. Es wurde nichts geändert.",
    expired_to_do: "Kehren Sie zur Website zurück und beginnen Sie die Anmeldung erneut.",
    session_ended_title: "Sie sind nicht angemeldet",
    session_ended_happened: "Die Anmeldung, zu der diese Antwort gehört, ist beendet. Es wurde nichts geändert.",
    session_ended_to_do: "Kehren Sie zur Website zurück und beginnen Sie die Anmeldung erneut.",
    bad_answer_title: "Diese Antwort kann nicht verwendet werden",
    bad_answer_happened: "Das Formular wurde weder mit „Zustimmen“ noch mit „Ablehnen“ beantwortet. Es wurde nichts geändert.",
    bad_answer_to_do: "Kehren Sie zur Website zurück und beginnen Sie die Anmeldung erneut.",
    bad_request_title: "Diese Anmeldeanfrage kann nicht verwendet werden",
    bad_request_happened: "Die Website hat eine Anmeldeanfrage geschickt, die dieser Dienst nicht annehmen kann. Es wurde nichts an sie gesendet.",
    bad_request_to_do: "Kehren Sie zur Website zurück und beginnen Sie die Anmeldung erneut. Wenn das wiederholt passiert, informieren Sie die Website.",
    bad_return_address_title: "Diese Anmeldung kann nicht fortgesetzt werden",
    bad_return_address_happened: "Die Rücksprungadresse der Website ist unbrauchbar. Es wurde nichts gesendet.",
    bad_return_address_to_do: "Kehren Sie zur Website zurück und beginnen Sie erneut. Wenn das wiederholt passiert, informieren Sie die Website.",
    no_such_identifier_title: "Diese Kennung gibt es nicht",
    no_such_identifier_happened: "Diese Adresse ist keine Kennung, die dieser Dienst vergeben hat.",
    no_such_identifier_to_do: "Überprüfen Sie die Adresse.",
    revoke_refused_title: "Diese Änderung ist nicht möglich",
    revoke_refused_happened: "Die Seite, von der sie kommt, ist veraltet oder gehört zu einer anderen Sitzung oder einem anderen Fenster. Es wurde nichts geändert.",
    revoke_refused_to_do: "Öffnen Sie die Liste der Websites, denen Sie zugestimmt haben, erneut und versuchen Sie es noch einmal.",
    logout_refused_title: "Diese Abmeldeanfrage kann nicht verwendet werden",
    logout_refused_happened: "Die Anfrage der Website, Sie abzumelden, konnte nicht überprüft werden; es wurde nichts geändert.",
    logout_refused_to_do: "Sie sind weiterhin angemeldet. Kehren Sie zur Website zurück und versuchen Sie es noch einmal.",
    signed_out_title: "Sie sind abgemeldet",
    signed_out_happened: "Ihr Mobilfunkanbieter hat Sie auf diesem Gerät abgemeldet.",
    signed_out_to_do: "Sie können diese Seite schließen.",
    unavailable_title: "Die Anmeldung ist nicht verfügbar",
    unavailable_happened: "Der Anmeldedienst Ihres Anbieters konnte Ihre SIM-Karte gerade nicht prüfen.",
    unavailable_to_do: "Versuchen Sie es in einer Minute noch einmal.",
    internal_title: "Etwas ist schiefgegangen",
    internal_happened: "Beim Anmeldedienst ist ein interner Fehler aufgetreten. Es wurde nichts an die Website gesendet.",
    internal_to_do: "Kehren Sie zur Website zurück und versuchen Sie es gleich noch einmal.",
};

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn placeholders(text: &str) -> Vec<&str> {
        let mut out: Vec<&str> = text
            .split('{')
            .skip(1)
            .filter_map(|rest| rest.split_once('}').map(|(name, _)| name))
            .collect();
        out.sort_unstable();
        out
    }

    #[test]
    fn every_language_defines_every_string_with_the_same_placeholders() {
        let english = EN.entries();
        for lang in Lang::ALL {
            let entries = lang.strings().entries();
            assert_eq!(entries.len(), english.len());
            for ((name, text), (en_name, en_text)) in entries.iter().zip(&english) {
                assert_eq!(name, en_name);
                assert!(!text.trim().is_empty(), "{lang:?}: {name} is empty");
                assert_eq!(
                    placeholders(text),
                    placeholders(en_text),
                    "{lang:?}: {name} has other placeholders than English"
                );
            }
        }
    }

    #[test]
    fn other_languages_are_translated_not_copied() {
        // A string left in English by mistake; the few that are the same in both
        // languages are names, not sentences.
        let same: Vec<&str> = EN
            .entries()
            .iter()
            .zip(DE.entries())
            .filter(|((_, en), (_, de))| en == de)
            .map(|((name, _), _)| *name)
            .collect();
        assert!(same.is_empty(), "not translated: {same:?}");
    }

    #[test]
    fn each_language_has_its_own_tag_and_a_valid_date_format() {
        for lang in Lang::ALL {
            assert_eq!(lang.tag(), lang.strings().lang);
            assert!(
                time::format_description::parse_borrowed::<2>(lang.strings().date_format).is_ok()
            );
        }
        assert_eq!(Lang::En.tag(), "en");
        assert_eq!(Lang::De.tag(), "de");
    }

    #[test]
    fn accept_language_is_negotiated() {
        let cases = [
            ("", Lang::En),
            ("de", Lang::De),
            ("DE", Lang::De),
            ("de-AT", Lang::De),
            ("de-CH-1996", Lang::De),
            ("fr;q=0.1, de;q=0.9", Lang::De),
            ("fr, de;q=0.5", Lang::De),
            ("fr", Lang::En),
            ("*", Lang::En),
            ("fr, *;q=0.5", Lang::En),
            ("de;q=0, *", Lang::En),
            ("en;q=0, *", Lang::De),
            ("en;q=0.5, de", Lang::De),
            ("en-US,en;q=0.9,de;q=0.8", Lang::En),
            ("de-DE,de;q=0.9,en-US;q=0.8,en;q=0.7", Lang::De),
            ("de, en", Lang::De),
            ("en, de", Lang::En),
            ("de;q=0.8, en;q=0.8", Lang::De),
            ("de-AT;q=0.9, de;q=0", Lang::En),
            ("de;q=1.5", Lang::En),
            ("de;q=abc", Lang::En),
            ("de;q=0.0001", Lang::En),
            ("d3", Lang::En),
            ("germanlanguage", Lang::En),
            (" de ; q=0.7 ", Lang::De),
            ("en;q=0", Lang::En),
        ];
        for (header, want) in cases {
            assert_eq!(Lang::negotiate(header), want, "{header:?}");
        }
    }

    #[test]
    fn qvalues_parse_as_rfc_9110_says() {
        assert_eq!(parse_qvalue("1"), Some(1000));
        assert_eq!(parse_qvalue("1.000"), Some(1000));
        assert_eq!(parse_qvalue("0.5"), Some(500));
        assert_eq!(parse_qvalue("0.123"), Some(123));
        assert_eq!(parse_qvalue("0"), Some(0));
        assert_eq!(parse_qvalue("1.001"), None);
        assert_eq!(parse_qvalue("0.1234"), None);
        assert_eq!(parse_qvalue("2"), None);
        assert_eq!(parse_qvalue("-1"), None);
    }

    #[test]
    fn several_header_lines_are_one_list() {
        let mut headers = HeaderMap::new();
        headers.append(header::ACCEPT_LANGUAGE, "fr;q=0.9".parse().unwrap());
        headers.append(header::ACCEPT_LANGUAGE, "de;q=0.5".parse().unwrap());
        assert_eq!(Lang::from_headers(&headers), Lang::De);
        assert_eq!(Lang::from_headers(&HeaderMap::new()), Lang::En);
    }

    #[test]
    fn fill_replaces_the_named_placeholder() {
        assert_eq!(
            EN.fill(EN.consent_title, "host", "rp.example"),
            "Sign in to rp.example?"
        );
        assert_eq!(
            DE.fill(DE.consent_title, "host", "rp.example"),
            "Bei rp.example anmelden?"
        );
    }
}
