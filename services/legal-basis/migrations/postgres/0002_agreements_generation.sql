-- A counter that every change to agreements or their versions increments (by
-- trigger, so that no write path can forget it). CheckBasis reads this one row
-- and reuses its decoded agreements while it is unchanged.
CREATE TABLE agreements_generation (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    generation BIGINT NOT NULL
);
INSERT INTO agreements_generation (id, generation) VALUES (1, 0);

CREATE FUNCTION bump_agreements_generation() RETURNS trigger AS $$
BEGIN
    UPDATE agreements_generation SET generation = generation + 1;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER agreements_generation AFTER INSERT OR UPDATE OR DELETE ON agreements
FOR EACH STATEMENT EXECUTE FUNCTION bump_agreements_generation();
CREATE TRIGGER versions_generation AFTER INSERT OR UPDATE OR DELETE ON agreement_versions
FOR EACH STATEMENT EXECUTE FUNCTION bump_agreements_generation();
