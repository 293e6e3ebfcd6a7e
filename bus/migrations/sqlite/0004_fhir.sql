-- Resources FHIR clients create and update through the /fhir server: one row
-- per (resource type, logical id) with its current version and JSON text,
-- and the business identifiers it is found by, unique per resource type.
-- Times are INTEGER microseconds.

-- Resources. `seq` (assigned under the write lock, never reused) orders them
-- oldest (first created) first.
CREATE TABLE fhir_resource (
    resource_type  TEXT    NOT NULL CHECK (resource_type <> ''),
    id             TEXT    NOT NULL CHECK (id <> ''),
    seq            INTEGER NOT NULL UNIQUE,
    version        INTEGER NOT NULL CHECK (version >= 1),
    last_updated   INTEGER NOT NULL,
    resource       TEXT    NOT NULL,
    PRIMARY KEY (resource_type, id)
) STRICT;

-- Identifier -> resource id, within one resource type. A missing system is
-- stored as '' (the store refuses an empty one). The key leads with value
-- so a search without a system uses it too.
CREATE TABLE fhir_identifier (
    resource_type  TEXT NOT NULL,
    value          TEXT NOT NULL CHECK (value <> ''),
    system         TEXT NOT NULL DEFAULT '',
    id             TEXT NOT NULL,
    PRIMARY KEY (resource_type, value, system),
    FOREIGN KEY (resource_type, id) REFERENCES fhir_resource (resource_type, id)
) STRICT, WITHOUT ROWID;
-- An update replaces the identifiers of its id.
CREATE INDEX fhir_identifier_resource ON fhir_identifier (resource_type, id);
