-- The email column serves search only (the summary keeps the address as given): it now holds
-- the address's match key, ASCII letters lower-cased (collab_core's EmailAddress::match_key),
-- so that GRACE@EXAMPLE.COM finds grace@example.com. SQLite's lower() folds ASCII only, as the
-- key does.
UPDATE rooms SET email = lower(email) WHERE email IS NOT NULL AND email <> lower(email);
