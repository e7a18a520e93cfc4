-- no-transaction
-- The messages' room foreign key becomes DEFERRABLE INITIALLY DEFERRED, so that the
-- one-query batch insert (`INSERT OR ROLLBACK … SELECT`, several rows) needs no statement
-- journal: with an immediate key SQLite copied every page the insert changed into a
-- sub-journal first, ~10 % of a stored message's instructions.
-- SQLite cannot change a constraint in place: the table is rebuilt (SQLite's documented
-- procedure, https://sqlite.org/lang_altertable.html#otheralter), with foreign keys off so
-- that dropping the old table does not cascade into realtime_reactions, all in one
-- transaction. On a large existing file this copies every message once, at the first
-- start of this version.
PRAGMA foreign_keys = OFF;
BEGIN IMMEDIATE;
CREATE TABLE realtime_messages_rebuilt (
    id         TEXT PRIMARY KEY,
    room_id    TEXT NOT NULL REFERENCES realtime_rooms (id) ON DELETE CASCADE DEFERRABLE INITIALLY DEFERRED,
    seq        BIGINT NOT NULL,
    client_id  TEXT,
    sender_id  TEXT NOT NULL,
    content    BLOB NOT NULL,
    kind       TEXT NOT NULL,
    status     TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    edited_at  BIGINT,
    deleted_at BIGINT,
    UNIQUE (room_id, seq)
);
INSERT INTO realtime_messages_rebuilt (id, room_id, seq, client_id, sender_id, content, kind, status, created_at, edited_at, deleted_at)
    SELECT id, room_id, seq, client_id, sender_id, content, kind, status, created_at, edited_at, deleted_at
    FROM realtime_messages ORDER BY rowid;
DROP TABLE realtime_messages;
ALTER TABLE realtime_messages_rebuilt RENAME TO realtime_messages;
CREATE UNIQUE INDEX realtime_messages_client_id ON realtime_messages (room_id, sender_id, client_id)
    WHERE client_id IS NOT NULL;
COMMIT;
PRAGMA foreign_keys = ON;
