-- Deployment-wide values: the master-key check value, later the pseudonym secret.
CREATE TABLE meta (
    key   TEXT PRIMARY KEY,
    value BYTEA NOT NULL
);

-- HSS subscriber records. K and OPc are sealed (AES-256-GCM, associated data
-- "subscribers", column, IMPI). sqn is the last SQN used (SEQ << 5 | IND).
CREATE TABLE subscribers (
    impi       TEXT COLLATE "C" PRIMARY KEY,
    msisdn     TEXT UNIQUE,
    k_sealed   BYTEA NOT NULL,
    opc_sealed BYTEA NOT NULL,
    amf        BIGINT NOT NULL CHECK (amf BETWEEN 0 AND 65535),
    sqn        BIGINT NOT NULL CHECK (sqn BETWEEN 0 AND 281474976710655),
    created_at BIGINT NOT NULL
);
