-- OpenID Connect clients (DESIGN.md §2.7, §4), registered with `akaid client add`.
-- client_id: 128 random bits, base64url. secret_hash: SHA-256 of the 256-bit client secret
-- (NULL for a public client, which uses PKCE). redirect_uris and post_logout_redirect_uris:
-- JSON arrays of the exact strings, compared exactly (at least one redirect URI).
-- sector_host: the host a pairwise client's sub is computed for (NULL for subject_type
-- 'public'). Timestamps are unix seconds.
CREATE TABLE oidc_clients (
    client_id                    TEXT PRIMARY KEY NOT NULL,
    name                         TEXT NOT NULL,
    secret_hash                  BLOB CHECK (secret_hash IS NULL OR length(secret_hash) = 32),
    redirect_uris                TEXT NOT NULL CHECK (redirect_uris <> '[]'),
    post_logout_redirect_uris    TEXT NOT NULL DEFAULT '[]',
    id_token_signed_response_alg TEXT NOT NULL DEFAULT 'RS256'
        CHECK (id_token_signed_response_alg IN ('RS256', 'ES256', 'EdDSA')),
    subject_type                 TEXT NOT NULL DEFAULT 'pairwise'
        CHECK (subject_type IN ('pairwise', 'public')),
    sector_host                  TEXT,
    created_at                   INTEGER NOT NULL,
    CHECK ((subject_type = 'pairwise') = (sector_host IS NOT NULL))
) WITHOUT ROWID;

-- Removing a client removes the consents given to it ('oidc:<client_id>').
CREATE INDEX consents_relying_party ON consents (relying_party);
