//! FHIR `Annotation`: a note with its text (HL7 v2 NTE comments).

use serde::{Deserialize, Serialize};

/// FHIR `Annotation`: free text added to a resource.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Annotation {
    /// The note (FHIR markdown; HL7 comments are plain text, which is valid markdown).
    pub text: String,
}
