-- realtime-store-sqlx schema v1 (PostgreSQL). Timestamps are microseconds since the Unix epoch.
CREATE TABLE realtime_users (
    id            TEXT PRIMARY KEY,
    username      TEXT NOT NULL UNIQUE,
    display_name  TEXT,
    email         TEXT,
    avatar        TEXT,
    status        TEXT NOT NULL DEFAULT 'offline',
    last_seen     BIGINT,
    password_hash TEXT,
    created_at    BIGINT NOT NULL,
    updated_at    BIGINT NOT NULL
);

CREATE TABLE realtime_rooms (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL,
    kind        TEXT NOT NULL,
    description TEXT,
    is_private  BIGINT NOT NULL,
    created_by  TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    updated_at  BIGINT NOT NULL,
    epoch       TEXT NOT NULL,
    last_seq    BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE realtime_members (
    room_id   TEXT NOT NULL REFERENCES realtime_rooms (id) ON DELETE CASCADE,
    user_id   TEXT NOT NULL,
    role      TEXT NOT NULL,
    joined_at BIGINT NOT NULL,
    PRIMARY KEY (room_id, user_id)
);
CREATE INDEX realtime_members_by_user ON realtime_members (user_id, room_id);

CREATE TABLE realtime_invites (
    code         TEXT PRIMARY KEY,
    room_id      TEXT NOT NULL REFERENCES realtime_rooms (id) ON DELETE CASCADE,
    created_by   TEXT NOT NULL,
    invitee      TEXT,
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    state        TEXT NOT NULL,
    responded_by TEXT,
    responded_at BIGINT
);

CREATE TABLE realtime_messages (
    id         TEXT PRIMARY KEY,
    room_id    TEXT NOT NULL REFERENCES realtime_rooms (id) ON DELETE CASCADE,
    seq        BIGINT NOT NULL,
    client_id  TEXT,
    sender_id  TEXT NOT NULL,
    content    BYTEA NOT NULL,
    kind       TEXT NOT NULL,
    status     TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    edited_at  BIGINT,
    deleted_at BIGINT,
    UNIQUE (room_id, seq)
);
CREATE UNIQUE INDEX realtime_messages_client_id ON realtime_messages (room_id, sender_id, client_id);

CREATE TABLE realtime_reactions (
    message_id TEXT NOT NULL REFERENCES realtime_messages (id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL,
    emoji      TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (message_id, user_id, emoji)
);

CREATE TABLE realtime_read_pointers (
    room_id    TEXT NOT NULL REFERENCES realtime_rooms (id) ON DELETE CASCADE,
    user_id    TEXT NOT NULL,
    seq        BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    PRIMARY KEY (room_id, user_id)
);

CREATE TABLE realtime_favorites (
    user_id    TEXT NOT NULL,
    target_id  TEXT NOT NULL,
    kind       TEXT NOT NULL,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (user_id, target_id, kind)
);

CREATE TABLE realtime_events (
    pos       BIGSERIAL PRIMARY KEY,
    id        TEXT NOT NULL,
    type      TEXT NOT NULL,
    room_id   TEXT,
    user_id   TEXT,
    timestamp BIGINT NOT NULL,
    body      TEXT NOT NULL
);
CREATE INDEX realtime_events_by_room ON realtime_events (room_id, pos);
