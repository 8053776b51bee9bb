-- Outstanding Ub challenges (TS 24.109 §4.4): single use, expiring. secrets_sealed holds
-- XRES ‖ CK ‖ IK sealed for ("ub_challenges", "secrets", nonce); NULL for the decoy challenge
-- an unknown IMPI gets.
CREATE TABLE ub_challenges (
    nonce          TEXT PRIMARY KEY NOT NULL,
    impi           TEXT NOT NULL,
    opaque         TEXT NOT NULL,
    secrets_sealed BLOB,
    expires_at     INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX ub_challenges_expires ON ub_challenges (expires_at);

-- Bootstrapping sessions (TS 33.220 §4.5.2): Ks sealed for ("bootstrap_sessions", "ks", btid).
CREATE TABLE bootstrap_sessions (
    btid       TEXT PRIMARY KEY NOT NULL,
    impi       TEXT NOT NULL,
    rand       BLOB NOT NULL,
    ks_sealed  BLOB NOT NULL,
    created_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX bootstrap_sessions_impi ON bootstrap_sessions (impi);
CREATE INDEX bootstrap_sessions_expires ON bootstrap_sessions (expires_at);

-- NAFs allowed on Zn, each with the SHA-256 of its bearer secret.
CREATE TABLE nafs (
    fqdn        TEXT PRIMARY KEY NOT NULL,
    secret_hash BLOB NOT NULL UNIQUE,
    created_at  INTEGER NOT NULL
) WITHOUT ROWID;

-- Fixed-window abuse counters shared by all processes (per IMPI on Ub).
CREATE TABLE rate_counters (
    key          TEXT PRIMARY KEY NOT NULL,
    window_start INTEGER NOT NULL,
    count        INTEGER NOT NULL
) WITHOUT ROWID;
