-- Webhook deliveries: one row per event per configured webhook, queued in the
-- transaction that creates the event, delivered by the outbox worker like email.
-- No foreign key to inquiries: an inquiry.erased event outlives its inquiry.
-- `seq` is the order of creation (a receiver gets one inquiry's events in it);
-- `id` is the Standard Webhooks `webhook-id`, the same on every attempt.
CREATE TABLE webhook_deliveries (
    seq             BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    id              TEXT    NOT NULL UNIQUE,
    webhook         TEXT    NOT NULL,
    inquiry_id      TEXT    NOT NULL,
    event           TEXT    NOT NULL CHECK (event IN ('inquiry.created', 'inquiry.updated', 'inquiry.erased')),
    data            TEXT    NOT NULL,
    status          TEXT    NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'sending', 'sent', 'failed')),
    attempts        BIGINT  NOT NULL DEFAULT 0,
    next_attempt_at BIGINT  NOT NULL,
    lease_until     BIGINT,
    last_error      TEXT,
    response        TEXT,
    sent_at         BIGINT,
    created_at      BIGINT  NOT NULL
);

-- An inquiry's deliveries (the admin API, erasure, the order rule of a claim).
CREATE INDEX webhook_deliveries_inquiry ON webhook_deliveries (inquiry_id, webhook, seq);
-- Only what a claim looks at: rows waiting or being sent.
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_attempt_at) WHERE status IN ('pending', 'sending');
-- A replay of one webhook's failures since a time.
CREATE INDEX webhook_deliveries_failed ON webhook_deliveries (webhook, created_at) WHERE status = 'failed';

CREATE TABLE webhook_attempts (
    seq          BIGINT  GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    delivery_seq BIGINT  NOT NULL REFERENCES webhook_deliveries (seq) ON DELETE CASCADE,
    attempt      BIGINT  NOT NULL,
    at           BIGINT  NOT NULL,
    outcome      TEXT    NOT NULL CHECK (outcome IN ('sent', 'retry', 'failed')),
    detail       TEXT    NOT NULL
);

CREATE INDEX webhook_attempts_delivery ON webhook_attempts (delivery_seq, seq);
