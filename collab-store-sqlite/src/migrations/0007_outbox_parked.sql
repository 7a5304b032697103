-- Only the first row of a room and subject can be claimed (0006); the rows queued behind it are
-- parked, so that a claim reads only rows that could go. Before this, every claim walked the
-- backlog of waiting rows (BENCHMARKS.md, "Webhooks"). The writer keeps the flag: a row is
-- parked when queued behind another, and unparked when the row before it is deleted.
ALTER TABLE outbox ADD COLUMN parked INTEGER NOT NULL DEFAULT 0;
UPDATE outbox SET parked = 1
    WHERE EXISTS (SELECT 1 FROM outbox AS earlier
                  WHERE earlier.room = outbox.room AND earlier.invite = outbox.invite
                    AND earlier.rowid < outbox.rowid);
-- What a claim walks; it replaces outbox_due, which indexed the parked rows too.
CREATE INDEX outbox_ready ON outbox (not_before, id) WHERE parked = 0;
DROP INDEX IF EXISTS outbox_due;
-- The statistics (0004) read the table instead: a scan every stats interval costs less than
-- keeping this index on every row queued, claimed and put back (webhook_append, BENCHMARKS.md).
DROP INDEX IF EXISTS outbox_by_channel;
