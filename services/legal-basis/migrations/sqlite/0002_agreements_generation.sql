-- A counter that every change to agreements or their versions increments (by
-- trigger, so that no write path can forget it). CheckBasis reads this one row
-- and reuses its decoded agreements while it is unchanged.
CREATE TABLE agreements_generation (
    id         INTEGER PRIMARY KEY CHECK (id = 1),
    generation BIGINT NOT NULL
);
INSERT INTO agreements_generation (id, generation) VALUES (1, 0);

CREATE TRIGGER agreements_insert_generation AFTER INSERT ON agreements
BEGIN UPDATE agreements_generation SET generation = generation + 1; END;
CREATE TRIGGER agreements_update_generation AFTER UPDATE ON agreements
BEGIN UPDATE agreements_generation SET generation = generation + 1; END;
CREATE TRIGGER agreements_delete_generation AFTER DELETE ON agreements
BEGIN UPDATE agreements_generation SET generation = generation + 1; END;
CREATE TRIGGER versions_insert_generation AFTER INSERT ON agreement_versions
BEGIN UPDATE agreements_generation SET generation = generation + 1; END;
CREATE TRIGGER versions_update_generation AFTER UPDATE ON agreement_versions
BEGIN UPDATE agreements_generation SET generation = generation + 1; END;
CREATE TRIGGER versions_delete_generation AFTER DELETE ON agreement_versions
BEGIN UPDATE agreements_generation SET generation = generation + 1; END;
