//! Unit tests of the FHIR mapping.
