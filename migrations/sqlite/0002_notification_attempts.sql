-- Every delivery attempt of a notification, with the server's answer or the error.
-- `attempt` counts from 1 and starts again when an admin re-queues a failed one.
CREATE TABLE notification_attempts (
    seq             INTEGER PRIMARY KEY,
    notification_id TEXT    NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
    attempt         INTEGER NOT NULL,
    at              INTEGER NOT NULL,
    outcome         TEXT    NOT NULL CHECK (outcome IN ('sent', 'retry', 'failed')),
    detail          TEXT    NOT NULL
);

CREATE INDEX notification_attempts_notification ON notification_attempts (notification_id, seq);
