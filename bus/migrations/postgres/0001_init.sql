-- medbus store, PostgreSQL. Native types: uuid ids, timestamptz times
-- (microsecond precision), bytea raw payloads, jsonb headers and bodies.

-- Every inbound message, kept before it is acknowledged.
CREATE TABLE messages (
    id              uuid        PRIMARY KEY,
    correlation_id  uuid        NOT NULL,
    channel         text        NOT NULL,
    protocol        text        NOT NULL,
    control_id      text,
    message_type    text,
    patient_id      text,
    peer            text,
    raw             bytea       NOT NULL,
    headers         jsonb       NOT NULL DEFAULT '{}'::jsonb,
    received_at     timestamptz NOT NULL,
    status          text        NOT NULL CHECK (status IN
                        ('received', 'processed', 'filtered', 'errored', 'rejected', 'dead_lettered')),
    error           text,
    updated_at      timestamptz NOT NULL
);

-- The natural key: a resend (same channel + control id) is a duplicate.
-- Partial, so messages without a control id never collide.
CREATE UNIQUE INDEX messages_channel_control_id ON messages (channel, control_id) WHERE control_id IS NOT NULL;
-- The message browser pages newest-first, usually narrowed by one of these.
CREATE INDEX messages_channel_received ON messages (channel, received_at);
CREATE INDEX messages_status_received ON messages (status, received_at);
CREATE INDEX messages_received ON messages (received_at);
CREATE INDEX messages_control_id ON messages (control_id);
CREATE INDEX messages_patient_id ON messages (patient_id);

-- Status per processing stage. `seq` only orders a message's stages in the
-- order they were first recorded (wall-clock first_at can tie or step back).
CREATE TABLE message_stages (
    message_id  uuid        NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    stage       text        NOT NULL,
    seq         bigint      GENERATED ALWAYS AS IDENTITY,
    status      text        NOT NULL CHECK (status IN
                    ('received', 'processed', 'filtered', 'errored', 'rejected', 'dead_lettered')),
    error       text,
    attempts    bigint      NOT NULL CHECK (attempts >= 0),
    first_at    timestamptz NOT NULL,
    updated_at  timestamptz NOT NULL,
    PRIMARY KEY (message_id, stage)
);

-- The canonical event log; ids are envelope ids, so recording is idempotent.
CREATE TABLE events (
    id              uuid        PRIMARY KEY,
    correlation_id  uuid        NOT NULL,
    causation_id    uuid,
    kind            text        NOT NULL,
    subject         text        NOT NULL,
    patient_id      text,
    body            jsonb       NOT NULL,
    occurred_at     timestamptz NOT NULL,
    recorded_at     timestamptz NOT NULL
);
CREATE INDEX events_correlation ON events (correlation_id, occurred_at);
CREATE INDEX events_patient ON events (patient_id);

-- Messages a stage gave up on, for operators to fix and replay.
CREATE TABLE dead_letters (
    id              uuid        PRIMARY KEY,
    stage           text        NOT NULL,
    subject         text        NOT NULL,
    reason          text        NOT NULL,
    deliveries      bigint      NOT NULL CHECK (deliveries >= 0),
    correlation_id  uuid,
    headers         jsonb       NOT NULL DEFAULT '{}'::jsonb,
    payload         bytea       NOT NULL,
    created_at      timestamptz NOT NULL,
    replayed_at     timestamptz
);
CREATE INDEX dead_letters_stage_created ON dead_letters (stage, created_at);
CREATE INDEX dead_letters_created ON dead_letters (created_at);

-- Who read or changed what; append-only.
CREATE TABLE audit_log (
    id      bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at      timestamptz NOT NULL,
    actor   text        NOT NULL,
    action  text        NOT NULL,
    target  text        NOT NULL,
    detail  text
);
CREATE INDEX audit_log_target ON audit_log (target, at);
