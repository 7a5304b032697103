-- Rooms: one row per room, the summary the service keeps up to date with each append.
-- Rowid tables throughout: rows are larger than WITHOUT ROWID tables handle well, and the events
-- table then grows at its end whatever room an event belongs to.
CREATE TABLE rooms (
    room          BLOB NOT NULL UNIQUE,      -- 16 bytes, big-endian UUID
    tenant        TEXT NOT NULL,
    agent         TEXT NOT NULL,
    status        TEXT NOT NULL,
    seq           INTEGER NOT NULL,
    created_at    INTEGER NOT NULL,          -- Unix milliseconds
    last_activity INTEGER NOT NULL,
    first_lc      TEXT,                      -- customer names, lower-cased, for prefix search
    last_lc       TEXT,
    full_lc       TEXT,
    phone         TEXT,
    email         TEXT,
    summary       TEXT NOT NULL              -- the RoomSummary as JSON
);

CREATE INDEX rooms_by_tenant ON rooms (tenant, created_at DESC, room DESC);
CREATE INDEX rooms_by_agent ON rooms (tenant, agent, created_at DESC, room DESC);
CREATE INDEX rooms_by_first_name ON rooms (tenant, first_lc);
CREATE INDEX rooms_by_last_name ON rooms (tenant, last_lc);
CREATE INDEX rooms_by_full_name ON rooms (tenant, full_lc);
CREATE INDEX rooms_by_phone ON rooms (tenant, phone);
CREATE INDEX rooms_by_email ON rooms (tenant, email);
CREATE INDEX rooms_by_activity ON rooms (status, last_activity, room);

-- The event log: per room, contiguous sequence numbers.
CREATE TABLE events (
    room BLOB NOT NULL,
    seq  INTEGER NOT NULL,
    data TEXT NOT NULL,                      -- the Event as JSON
    UNIQUE (room, seq)
);

-- Token hashes (never the tokens) and what they grant.
CREATE TABLE credentials (
    hash  BLOB PRIMARY KEY,                  -- SHA-256 of the token
    room  BLOB NOT NULL,
    grant_kind TEXT NOT NULL,                -- 'invite' or 'session'
    grant_id   BLOB NOT NULL
) WITHOUT ROWID;

-- Deliveries waiting to be sent, written with the events that asked for them.
CREATE TABLE outbox (
    id           BLOB NOT NULL UNIQUE,
    room         BLOB NOT NULL,
    invite       BLOB NOT NULL,
    channel      TEXT NOT NULL,
    payload      TEXT NOT NULL,
    not_before   INTEGER NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    leased_until INTEGER
);

CREATE INDEX outbox_due ON outbox (not_before, id);
