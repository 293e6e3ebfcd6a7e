-- Resources FHIR clients create and update through the /fhir server: one row
-- per (resource type, logical id) with its current version and JSON, and the
-- business identifiers it is found by, unique per resource type.

-- Resources. `seq` orders them oldest (first created) first.
CREATE TABLE fhir_resource (
    resource_type  text        NOT NULL CHECK (resource_type <> ''),
    id             text        NOT NULL CHECK (id <> ''),
    seq            bigint      GENERATED ALWAYS AS IDENTITY,
    version        bigint      NOT NULL CHECK (version >= 1),
    last_updated   timestamptz NOT NULL,
    resource       jsonb       NOT NULL,
    PRIMARY KEY (resource_type, id)
);

-- Identifier -> resource id, within one resource type. A missing system is
-- stored as '' (the store refuses an empty one). The key leads with value
-- so a search without a system uses it too; it is also what makes two
-- concurrent claims of one identifier end with one holder.
CREATE TABLE fhir_identifier (
    resource_type  text NOT NULL,
    value          text NOT NULL CHECK (value <> ''),
    system         text NOT NULL DEFAULT '',
    id             text NOT NULL,
    PRIMARY KEY (resource_type, value, system),
    FOREIGN KEY (resource_type, id) REFERENCES fhir_resource (resource_type, id)
);
-- An update replaces the identifiers of its id.
CREATE INDEX fhir_identifier_resource ON fhir_identifier (resource_type, id);
