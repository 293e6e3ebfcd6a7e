//! URIs of the code and identifier systems the canonical model uses, so that
//! every mapping spells them the same way.

/// HL7 v2 table 0203, identifier type (MR, PI, AN, VN, SS …).
pub const V2_0203: &str = "http://terminology.hl7.org/CodeSystem/v2-0203";
/// HL7 v2 table 0002, marital status (the source's code, kept beside the v3 one).
pub const V2_0002: &str = "http://terminology.hl7.org/CodeSystem/v2-0002";
/// HL7 v2 table 0004, patient class (for classes without a v3 ActCode).
pub const V2_0004: &str = "http://terminology.hl7.org/CodeSystem/v2-0004";
/// HL7 v2 table 0023, admit source.
pub const V2_0023: &str = "http://terminology.hl7.org/CodeSystem/v2-0023";
/// HL7 v2 table 0069, hospital service.
pub const V2_0069: &str = "http://terminology.hl7.org/CodeSystem/v2-0069";
/// HL7 v2 table 0112, discharge disposition.
pub const V2_0112: &str = "http://terminology.hl7.org/CodeSystem/v2-0112";
/// HL7 v2 table 0078, abnormal flags (kept when v3 ObservationInterpretation has no such code).
pub const V2_0078: &str = "http://terminology.hl7.org/CodeSystem/v2-0078";
/// HL7 v2 table 0276, appointment reason (ROUTINE, WALKIN, FOLLOWUP …).
pub const V2_0276: &str = "http://terminology.hl7.org/CodeSystem/v2-0276";
/// HL7 v2 table 0277, appointment type (Normal, Tentative, Complete).
pub const V2_0277: &str = "http://terminology.hl7.org/CodeSystem/v2-0277";
/// Prefix of the HL7 v2 table code systems: `v2-` and the four-digit table number.
pub const V2_TABLE_PREFIX: &str = "http://terminology.hl7.org/CodeSystem/v2-";
/// HL7 v3 ActCode (encounter class: IMP, AMB, EMER, PRENC …).
pub const V3_ACT_CODE: &str = "http://terminology.hl7.org/CodeSystem/v3-ActCode";
/// HL7 v3 MaritalStatus.
pub const V3_MARITAL_STATUS: &str = "http://terminology.hl7.org/CodeSystem/v3-MaritalStatus";
/// HL7 v3 NullFlavor (UNK and friends).
pub const V3_NULL_FLAVOR: &str = "http://terminology.hl7.org/CodeSystem/v3-NullFlavor";
/// HL7 v3 ObservationInterpretation (H, HH, L, LL, A, AA, N …).
pub const V3_OBSERVATION_INTERPRETATION: &str = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation";
/// HL7 v3 ParticipationType (ATND, ADM, REF, CON).
pub const V3_PARTICIPATION_TYPE: &str = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType";
/// LOINC.
pub const LOINC: &str = "http://loinc.org";
/// SNOMED CT.
pub const SNOMED_CT: &str = "http://snomed.info/sct";
/// ICD-9-CM.
pub const ICD_9_CM: &str = "http://hl7.org/fhir/sid/icd-9-cm";
/// ICD-10 (WHO).
pub const ICD_10: &str = "http://hl7.org/fhir/sid/icd-10";
/// ICD-10-CM (US).
pub const ICD_10_CM: &str = "http://hl7.org/fhir/sid/icd-10-cm";
/// CPT.
pub const CPT: &str = "http://www.ama-assn.org/go/cpt";
/// UCUM units.
pub const UCUM: &str = "http://unitsofmeasure.org";
/// Prefix of identifier systems for an assigning authority known only by its
/// local name: `urn:medbus:authority:<percent-encoded name>`.
pub const MEDBUS_AUTHORITY_PREFIX: &str = "urn:medbus:authority:";
/// Prefix of code systems known only by the sender's local name (HL7 coding
/// system `99zzz`, `L`, a charge master): `urn:medbus:codesystem:<percent-encoded name>`.
pub const MEDBUS_CODE_SYSTEM_PREFIX: &str = "urn:medbus:codesystem:";
/// DICOM Controlled Terminology (modalities `CT`, `MR` …), as FHIR names it.
pub const DICOM_DCM: &str = "http://dicom.nema.org/resources/ontology/DCM";
/// RFC 3986 URIs as codes (SOP classes as `urn:oid:<uid>` in ImagingStudy).
pub const URI: &str = "urn:ietf:rfc:3986";
/// Accession numbers whose issuer is not known: a ServiceRequest's and an
/// ImagingStudy's `ACSN` identifiers meet in this system, so the two link.
pub const MEDBUS_ACCESSION: &str = "urn:medbus:accession";

/// The identifier system of an assigning authority known by its local name:
/// `urn:medbus:authority:<name>`, percent-encoded (see [`percent_encode`]),
/// the form HL7 v2 mapping gives a CX-4 namespace, so a DICOM channel's
/// configured authority meets the same patients.
pub fn authority(name: &str) -> String {
    format!("{MEDBUS_AUTHORITY_PREFIX}{}", percent_encode(name))
}

/// Percent-encodes all but RFC 3986 unreserved characters, so that any local
/// name makes a valid URI (authority and code system names).
pub fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn authority_names_make_uris() {
        assert_eq!(super::authority("HOSP"), "urn:medbus:authority:HOSP");
        assert_eq!(super::authority("St Mary's"), "urn:medbus:authority:St%20Mary%27s");
    }
}
