-- OpenID Connect grants, codes and refresh tokens (DESIGN.md §2.7, §3; issue 5).
--
-- A grant is one authorization a subscriber gave a client at /authorize. Every code, access
-- token and refresh token is issued from a grant and dies with it: a code used twice
-- (RFC 6749 §4.1.2, §10.5) or a rotated refresh token presented again after the grace window
-- (RFC 9700 §4.14.2) sets revoked_at, and nothing more is issued from it; /userinfo checks it
-- for the access tokens already out. expires_at is how long the grant is kept when no refresh
-- token of it lives longer (at least its code's expiry plus the access-token lifetime), so
-- reuse of a used code is still recognised while what it issued may be in use.
-- Codes and tokens are stored as SHA-256 of the value (32 bytes), never the value itself.
CREATE TABLE oidc_grants (
    id         TEXT COLLATE "C" PRIMARY KEY,
    client_id  TEXT COLLATE "C" NOT NULL,
    impi       TEXT COLLATE "C" NOT NULL REFERENCES subscribers (impi) ON DELETE CASCADE,
    scope      TEXT NOT NULL,
    shared     TEXT NOT NULL,
    auth_time  BIGINT NOT NULL,
    acr        TEXT,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX oidc_grants_subscriber ON oidc_grants (impi, client_id);
CREATE INDEX oidc_grants_expires ON oidc_grants (expires_at);

-- Authorization codes, single use: used_at is set by the one request that redeems it. The
-- grant's fields (client_id … acr) are copied here when both are written, so redeeming a
-- code is one UPDATE … RETURNING. code_challenge is the PKCE S256 challenge (RFC 7636 §4.2;
-- plain is never accepted, so the method is not stored).
CREATE TABLE oidc_codes (
    code_hash      BYTEA PRIMARY KEY CHECK (length(code_hash) = 32),
    grant_id       TEXT COLLATE "C" NOT NULL REFERENCES oidc_grants (id) ON DELETE CASCADE,
    client_id      TEXT COLLATE "C" NOT NULL,
    impi           TEXT COLLATE "C" NOT NULL,
    redirect_uri   TEXT NOT NULL,
    scope          TEXT NOT NULL,
    shared         TEXT NOT NULL,
    nonce          TEXT,
    code_challenge TEXT CHECK (length(code_challenge) = 43),
    auth_time      BIGINT NOT NULL,
    acr            TEXT,
    expires_at     BIGINT NOT NULL,
    used_at        BIGINT
);
CREATE INDEX oidc_codes_grant ON oidc_codes (grant_id);

-- Refresh tokens, rotated at each use (RFC 9700 §4.14.2): rotated_at and replaced_by are set
-- when the token is exchanged for its successor (whose parent_hash names it). Rotated rows
-- stay until they expire, so presenting one again is recognised as reuse.
CREATE TABLE oidc_refresh_tokens (
    token_hash  BYTEA PRIMARY KEY CHECK (length(token_hash) = 32),
    grant_id    TEXT COLLATE "C" NOT NULL REFERENCES oidc_grants (id) ON DELETE CASCADE,
    parent_hash BYTEA,
    issued_at   BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL,
    rotated_at  BIGINT,
    replaced_by BYTEA
);
CREATE INDEX oidc_refresh_tokens_grant ON oidc_refresh_tokens (grant_id);
CREATE INDEX oidc_refresh_tokens_expires ON oidc_refresh_tokens (expires_at);
