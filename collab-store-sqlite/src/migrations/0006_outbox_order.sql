-- A room's outbox rows for one subject (an invite, a webhook endpoint) are claimed in the order
-- they were queued (rowid order): this index finds an earlier row of the same room and subject
-- without a scan. IF NOT EXISTS: tests rewind user_version to replay older migrations.
CREATE INDEX IF NOT EXISTS outbox_by_subject ON outbox (room, invite);
