-- The outbox's figures per channel (RoomStore::outbox_stats, the collab_outbox_* gauges) in
-- one walk of this index: grouped by channel without a sort, and without reading the rows'
-- payloads. IF NOT EXISTS: tests rewind user_version to replay older migrations.
CREATE INDEX IF NOT EXISTS outbox_by_channel ON outbox (channel, not_before, leased_until);
