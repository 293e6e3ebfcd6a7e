-- medbus store, SQLite. STRICT tables so a wrongly typed bind fails loudly.
-- Ids are lowercase hyphenated UUID text (text order = byte order = UUID v7
-- time order); times are INTEGER microseconds since the Unix epoch (exact to
-- the microsecond like PostgreSQL, and they sort numerically); raw bytes are
-- BLOBs; headers and bodies are JSON text.

-- Every inbound message, kept before it is acknowledged.
CREATE TABLE messages (
    id              TEXT    NOT NULL PRIMARY KEY,
    correlation_id  TEXT    NOT NULL,
    channel         TEXT    NOT NULL,
    protocol        TEXT    NOT NULL,
    control_id      TEXT,
    message_type    TEXT,
    patient_id      TEXT,
    peer            TEXT,
    raw             BLOB    NOT NULL,
    headers         TEXT    NOT NULL DEFAULT '{}',
    received_at     INTEGER NOT NULL,
    status          TEXT    NOT NULL CHECK (status IN
                        ('received', 'processed', 'filtered', 'errored', 'rejected', 'dead_lettered')),
    error           TEXT,
    updated_at      INTEGER NOT NULL
) STRICT;

-- The natural key: a resend (same channel + control id) is a duplicate.
-- Partial, so messages without a control id never collide.
CREATE UNIQUE INDEX messages_channel_control_id ON messages (channel, control_id) WHERE control_id IS NOT NULL;
-- The message browser pages newest-first, usually narrowed by one of these.
CREATE INDEX messages_channel_received ON messages (channel, received_at);
CREATE INDEX messages_status_received ON messages (status, received_at);
CREATE INDEX messages_received ON messages (received_at);
CREATE INDEX messages_control_id ON messages (control_id);
CREATE INDEX messages_patient_id ON messages (patient_id);

-- Status per processing stage. `seq` numbers a message's stages in the order
-- they were first recorded (wall-clock first_at can tie or step back).
CREATE TABLE message_stages (
    message_id  TEXT    NOT NULL REFERENCES messages (id) ON DELETE CASCADE,
    stage       TEXT    NOT NULL,
    seq         INTEGER NOT NULL,
    status      TEXT    NOT NULL CHECK (status IN
                    ('received', 'processed', 'filtered', 'errored', 'rejected', 'dead_lettered')),
    error       TEXT,
    attempts    INTEGER NOT NULL CHECK (attempts >= 0),
    first_at    INTEGER NOT NULL,
    updated_at  INTEGER NOT NULL,
    PRIMARY KEY (message_id, stage)
) STRICT, WITHOUT ROWID;

-- The canonical event log; ids are envelope ids, so recording is idempotent.
CREATE TABLE events (
    id              TEXT    NOT NULL PRIMARY KEY,
    correlation_id  TEXT    NOT NULL,
    causation_id    TEXT,
    kind            TEXT    NOT NULL,
    subject         TEXT    NOT NULL,
    patient_id      TEXT,
    body            TEXT    NOT NULL,
    occurred_at     INTEGER NOT NULL,
    recorded_at     INTEGER NOT NULL
) STRICT;
CREATE INDEX events_correlation ON events (correlation_id, occurred_at);
CREATE INDEX events_patient ON events (patient_id);

-- Messages a stage gave up on, for operators to fix and replay.
CREATE TABLE dead_letters (
    id              TEXT    NOT NULL PRIMARY KEY,
    stage           TEXT    NOT NULL,
    subject         TEXT    NOT NULL,
    reason          TEXT    NOT NULL,
    deliveries      INTEGER NOT NULL CHECK (deliveries >= 0),
    correlation_id  TEXT,
    headers         TEXT    NOT NULL DEFAULT '{}',
    payload         BLOB    NOT NULL,
    created_at      INTEGER NOT NULL,
    replayed_at     INTEGER
) STRICT;
CREATE INDEX dead_letters_stage_created ON dead_letters (stage, created_at);
CREATE INDEX dead_letters_created ON dead_letters (created_at);

-- Who read or changed what; append-only.
CREATE TABLE audit_log (
    id      INTEGER PRIMARY KEY AUTOINCREMENT,
    at      INTEGER NOT NULL,
    actor   TEXT    NOT NULL,
    action  TEXT    NOT NULL,
    target  TEXT    NOT NULL,
    detail  TEXT
) STRICT;
CREATE INDEX audit_log_target ON audit_log (target, at);
