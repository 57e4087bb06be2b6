-- Every change to a dossier's circle, client system or contributions moves
-- its revision, by trigger so that no write path can forget it: the broker
-- reuses what it read of a dossier while the revision is unchanged, also when
-- another instance (or an operator) changed the database.
CREATE FUNCTION bump_dossier_revision() RETURNS trigger AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        UPDATE dossiers SET revision = revision + 1 WHERE dossier_id = OLD.dossier_id;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        UPDATE dossiers SET revision = revision + 1 WHERE dossier_id = NEW.dossier_id;
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER participants_revision AFTER INSERT OR UPDATE OR DELETE ON participants
FOR EACH ROW EXECUTE FUNCTION bump_dossier_revision();
CREATE TRIGGER persons_revision AFTER INSERT OR UPDATE OR DELETE ON persons
FOR EACH ROW EXECUTE FUNCTION bump_dossier_revision();
CREATE TRIGGER contributions_revision AFTER INSERT OR UPDATE OR DELETE ON contributions
FOR EACH ROW EXECUTE FUNCTION bump_dossier_revision();
