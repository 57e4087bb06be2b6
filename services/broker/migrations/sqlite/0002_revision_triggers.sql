-- Every change to a dossier's circle, client system or contributions moves
-- its revision, by trigger so that no write path can forget it: the broker
-- reuses what it read of a dossier while the revision is unchanged, also when
-- another instance (or an operator) changed the database.
CREATE TRIGGER participants_insert_revision AFTER INSERT ON participants
BEGIN UPDATE dossiers SET revision = revision + 1 WHERE dossier_id = NEW.dossier_id; END;
CREATE TRIGGER participants_update_revision AFTER UPDATE ON participants
BEGIN UPDATE dossiers SET revision = revision + 1 WHERE dossier_id IN (OLD.dossier_id, NEW.dossier_id); END;
CREATE TRIGGER participants_delete_revision AFTER DELETE ON participants
BEGIN UPDATE dossiers SET revision = revision + 1 WHERE dossier_id = OLD.dossier_id; END;
CREATE TRIGGER persons_insert_revision AFTER INSERT ON persons
BEGIN UPDATE dossiers SET revision = revision + 1 WHERE dossier_id = NEW.dossier_id; END;
CREATE TRIGGER persons_update_revision AFTER UPDATE ON persons
BEGIN UPDATE dossiers SET revision = revision + 1 WHERE dossier_id IN (OLD.dossier_id, NEW.dossier_id); END;
CREATE TRIGGER persons_delete_revision AFTER DELETE ON persons
BEGIN UPDATE dossiers SET revision = revision + 1 WHERE dossier_id = OLD.dossier_id; END;
CREATE TRIGGER contributions_insert_revision AFTER INSERT ON contributions
BEGIN UPDATE dossiers SET revision = revision + 1 WHERE dossier_id = NEW.dossier_id; END;
CREATE TRIGGER contributions_update_revision AFTER UPDATE ON contributions
BEGIN UPDATE dossiers SET revision = revision + 1 WHERE dossier_id IN (OLD.dossier_id, NEW.dossier_id); END;
CREATE TRIGGER contributions_delete_revision AFTER DELETE ON contributions
BEGIN UPDATE dossiers SET revision = revision + 1 WHERE dossier_id = OLD.dossier_id; END;
