-- Rooms: one row per room, the summary the service keeps up to date with each append.
-- Customer names are lower-cased by the store and compared in byte order (COLLATE "C"), so that
-- a name prefix is an index range whatever the database's collation.
CREATE TABLE rooms (
    room          uuid PRIMARY KEY,
    tenant        text NOT NULL,
    agent         text NOT NULL,
    status        text NOT NULL,
    seq           bigint NOT NULL,
    created_at    bigint NOT NULL,           -- Unix milliseconds
    last_activity bigint NOT NULL,
    first_lc      text COLLATE "C",
    last_lc       text COLLATE "C",
    full_lc       text COLLATE "C",
    phone         text,
    email         text,
    summary       text NOT NULL              -- the RoomSummary as JSON
);

CREATE INDEX rooms_by_tenant ON rooms (tenant, created_at DESC, room DESC);
CREATE INDEX rooms_by_agent ON rooms (tenant, agent, created_at DESC, room DESC);
CREATE INDEX rooms_by_first_name ON rooms (tenant, first_lc);
CREATE INDEX rooms_by_last_name ON rooms (tenant, last_lc);
CREATE INDEX rooms_by_full_name ON rooms (tenant, full_lc);
CREATE INDEX rooms_by_phone ON rooms (tenant, phone);
CREATE INDEX rooms_by_email ON rooms (tenant, email);
CREATE INDEX rooms_by_activity ON rooms (last_activity, room) WHERE status = 'active';

-- The event log. The primary key makes a room's seq unique across every server writing to it.
CREATE TABLE events (
    room uuid NOT NULL,
    seq  bigint NOT NULL,
    data text NOT NULL,                      -- the Event as JSON
    PRIMARY KEY (room, seq)
);

-- Token hashes (never the tokens) and what they grant.
CREATE TABLE credentials (
    hash       bytea PRIMARY KEY,            -- SHA-256 of the token
    room       uuid NOT NULL,
    grant_kind text NOT NULL,                -- 'invite' or 'session'
    grant_id   uuid NOT NULL
);

-- Deliveries waiting to be sent, written with the events that asked for them.
CREATE TABLE outbox (
    id           uuid PRIMARY KEY,
    room         uuid NOT NULL,
    invite       uuid NOT NULL,
    channel      text NOT NULL,
    payload      text NOT NULL,
    not_before   bigint NOT NULL,
    attempts     integer NOT NULL DEFAULT 0,
    leased_until bigint
);

CREATE INDEX outbox_due ON outbox (not_before, id);

-- Hits counted by invite guards (rate limits that must survive a restart).
CREATE TABLE counter_hits (
    key text NOT NULL,
    at  bigint NOT NULL                      -- Unix milliseconds
);

CREATE INDEX counter_hits_by_key ON counter_hits (key, at);
