//! Tests of the embedded backbone (beyond the conformance suite).
