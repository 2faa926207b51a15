-- The `subscriptions` worker: who follows which topic. The primary key makes subscribing
-- idempotent; the second index serves the fan-out of `publish_event`.
CREATE TABLE IF NOT EXISTS subscriptions (
    user_id TEXT NOT NULL,
    topic TEXT NOT NULL,
    subscribed_at_ms BIGINT NOT NULL,
    PRIMARY KEY (user_id, topic)
);

CREATE INDEX IF NOT EXISTS subscriptions_by_topic ON subscriptions (topic, user_id);
