-- A new bootstrapping session supersedes the IMPI's earlier ones (TS 33.220 §4.5.2), done
-- by the database in the INSERT's own statement: atomic, and one round trip.
CREATE FUNCTION bootstrap_sessions_supersede() RETURNS trigger AS $$
BEGIN
    DELETE FROM bootstrap_sessions WHERE impi = NEW.impi AND btid <> NEW.btid;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER bootstrap_sessions_supersede
AFTER INSERT ON bootstrap_sessions
FOR EACH ROW EXECUTE FUNCTION bootstrap_sessions_supersede();
