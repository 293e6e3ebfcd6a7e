//! HL7 v2 parser (being written).
