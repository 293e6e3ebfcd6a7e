-- Clinical resources kept by the orders, results, billing and notifications
-- services: one generic row per (resource type, natural key) with its
-- canonical FHIR jsonb, the identifiers it is found by and the order
-- identifiers it refers to; the per-service applied ledger; the outbox of
-- follow-up events.

-- Resources. `seq` orders them oldest (first stored) first; order_key is the
-- ServiceRequest key once one of the row's order tokens matched an order.
CREATE TABLE clinical_resources (
    resource_type  text        NOT NULL CHECK (resource_type <> ''),
    key            text        NOT NULL CHECK (key <> ''),
    seq            bigint      GENERATED ALWAYS AS IDENTITY,
    patient_key    text,
    status         text        NOT NULL,
    order_key      text,
    resource       jsonb       NOT NULL,
    version        bigint      NOT NULL CHECK (version >= 1),
    updated_at     timestamptz NOT NULL,
    PRIMARY KEY (resource_type, key)
);
CREATE INDEX clinical_resources_patient ON clinical_resources (patient_key, resource_type, seq);
CREATE INDEX clinical_resources_order ON clinical_resources (order_key, resource_type, seq);
-- Escalation and retry sweeps: a status, oldest change first.
CREATE INDEX clinical_resources_status ON clinical_resources (resource_type, status, updated_at);

-- Identifier token (`system|value`) -> key, within one resource type.
CREATE TABLE clinical_identifiers (
    resource_type  text NOT NULL,
    token          text NOT NULL,
    key            text NOT NULL,
    PRIMARY KEY (resource_type, token),
    FOREIGN KEY (resource_type, key) REFERENCES clinical_resources (resource_type, key)
);

-- Tokens of the ServiceRequest identifiers a resource refers to; the token
-- index finds the rows to link when their order arrives late.
CREATE TABLE clinical_order_tokens (
    resource_type  text NOT NULL,
    key            text NOT NULL,
    token          text NOT NULL,
    PRIMARY KEY (resource_type, key, token),
    FOREIGN KEY (resource_type, key) REFERENCES clinical_resources (resource_type, key)
);
CREATE INDEX clinical_order_tokens_token ON clinical_order_tokens (token);

-- Events each service has applied (or raised itself): idempotency per service.
CREATE TABLE service_applied (
    service     text        NOT NULL,
    event_id    uuid        NOT NULL,
    applied_at  timestamptz NOT NULL,
    PRIMARY KEY (service, event_id)
);

-- Follow-up events written with the change that raised them, published
-- after the commit. `seq` orders them oldest first.
CREATE TABLE outbox (
    id              uuid        PRIMARY KEY,
    seq             bigint      GENERATED ALWAYS AS IDENTITY,
    service         text        NOT NULL,
    correlation_id  uuid        NOT NULL,
    causation_id    uuid,
    kind            text        NOT NULL,
    subject         text        NOT NULL,
    patient_id      text,
    body            jsonb       NOT NULL,
    occurred_at     timestamptz NOT NULL,
    created_at      timestamptz NOT NULL,
    published_at    timestamptz
);
CREATE INDEX outbox_unpublished ON outbox (service, seq) WHERE published_at IS NULL;
