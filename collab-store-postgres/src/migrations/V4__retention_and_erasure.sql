-- When a room timed out, closed or was erased: what retention counts from.
ALTER TABLE rooms ADD COLUMN ended_at bigint;              -- Unix milliseconds
-- Rooms that ended before the column existed: their last activity is the best date there is.
UPDATE rooms
SET ended_at = last_activity,
    summary = jsonb_set(summary::jsonb, '{ended_at}', to_jsonb(last_activity))::text
WHERE status IN ('timed_out', 'closed');
CREATE INDEX rooms_by_end ON rooms (ended_at, room) WHERE ended_at IS NOT NULL;

-- Erasure and retention delete a room's credentials (outbox rows are few: a scan is fine).
CREATE INDEX credentials_by_room ON credentials (room);
