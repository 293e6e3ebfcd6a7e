-- Registration data kept by the registration service: patients, their
-- identifiers and encounters. Resources are canonical (FHIR-shaped) jsonb.

-- Patients by key (`system|value`). A merged patient keeps its row with
-- merged_into pointing at the survivor; a merge can create a stub row
-- (resource '{}', version 0) for a patient never seen before.
CREATE TABLE patients (
    key          text        PRIMARY KEY,
    resource     jsonb       NOT NULL,
    merged_into  text        REFERENCES patients (key),
    version      bigint      NOT NULL CHECK (version >= 0),
    updated_at   timestamptz NOT NULL
);
CREATE INDEX patients_merged_into ON patients (merged_into);

-- Identifier -> patient. A missing system is stored as ''.
CREATE TABLE patient_identifiers (
    system       text        NOT NULL DEFAULT '',
    value        text        NOT NULL,
    patient_key  text        NOT NULL REFERENCES patients (key),
    PRIMARY KEY (system, value)
);
CREATE INDEX patient_identifiers_patient ON patient_identifiers (patient_key);

-- Encounters; `seq` orders a patient's encounters oldest (first stored) first.
CREATE TABLE encounters (
    key          text        PRIMARY KEY,
    seq          bigint      GENERATED ALWAYS AS IDENTITY,
    patient_key  text        NOT NULL REFERENCES patients (key),
    status       text        NOT NULL,
    resource     jsonb       NOT NULL,
    created_at   timestamptz NOT NULL,
    updated_at   timestamptz NOT NULL
);
CREATE INDEX encounters_patient ON encounters (patient_key, seq);
