-- Four-eyes on agreement approval (issue 14): who last wrote a version's
-- terms (its creator, or whoever last updated the draft). NULL for versions
-- written before this column: their creator wrote them.
ALTER TABLE agreement_versions ADD COLUMN edited_by TEXT;
