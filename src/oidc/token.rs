//! The claims of the tokens `/token` signs, pure: ID tokens (OpenID Connect Core §2,
//! §3.1.3.6, §12.2) and JWT access tokens (RFC 9068 §2). Times are arguments; signing is
//! [`crate::oidc::jose::sign_jwt`] with [`ID_TOKEN_TYP`] or [`ACCESS_TOKEN_TYP`].
//!
//! Both carry `amr: ["hwk", "sc"]` (RFC 8176 §2): the subscriber proved possession of a key
//! held in hardware (`hwk`) that is a smart card (`sc`), the USIM, through GBA/AKA.
//!
//! An access token also carries the private claim `grant_id`: `/userinfo` looks the grant up
//! so a revoked grant (a code used twice, a rotated refresh token replayed) ends its access
//! tokens before they expire (RFC 6749 §4.1.2, §10.4).

use serde_json::{Map, Value};
use time::OffsetDateTime;

use crate::oidc::grant::{GrantId, JwtId, Scopes};
use crate::oidc::jose::{SigningAlg, token_hash};

/// RFC 8176 values for a GBA/AKA login: hardware-secured key, smart card.
pub const AMR: [&str; 2] = ["hwk", "sc"];

/// The JWS `typ` of ID tokens (RFC 7519 §5.1).
pub const ID_TOKEN_TYP: &str = "JWT";

/// The JWS `typ` of access tokens (RFC 9068 §2.1), so one cannot pass for an ID token.
pub const ACCESS_TOKEN_TYP: &str = "at+jwt";

/// The name of the private claim that ties an access token to its grant.
pub const GRANT_ID_CLAIM: &str = "grant_id";

fn amr() -> Value {
    Value::Array(AMR.iter().map(|v| Value::from(*v)).collect())
}

/// An ID token's contents (Core §2). Extra claims (`phone_number`, `openid2_id`) go into the
/// map [`IdToken::claims`] returns.
#[derive(Debug, Clone)]
pub struct IdToken<'a> {
    /// The issuer: `public_url` without its trailing slash (DESIGN.md §2.7).
    pub issuer: &'a str,
    /// `sub`: pairwise per sector or public, as the client registered.
    pub subject: &'a str,
    /// `aud`: the client's id (Core §2; one audience, so no `azp`).
    pub client_id: &'a str,
    pub issued_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    /// When the subscriber logged in (Core §2, and the same value on refresh, §12.2).
    pub auth_time: OffsetDateTime,
    /// The authorization request's `nonce`, unchanged (Core §3.1.2.1); on refresh the
    /// original one or none (§12.2).
    pub nonce: Option<&'a str>,
    pub acr: Option<&'a str>,
    /// The access token issued with it, for `at_hash` (Core §3.1.3.6).
    pub access_token: Option<&'a str>,
    /// The alg of the key that signs the ID token: `at_hash` uses its hash.
    pub alg: SigningAlg,
}

impl IdToken<'_> {
    pub fn claims(&self) -> Map<String, Value> {
        let mut c = Map::new();
        c.insert("iss".into(), self.issuer.into());
        c.insert("sub".into(), self.subject.into());
        c.insert("aud".into(), self.client_id.into());
        c.insert("exp".into(), self.expires_at.unix_timestamp().into());
        c.insert("iat".into(), self.issued_at.unix_timestamp().into());
        c.insert("auth_time".into(), self.auth_time.unix_timestamp().into());
        if let Some(nonce) = self.nonce {
            c.insert("nonce".into(), nonce.into());
        }
        if let Some(acr) = self.acr {
            c.insert("acr".into(), acr.into());
        }
        c.insert("amr".into(), amr());
        if let Some(access_token) = self.access_token {
            c.insert("at_hash".into(), token_hash(self.alg, access_token).into());
        }
        c
    }
}

/// A JWT access token's contents (RFC 9068 §2.2).
#[derive(Debug, Clone)]
pub struct AccessToken<'a> {
    pub issuer: &'a str,
    /// The same `sub` as the ID token's (RFC 9068 §2.2, §5: the client may compare them).
    pub subject: &'a str,
    /// `aud`: the resource the token is for; here the provider's own `/userinfo`, named by
    /// the issuer.
    pub audience: &'a str,
    pub client_id: &'a str,
    pub issued_at: OffsetDateTime,
    pub expires_at: OffsetDateTime,
    pub jti: &'a JwtId,
    pub scope: Scopes,
    pub auth_time: OffsetDateTime,
    pub acr: Option<&'a str>,
    pub grant_id: &'a GrantId,
}

