-- The OpenID Connect provider's signing keys (DESIGN.md §2.7, §3). kid is the key's JWK
-- thumbprint (RFC 7638); the PKCS#8 private key is sealed for ("signing_keys", "private_key",
-- kid). retired_at is when the key stopped signing (NULL: the active key of its alg); its
-- public half stays in the JWKS for the longest token lifetime after that, then it is deleted.
CREATE TABLE signing_keys (
    kid                TEXT PRIMARY KEY NOT NULL,
    alg                TEXT NOT NULL CHECK (alg IN ('RS256', 'ES256', 'EdDSA')),
    private_key_sealed BLOB NOT NULL,
    created_at         INTEGER NOT NULL,
    retired_at         INTEGER
) WITHOUT ROWID;

-- At most one active key per alg: processes racing to create the first key, or two
-- rotations at once, cannot both win.
CREATE UNIQUE INDEX signing_keys_one_active ON signing_keys (alg) WHERE retired_at IS NULL;
CREATE INDEX signing_keys_retired ON signing_keys (retired_at);
