-- A room's outbox rows for one subject (an invite, a webhook endpoint) are claimed in the order
-- they were queued: `queued` numbers them as they are inserted (appends to one room are
-- serialised by its row lock, so the numbers follow the room's order), and the index finds an
-- earlier row of the same room and subject without a scan.
ALTER TABLE outbox ADD COLUMN queued bigserial;
CREATE INDEX outbox_by_subject ON outbox (room, invite, queued);
