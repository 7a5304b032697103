-- Hits counted by invite guards (rate limits that must survive a restart).
CREATE TABLE counter_hits (
    key TEXT NOT NULL,
    at  INTEGER NOT NULL             -- Unix milliseconds
);

CREATE INDEX counter_hits_by_key ON counter_hits (key, at);