impl AccessToken<'_> {
    pub fn claims(&self) -> Map<String, Value> {
        let mut c = Map::new();
        c.insert("iss".into(), self.issuer.into());
        c.insert("sub".into(), self.subject.into());
        c.insert("aud".into(), self.audience.into());
        c.insert("exp".into(), self.expires_at.unix_timestamp().into());
        c.insert("iat".into(), self.issued_at.unix_timestamp().into());
        c.insert("jti".into(), self.jti.as_str().into());
        c.insert("client_id".into(), self.client_id.into());
        c.insert("scope".into(), self.scope.to_string().into());
        c.insert("auth_time".into(), self.auth_time.unix_timestamp().into());
        if let Some(acr) = self.acr {
            c.insert("acr".into(), acr.into());
        }
        c.insert("amr".into(), amr());
        c.insert(GRANT_ID_CLAIM.into(), self.grant_id.as_str().into());
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oidc::grant::tests::Counting;
    use crate::oidc::jose::{Jwks, SigningKey, sign_jwt, verify_jwt};
    use serde_json::json;

    fn at(secs: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(1_800_000_000 + secs).unwrap()
    }

    fn id_token<'a>(access_token: Option<&'a str>, alg: SigningAlg) -> IdToken<'a> {
        IdToken {
            issuer: "https://op.example.net",
            subject: "pairwise-sub",
            client_id: "client-1",
            issued_at: at(100),
            expires_at: at(400),
            auth_time: at(40),
            nonce: Some("n-0S6_WzA2Mj"),
            acr: Some("urn:akaid:gba"),
            access_token,
            alg,
        }
    }

    #[test]
    fn id_token_claims() {
        let claims = Value::Object(id_token(None, SigningAlg::RS256).claims());
        assert_eq!(
            claims,
            json!({
                "iss": "https://op.example.net",
                "sub": "pairwise-sub",
                "aud": "client-1",
                "exp": 1_800_000_400,
                "iat": 1_800_000_100,
                "auth_time": 1_800_000_040,
                "nonce": "n-0S6_WzA2Mj",
                "acr": "urn:akaid:gba",
                "amr": ["hwk", "sc"],
            })
        );
    }

    #[test]
    fn id_token_without_nonce_or_acr_leaves_them_out() {
        let mut token = id_token(None, SigningAlg::ES256);
        token.nonce = None;
        token.acr = None;
        let claims = token.claims();
        assert!(!claims.contains_key("nonce"));
        assert!(!claims.contains_key("acr"));
        assert!(!claims.contains_key("at_hash"));
        assert_eq!(claims["amr"], json!(["hwk", "sc"]));
    }

    #[test]
    fn at_hash_follows_the_signing_alg() {
        // Core §3.1.3.6 and the example of Core Appendix A.3: left half of SHA-256,
        // base64url; SHA-512 for Ed25519.
        let token = "jHkWEdUXMU1BwAsC4vtUsZwnNvTIxEl0z9K3vx5KF0Y";
        let rs = id_token(Some(token), SigningAlg::RS256).claims();
        assert_eq!(rs["at_hash"], json!("77QmUPtjPfzWtF2AnpK9RQ"));
        let es = id_token(Some(token), SigningAlg::ES256).claims();
        assert_eq!(es["at_hash"], rs["at_hash"]);
        let ed = id_token(Some(token), SigningAlg::EdDSA).claims();
        assert_eq!(ed["at_hash"], json!(token_hash(SigningAlg::EdDSA, token)));
        assert_ne!(ed["at_hash"], rs["at_hash"]);
    }

    #[test]
    fn access_token_claims_per_rfc9068() {
        let mut rng = Counting(0);
        let jti = JwtId::generate(&mut rng);
        let grant = GrantId::generate(&mut rng, at(0));
        let scope = Scopes::from_request("openid phone").unwrap();
        let token = AccessToken {
            issuer: "https://op.example.net",
            subject: "pairwise-sub",
            audience: "https://op.example.net",
            client_id: "client-1",
            issued_at: at(100),
            expires_at: at(700),
            jti: &jti,
            scope,
            auth_time: at(40),
            acr: None,
            grant_id: &grant,
        };
        assert_eq!(
            Value::Object(token.claims()),
            json!({
                "iss": "https://op.example.net",
                "sub": "pairwise-sub",
                "aud": "https://op.example.net",
                "exp": 1_800_000_700,
                "iat": 1_800_000_100,
                "jti": "AAECAwQFBgcICQoLDA0ODw",
                "client_id": "client-1",
                "scope": "openid phone",
                "auth_time": 1_800_000_040,
                "amr": ["hwk", "sc"],
                "grant_id": "-PBNM4--FGHIJKLMNOPQRS",
            })
        );
    }

    #[test]
    fn access_tokens_are_typed_at_jwt_and_do_not_pass_for_id_tokens() {
        let key = SigningKey::generate(SigningAlg::ES256, at(0)).unwrap();
        let jwks = Jwks::from_keys([&key]);
        let mut rng = Counting(0);
        let (jti, grant) = (
            JwtId::generate(&mut rng),
            GrantId::generate(&mut rng, at(0)),
        );
        let claims = AccessToken {
            issuer: "https://op.example.net",
            subject: "s",
            audience: "https://op.example.net",
            client_id: "c",
            issued_at: at(0),
            expires_at: at(60),
            jti: &jti,
            scope: Scopes::from_request("openid").unwrap(),
            auth_time: at(0),
            acr: None,
            grant_id: &grant,
        }
        .claims();
        let jwt = sign_jwt(&key, Some(ACCESS_TOKEN_TYP), &Value::Object(claims.clone())).unwrap();
        assert_eq!(
            verify_jwt(&jwks, &jwt, Some(ACCESS_TOKEN_TYP)).unwrap(),
            Value::Object(claims)
        );
        assert!(verify_jwt(&jwks, &jwt, Some(ID_TOKEN_TYP)).is_err());
    }
}
