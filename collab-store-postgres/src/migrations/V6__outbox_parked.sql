-- Only the first row of a room and subject can be claimed (V5); the rows queued behind it are
-- parked, so that a claim reads only rows that could go. Before this, every claim walked the
-- backlog of waiting rows (BENCHMARKS.md, "Webhooks"). Writes keep the flag under the room's row
-- lock: a row is parked when queued behind another, and unparked when the row before it is
-- deleted.
ALTER TABLE outbox ADD COLUMN parked boolean NOT NULL DEFAULT false;
UPDATE outbox SET parked = true
    WHERE EXISTS (SELECT 1 FROM outbox AS earlier
                  WHERE earlier.room = outbox.room AND earlier.invite = outbox.invite
                    AND earlier.queued < outbox.queued);
-- What a claim walks; it replaces outbox_due, which indexed the parked rows too.
CREATE INDEX outbox_ready ON outbox (not_before, id) WHERE NOT parked;
DROP INDEX IF EXISTS outbox_due;
