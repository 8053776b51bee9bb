-- Login sessions of the OP (tower-sessions records as JSON), one row per browser session.
CREATE TABLE login_sessions (
    id         TEXT COLLATE "C" PRIMARY KEY,
    data       BYTEA NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX login_sessions_expires ON login_sessions (expires_at);

-- Ua Digest nonces (TS 24.109 §5): the highest nonce-count accepted so far, so that each
-- (nonce, nc) is accepted once by whichever process sees it.
CREATE TABLE ua_nonces (
    nonce      TEXT COLLATE "C" PRIMARY KEY,
    max_nc     BIGINT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX ua_nonces_expires ON ua_nonces (expires_at);

-- OpenID 2.0 associations (§8); private ones serve check_authentication only (§11.4.2).
-- The MAC key is sealed for ("openid2_associations", "secret", handle).
CREATE TABLE openid2_associations (
    handle        TEXT COLLATE "C" PRIMARY KEY,
    assoc_type    TEXT NOT NULL,
    secret_sealed BYTEA NOT NULL,
    private       BOOLEAN NOT NULL,
    expires_at    BIGINT NOT NULL
);
CREATE INDEX openid2_associations_expires ON openid2_associations (expires_at);

-- response_nonces already verified by check_authentication (§11.4.2.1: each once).
CREATE TABLE openid2_nonces (
    nonce      TEXT COLLATE "C" PRIMARY KEY,
    expires_at BIGINT NOT NULL
);
CREATE INDEX openid2_nonces_expires ON openid2_nonces (expires_at);

-- What a subscriber allowed a relying party ('openid2:<realm>' or 'oidc:<client_id>') to
-- receive: one record model for both protocols.
CREATE TABLE consents (
    impi          TEXT COLLATE "C" NOT NULL,
    relying_party TEXT COLLATE "C" NOT NULL,
    shared        TEXT NOT NULL,
    created_at    BIGINT NOT NULL,
    PRIMARY KEY (impi, relying_party)
);

-- The operator's policy per OpenID 2.0 realm: allow without prompt, prompt, or deny; and
-- whether the realm gets a stable identifier instead of a pairwise pseudonym.
CREATE TABLE realm_policies (
    realm             TEXT COLLATE "C" PRIMARY KEY,
    policy            TEXT NOT NULL CHECK (policy IN ('allow', 'prompt', 'deny')),
    stable_identifier BOOLEAN NOT NULL,
    created_at        BIGINT NOT NULL
);
