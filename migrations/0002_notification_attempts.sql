-- Every delivery attempt of a notification, with the server's answer or the error.
CREATE TABLE notification_attempts (
    notification_id TEXT    NOT NULL REFERENCES notifications (id) ON DELETE CASCADE,
    attempt         INTEGER NOT NULL,
    at              INTEGER NOT NULL,
    outcome         TEXT    NOT NULL CHECK (outcome IN ('sent', 'retry', 'failed')),
    detail          TEXT    NOT NULL,
    PRIMARY KEY (notification_id, attempt)
);
