-- Registration data kept by the registration service: patients, their
-- identifiers and encounters. Resources are canonical (FHIR-shaped) JSON
-- text; times are INTEGER microseconds like the rest of the store.

-- Patients by key (`system|value`). A merged patient keeps its row with
-- merged_into pointing at the survivor; a merge can create a stub row
-- (resource '{}', version 0) for a patient never seen before.
CREATE TABLE patients (
    key          TEXT    NOT NULL PRIMARY KEY,
    resource     TEXT    NOT NULL,
    merged_into  TEXT    REFERENCES patients (key),
    version      INTEGER NOT NULL CHECK (version >= 0),
    updated_at   INTEGER NOT NULL
) STRICT;
CREATE INDEX patients_merged_into ON patients (merged_into);

-- Identifier -> patient. A missing system is stored as ''.
CREATE TABLE patient_identifiers (
    system       TEXT    NOT NULL DEFAULT '',
    value        TEXT    NOT NULL,
    patient_key  TEXT    NOT NULL REFERENCES patients (key),
    PRIMARY KEY (system, value)
) STRICT, WITHOUT ROWID;
CREATE INDEX patient_identifiers_patient ON patient_identifiers (patient_key);

-- Encounters; `seq` (assigned under the write lock, never reused) orders a
-- patient's encounters oldest (first stored) first.
CREATE TABLE encounters (
    key          TEXT    NOT NULL PRIMARY KEY,
    seq          INTEGER NOT NULL UNIQUE,
    patient_key  TEXT    NOT NULL REFERENCES patients (key),
    status       TEXT    NOT NULL,
    resource     TEXT    NOT NULL,
    created_at   INTEGER NOT NULL,
    updated_at   INTEGER NOT NULL
) STRICT;
CREATE INDEX encounters_patient ON encounters (patient_key, seq);
