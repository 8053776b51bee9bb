-- Login sessions of the OP (tower-sessions records as JSON), one row per browser session.
CREATE TABLE login_sessions (
    id         TEXT PRIMARY KEY,
    data       BLOB NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX login_sessions_expires ON login_sessions (expires_at);

-- Ua Digest nonces (TS 24.109 §5): the highest nonce-count accepted so far, so that each
-- (nonce, nc) is accepted once by whichever process sees it.
CREATE TABLE ua_nonces (
    nonce      TEXT PRIMARY KEY,
    max_nc     INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
);
CREATE INDEX ua_nonces_expires ON ua_nonces (expires_at);

-- OpenID 2.0 associations (§8); private ones serve check_authentication only (§11.4.2).
-- The MAC key is sealed for ("openid2_associations", "secret", handle).
CREATE TABLE openid2_associations (
    handle        TEXT PRIMARY KEY,
    assoc_type    TEXT NOT NULL,
    secret_sealed BLOB NOT NULL,
    private       INTEGER NOT NULL,
    expires_at    INTEGER NOT NULL
);
CREATE INDEX openid2_associations_expires ON openid2_associations (expires_at);

-- response_nonces already verified by check_authentication (§11.4.2.1: each once).
CREATE TABLE openid2_nonces (
    nonce      TEXT PRIMARY KEY,
    expires_at INTEGER NOT NULL
);
CREATE INDEX openid2_nonces_expires ON openid2_nonces (expires_at);

-- What a subscriber allowed a relying party ('openid2:<realm>' or 'oidc:<client_id>') to
-- receive: one record model for both protocols.
CREATE TABLE consents (
    impi          TEXT NOT NULL,
    relying_party TEXT NOT NULL,
    shared        TEXT NOT NULL,
    created_at    INTEGER NOT NULL,
    PRIMARY KEY (impi, relying_party)
);

-- The operator's policy per OpenID 2.0 realm: allow without prompt, prompt, or deny; and
-- whether the realm gets a stable identifier instead of a pairwise pseudonym.
CREATE TABLE realm_policies (
    realm             TEXT PRIMARY KEY,
    policy            TEXT NOT NULL CHECK (policy IN ('allow', 'prompt', 'deny')),
    stable_identifier INTEGER NOT NULL,
    created_at        INTEGER NOT NULL
);
