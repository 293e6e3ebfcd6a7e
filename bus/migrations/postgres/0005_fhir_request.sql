-- What became of each request the /fhir server kept on the backbone before
-- writing it: committed (in the same transaction as its resources) or
-- refused (the store said no after the request was kept). The FHIR router
-- reads it so that a request the client got an error for yields no events.
CREATE TABLE fhir_request (
    id         text        PRIMARY KEY,
    committed  boolean     NOT NULL,
    reason     text,
    at         timestamptz NOT NULL
);
