-- Deployment-wide values: the master-key check value, later the pseudonym secret.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY NOT NULL,
    value BLOB NOT NULL
) WITHOUT ROWID;

-- HSS subscriber records. K and OPc are sealed (AES-256-GCM, associated data
-- "subscribers", column, IMPI). sqn is the last SQN used (SEQ << 5 | IND).
CREATE TABLE subscribers (
    impi       TEXT PRIMARY KEY NOT NULL,
    msisdn     TEXT UNIQUE,
    k_sealed   BLOB NOT NULL,
    opc_sealed BLOB NOT NULL,
    amf        INTEGER NOT NULL CHECK (amf BETWEEN 0 AND 65535),
    sqn        INTEGER NOT NULL CHECK (sqn BETWEEN 0 AND 281474976710655),
    created_at INTEGER NOT NULL
) WITHOUT ROWID;
