//! FHIR R4 over HTTP: a load generator that POSTs generated Patients to a
//! FHIR server from N concurrent clients and reports requests/s and latency.

pub mod load;
