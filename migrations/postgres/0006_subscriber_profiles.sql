-- Profile fields an operator keeps for a subscriber (SReg 1.1 §4 names: nickname, email,
-- fullname, dob, gender, postcode, country, language, timezone), released to relying
-- parties only with the subscriber's consent. Removed with the subscriber.
CREATE TABLE subscriber_profiles (
    impi  TEXT COLLATE "C" NOT NULL REFERENCES subscribers (impi) ON DELETE CASCADE,
    field TEXT COLLATE "C" NOT NULL,
    value TEXT NOT NULL,
    PRIMARY KEY (impi, field)
);
