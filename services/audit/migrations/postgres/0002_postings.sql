-- Query index by segment (PostgreSQL).
--
-- The per-column b-tree indexes of 0001 put each new entry on a random page of
-- five indexes (organisation, subject, dossier and two persons), so every group
-- commit wrote several pages per entry. They are replaced by posting lists per
-- sealed segment of the log: when a segment of `audit.query_segment` entries is
-- complete, the writer stores, for each organisation, subject, dossier and
-- person in it, the sorted list of its entries. Postings are keyed by segment
-- first, so a seal appends at the end of the table; entries of the open
-- segment are found by scanning it (the `persons` column below).

-- The persons an entry names, as ' p1 p2 ' (ids are codes: no spaces), for
-- the scan of the open segment.
ALTER TABLE entries ADD COLUMN persons TEXT NOT NULL DEFAULT '';
UPDATE entries SET persons = COALESCE(
    (SELECT ' ' || string_agg(person_id, ' ' ORDER BY person_id) || ' ' FROM entry_persons WHERE entry_persons.idx = entries.idx),
    '');

DROP INDEX entries_by_actor_org;
DROP INDEX entries_by_target_org;
DROP INDEX entries_by_subject;
DROP INDEX entries_by_dossier;
DROP TABLE entry_persons;

-- kind: 'o' acting organisation, 't' target organisation, 'u' acting subject,
-- 'd' dossier, 'p' person. idxs: the entries' offsets in the segment, ascending,
-- as LEB128 varints of the differences.
CREATE TABLE postings (
    segment BIGINT NOT NULL,
    kind    TEXT   NOT NULL,
    key     TEXT   NOT NULL,
    idxs    BYTEA  NOT NULL,
    PRIMARY KEY (segment, kind, key)
);

-- Segments whose postings are stored (the writer seals them in order).
CREATE TABLE sealed_segments (
    segment       BIGINT PRIMARY KEY,
    segment_size  BIGINT NOT NULL
);
