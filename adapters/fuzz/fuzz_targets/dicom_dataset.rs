//! Fuzz the reading of data sets received over the network: the same function the
//! DICOM SCP runs on each reassembled C-STORE data set (`dicom::dataset::read_metadata`),
//! in Implicit VR Little Endian, Explicit VR Little Endian and Deflated Explicit VR
//! Little Endian, and the command-set reader (`dicom::dimse::read_command`).
//!
//! Input: the data set bytes, as they would arrive in P-DATA. Checked on each input:
//! no panic; metadata read is complete (the four UIDs non-empty, the transfer syntax
//! the one asked for).
#![no_main]

use libfuzzer_sys::fuzz_target;
use medbus_adapters::dicom::dataset::read_metadata;
use medbus_adapters::dicom::dimse::read_command;

const SYNTAXES: [&str; 3] = [
    "1.2.840.10008.1.2",      // Implicit VR Little Endian
    "1.2.840.10008.1.2.1",    // Explicit VR Little Endian
    "1.2.840.10008.1.2.1.99", // Deflated Explicit VR Little Endian
];

fuzz_target!(|data: &[u8]| {
    for ts in SYNTAXES {
        if let Ok(m) = read_metadata(data, ts) {
            assert!(!m.sop_instance_uid.is_empty(), "empty SOP Instance UID accepted");
            assert!(!m.sop_class_uid.is_empty(), "empty SOP Class UID accepted");
            assert!(!m.study_instance_uid.is_empty(), "empty Study Instance UID accepted");
            assert!(!m.series_instance_uid.is_empty(), "empty Series Instance UID accepted");
            assert_eq!(m.transfer_syntax_uid, ts);
        }
    }
    let _ = read_command(data);
});
