-- The email column serves search only (the summary keeps the address as given): it now holds
-- the address's match key, ASCII letters lower-cased (collab_core's EmailAddress::match_key),
-- so that GRACE@EXAMPLE.COM finds grace@example.com. translate() folds ASCII only, as the key
-- does (lower() would also fold other letters, depending on the collation).
UPDATE rooms
SET email = translate(email, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz')
WHERE email IS NOT NULL
  AND email <> translate(email, 'ABCDEFGHIJKLMNOPQRSTUVWXYZ', 'abcdefghijklmnopqrstuvwxyz');
