-- The `messages` worker: messages, and a mailbox row per participant so that listing a user's
-- messages newest first is one index range scan. Portable DDL: TEXT and BIGINT only, times in
-- milliseconds since the Unix epoch. Ids are UUIDv7 (lower-case hyphenated), which sort by time.
CREATE TABLE IF NOT EXISTS messages (
    message_id TEXT PRIMARY KEY,
    sender TEXT NOT NULL,
    receiver TEXT NOT NULL,
    body TEXT NOT NULL,
    sent_at_ms BIGINT NOT NULL
);

CREATE TABLE IF NOT EXISTS mailbox (
    user_id TEXT NOT NULL,
    message_id TEXT NOT NULL REFERENCES messages (message_id) ON DELETE CASCADE,
    PRIMARY KEY (user_id, message_id)
);
