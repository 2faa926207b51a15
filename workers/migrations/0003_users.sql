-- The `users` worker: binary buffers (stored as standard base64 text, so the DDL is the same on
-- SQLite and PostgreSQL) and typed user messages (`data` as JSON text).
CREATE TABLE IF NOT EXISTS buffers (
    buffer_uuid TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    content_base64 TEXT NOT NULL,
    size_bytes BIGINT NOT NULL,
    created_at_ms BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS user_messages (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL,
    message_type TEXT NOT NULL,
    data_json TEXT NOT NULL,
    recorded_at_ms BIGINT NOT NULL
);

CREATE INDEX IF NOT EXISTS user_messages_by_user ON user_messages (user_id, id);
