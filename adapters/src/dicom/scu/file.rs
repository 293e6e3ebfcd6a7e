//! Reading a stored Part-10 file for sending: the file meta group gives the SOP class,
//! SOP instance and transfer syntax, and what follows it is the data set, sent as it is
//! (a C-STORE carries the data set alone, in the transfer syntax it was stored in).

use dicom_object::meta::FileMetaTable;

/// Offset of the `DICM` magic: after the 128-byte preamble (PS3.10 7.1).
const MAGIC_AT: usize = 128;

/// Why a file cannot be sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Part10ReadError {
    /// No `DICM` after a 128-byte preamble.
    #[error("not a DICOM Part-10 file (no DICM after the preamble)")]
    NotPart10,
    /// The file meta group is unreadable or lacks a required element.
    #[error("unreadable file meta group: {0}")]
    Meta(String),
}

/// A Part-10 file split into what a C-STORE needs. Borrows the file's bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part10<'a> {
    /// Media Storage SOP Class UID (0002,0002), unpadded.
    pub sop_class_uid: String,
    /// Media Storage SOP Instance UID (0002,0003), unpadded.
    pub sop_instance_uid: String,
    /// Transfer Syntax UID (0002,0010), unpadded: the data set's encoding.
    pub transfer_syntax_uid: String,
    /// The data set bytes, exactly as stored.
    pub dataset: &'a [u8],
}

fn unpad(s: &str) -> String {
    s.trim_end_matches(['\0', ' ']).to_string()
}

/// Splits `file` into its meta information and data set.
pub fn read(file: &[u8]) -> Result<Part10<'_>, Part10ReadError> {
    if file.get(MAGIC_AT..MAGIC_AT + 4) != Some(b"DICM") {
        return Err(Part10ReadError::NotPart10);
    }
    // `from_reader` starts at the magic and reads exactly the group its group length
    // announces, so the slice it leaves behind is the data set.
    let mut rest = &file[MAGIC_AT..];
    let meta = FileMetaTable::from_reader(&mut rest).map_err(|e| Part10ReadError::Meta(e.to_string()))?;
    let parsed = Part10 {
        sop_class_uid: unpad(meta.media_storage_sop_class_uid()),
        sop_instance_uid: unpad(meta.media_storage_sop_instance_uid()),
        transfer_syntax_uid: unpad(meta.transfer_syntax()),
        dataset: rest,
    };
    if parsed.sop_class_uid.is_empty() || parsed.sop_instance_uid.is_empty() || parsed.transfer_syntax_uid.is_empty() {
        return Err(Part10ReadError::Meta(
            "an empty SOP class, SOP instance or transfer syntax UID".into(),
        ));
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use dicom_dictionary_std::uids;

    #[test]
    fn the_data_set_is_what_the_writer_put_after_the_meta_group() {
        let dataset = b"\x08\x00\x18\x00\x04\x00\x00\x001.2\x00";
        let file = crate::dicom::part10::file_bytes(
            uids::CT_IMAGE_STORAGE,
            "1.2.3",
            uids::EXPLICIT_VR_LITTLE_ENDIAN,
            "CT1",
            dataset,
        )
        .unwrap();
        let p = read(&file).unwrap();
        assert_eq!(p.dataset, dataset);
        assert_eq!(p.sop_class_uid, uids::CT_IMAGE_STORAGE);
        assert_eq!(p.sop_instance_uid, "1.2.3");
        assert_eq!(p.transfer_syntax_uid, uids::EXPLICIT_VR_LITTLE_ENDIAN);
    }

    #[test]
    fn other_bytes_are_errors_not_panics() {
        assert_eq!(read(b"short"), Err(Part10ReadError::NotPart10));
        let mut junk = vec![0u8; 128];
        junk.extend_from_slice(b"DICM\x02\x00\x00\x00UL\x04\x00\xff\xff\xff\x7f");
        assert!(matches!(read(&junk), Err(Part10ReadError::Meta(_))));
    }
}
