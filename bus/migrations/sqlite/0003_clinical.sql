-- Clinical resources kept by the orders, results, billing and notifications
-- services: one generic row per (resource type, natural key) with its
-- canonical FHIR JSON text, the identifiers it is found by and the order
-- identifiers it refers to; the per-service applied ledger; the outbox of
-- follow-up events. Times are INTEGER microseconds, ids UUID text.

-- Resources. `seq` (assigned under the write lock, never reused) orders them
-- oldest (first stored) first; order_key is the ServiceRequest key once one
-- of the row's order tokens matched an order.
CREATE TABLE clinical_resources (
    resource_type  TEXT    NOT NULL CHECK (resource_type <> ''),
    key            TEXT    NOT NULL CHECK (key <> ''),
    seq            INTEGER NOT NULL UNIQUE,
    patient_key    TEXT,
    status         TEXT    NOT NULL,
    order_key      TEXT,
    resource       TEXT    NOT NULL,
    version        INTEGER NOT NULL CHECK (version >= 1),
    updated_at     INTEGER NOT NULL,
    PRIMARY KEY (resource_type, key)
) STRICT;
CREATE INDEX clinical_resources_patient ON clinical_resources (patient_key, resource_type, seq);
CREATE INDEX clinical_resources_order ON clinical_resources (order_key, resource_type, seq);
-- Escalation and retry sweeps: a status, oldest change first.
CREATE INDEX clinical_resources_status ON clinical_resources (resource_type, status, updated_at);

-- Identifier token (`system|value`) -> key, within one resource type.
CREATE TABLE clinical_identifiers (
    resource_type  TEXT NOT NULL,
    token          TEXT NOT NULL,
    key            TEXT NOT NULL,
    PRIMARY KEY (resource_type, token),
    FOREIGN KEY (resource_type, key) REFERENCES clinical_resources (resource_type, key)
) STRICT, WITHOUT ROWID;

-- Tokens of the ServiceRequest identifiers a resource refers to; the token
-- index finds the rows to link when their order arrives late.
CREATE TABLE clinical_order_tokens (
    resource_type  TEXT NOT NULL,
    key            TEXT NOT NULL,
    token          TEXT NOT NULL,
    PRIMARY KEY (resource_type, key, token),
    FOREIGN KEY (resource_type, key) REFERENCES clinical_resources (resource_type, key)
) STRICT, WITHOUT ROWID;
CREATE INDEX clinical_order_tokens_token ON clinical_order_tokens (token);

-- Events each service has applied (or raised itself): idempotency per service.
CREATE TABLE service_applied (
    service     TEXT    NOT NULL,
    event_id    TEXT    NOT NULL,
    applied_at  INTEGER NOT NULL,
    PRIMARY KEY (service, event_id)
) STRICT, WITHOUT ROWID;

-- Follow-up events written with the change that raised them, published
-- after the commit. `seq` (assigned under the write lock) orders them oldest first.
CREATE TABLE outbox (
    id              TEXT    NOT NULL PRIMARY KEY,
    seq             INTEGER NOT NULL UNIQUE,
    service         TEXT    NOT NULL,
    correlation_id  TEXT    NOT NULL,
    causation_id    TEXT,
    kind            TEXT    NOT NULL,
    subject         TEXT    NOT NULL,
    patient_id      TEXT,
    body            TEXT    NOT NULL,
    occurred_at     INTEGER NOT NULL,
    created_at      INTEGER NOT NULL,
    published_at    INTEGER
) STRICT;
CREATE INDEX outbox_unpublished ON outbox (service, seq) WHERE published_at IS NULL;
