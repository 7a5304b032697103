-- Every append rewrites its room's last_activity, which rooms_by_activity indexed: no room
-- update could be HOT, and each one added entries to all eight indexes of the table. The idle
-- index now keys on the minute of the last activity instead, which changes at most once a
-- minute per room, and pages keep room for the new versions, so that most room updates are HOT
-- (no index touched). Adding the column rewrites the table once.
ALTER TABLE rooms SET (fillfactor = 50);
ALTER TABLE rooms ADD COLUMN activity_minute bigint GENERATED ALWAYS AS (last_activity / 60000) STORED;
DROP INDEX rooms_by_activity;
CREATE INDEX rooms_by_activity_minute ON rooms (activity_minute) WHERE status = 'active';
