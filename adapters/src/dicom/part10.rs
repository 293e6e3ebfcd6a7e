//! A received data set as a DICOM Part-10 file: a 128-byte preamble, `DICM`,
//! the file meta group (Explicit VR Little Endian, from dicom-object's
//! builder), then the data set bytes exactly as received. Nothing in the data
//! set is re-encoded, so compressed pixel data stays byte for byte what the
//! modality sent.

use dicom_object::meta::FileMetaTableBuilder;

/// medbus's Implementation Class UID (0002,0012): a UUID-derived `2.25` UID, so
/// no organisation root is needed (UUID v5 of `urn:medbus:dicom`).
pub const IMPLEMENTATION_CLASS_UID: &str = "2.25.102959167580674690134383690343529743623";
/// medbus's Implementation Version Name (0002,0013).
pub const IMPLEMENTATION_VERSION_NAME: &str = "MEDBUS";

/// Why the file meta group could not be made.
#[derive(Debug, thiserror::Error)]
#[error("file meta group: {0}")]
pub struct Part10Error(String);

/// The Part-10 bytes of one instance.
pub fn file_bytes(
    sop_class_uid: &str,
    sop_instance_uid: &str,
    transfer_syntax_uid: &str,
    source_ae: &str,
    dataset: &[u8],
) -> Result<Vec<u8>, Part10Error> {
    let mut out = header_bytes(sop_class_uid, sop_instance_uid, transfer_syntax_uid, source_ae)?;
    out.extend_from_slice(dataset);
    Ok(out)
}

/// What comes before the data set in the Part-10 file: preamble, `DICM` and
/// the file meta group. Written before the data set as received, it makes the
/// file without copying the data set into a new buffer.
pub fn header_bytes(
    sop_class_uid: &str,
    sop_instance_uid: &str,
    transfer_syntax_uid: &str,
    source_ae: &str,
) -> Result<Vec<u8>, Part10Error> {
    let mut builder = FileMetaTableBuilder::new()
        .media_storage_sop_class_uid(sop_class_uid)
        .media_storage_sop_instance_uid(sop_instance_uid)
        .transfer_syntax(transfer_syntax_uid)
        .implementation_class_uid(IMPLEMENTATION_CLASS_UID)
        .implementation_version_name(IMPLEMENTATION_VERSION_NAME);
    let source_ae = source_ae.trim();
    if !source_ae.is_empty() {
        builder = builder.source_application_entity_title(source_ae);
    }
    let meta = builder.build().map_err(|e| Part10Error(e.to_string()))?;
    let mut out = Vec::with_capacity(128 + 256);
    out.resize(128, 0);
    // `FileMetaTable::write` writes the group alone: the magic is ours to add.
    out.extend_from_slice(b"DICM");
    meta.write(&mut out).map_err(|e| Part10Error(e.to_string()))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use dicom_dictionary_std::uids;

    #[test]
    fn preamble_magic_meta_then_the_data_set_untouched() {
        let dataset = b"\x08\x00\x18\x00\x04\x00\x00\x001.2\x00";
        let bytes = file_bytes(
            uids::CT_IMAGE_STORAGE,
            "1.2",
            uids::EXPLICIT_VR_LITTLE_ENDIAN,
            "CT1",
            dataset,
        )
        .unwrap();
        assert!(bytes[..128].iter().all(|&b| b == 0));
        assert_eq!(&bytes[128..132], b"DICM");
        assert!(bytes.ends_with(dataset));
        let meta = dicom_object::meta::FileMetaTable::from_reader(&bytes[128..]).unwrap();
        assert_eq!(meta.transfer_syntax(), uids::EXPLICIT_VR_LITTLE_ENDIAN);
        assert_eq!(meta.media_storage_sop_instance_uid(), "1.2");
        assert_eq!(meta.source_application_entity_title(), Some("CT1"));
    }
}
