//! Metadata from a data set received over the network. This is the code the
//! `dicom_dataset` fuzz target runs: any bytes give metadata or an error,
//! never a panic.
//!
//! The element headers are checked first (`element_lengths`): no declared
//! length may exceed the bytes received, so the parser never allocates more
//! than it was sent.
//!
//! Only the elements before Pixel Data (7FE0,0010) are read, with dicom-object's
//! collector: pixel data is neither decoded nor copied, whatever the transfer
//! syntax, so a compressed instance costs no more than an uncompressed one.
//! What follows the Pixel Data header is not checked here; a data set cut
//! short in transit is caught by the P-DATA framing (no last fragment).
//!
//! The collector does not apply a transfer syntax's data set codec (it would
//! parse deflated bytes as if they were plain), so Deflated Explicit VR Little
//! Endian is inflated here first.

use std::borrow::Cow;
use std::io::{BufReader, Cursor, Read};

use dicom_core::Tag;
use dicom_dictionary_std::{tags, uids};
use dicom_encoding::transfer_syntax::Codec;
use dicom_encoding::{Endianness, TransferSyntaxIndex};
use dicom_object::collector::DicomCollector;
use dicom_object::InMemDicomObject;
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;

use super::element_lengths::{self, Encoding};
use super::instance::InstanceMetadata;
use super::sop_classes::trim_uid;

/// Most of a deflated data set inflated to read its metadata: the attributes come
/// before the pixel data, and a bomb must not take the memory.
const MAX_INFLATED_BYTES: u64 = 64 * 1024 * 1024;

/// Why a data set's metadata could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DatasetError {
    /// The bytes are not a data set in the negotiated transfer syntax.
    #[error("data set unreadable: {0}")]
    Unreadable(String),
    /// A required attribute is absent or empty.
    #[error("data set lacks {0}")]
    Missing(&'static str),
}

/// Reads the metadata of a data set encoded in `transfer_syntax_uid`.
pub fn read_metadata(bytes: &[u8], transfer_syntax_uid: &str) -> Result<InstanceMetadata, DatasetError> {
    let ts = trim_uid(transfer_syntax_uid).to_string();
    let entry = TransferSyntaxRegistry
        .get(&ts)
        .ok_or_else(|| DatasetError::Unreadable(format!("unknown transfer syntax {ts}")))?;
    // The collector parses the bytes as they are: a deflated data set is inflated first
    // (its inner encoding is Explicit VR Little Endian), up to a bound against deflate bombs.
    let inflated;
    let (bytes, parse_ts) = match entry.codec() {
        Codec::Dataset(Some(adapter)) => {
            let mut reader = adapter.adapt_reader(Box::new(bytes)).take(MAX_INFLATED_BYTES);
            let mut out = Vec::new();
            reader
                .read_to_end(&mut out)
                .map_err(|e| DatasetError::Unreadable(format!("deflated data set: {e}")))?;
            inflated = out;
            (&inflated[..], uids::EXPLICIT_VR_LITTLE_ENDIAN)
        }
        Codec::Dataset(None) => return Err(DatasetError::Unreadable(format!("transfer syntax {ts} not readable"))),
        _ => (bytes, ts.as_str()),
    };
    let encoding = Encoding {
        explicit_vr: parse_ts != uids::IMPLICIT_VR_LITTLE_ENDIAN,
        big_endian: entry.endianness() == Endianness::Big,
    };
    element_lengths::check(bytes, encoding).map_err(DatasetError::Unreadable)?;
    let mut collector =
        DicomCollector::new_with_ts(BufReader::new(Cursor::new(bytes)), Cow::Owned(parse_ts.to_string()));
    let mut obj = InMemDicomObject::new_empty();
    collector
        .read_dataset_up_to_pixeldata(&mut obj)
        .map_err(|e| DatasetError::Unreadable(e.to_string()))?;
    let required = |tag, name| text(&obj, tag).ok_or(DatasetError::Missing(name));
    Ok(InstanceMetadata {
        patient_id: text(&obj, tags::PATIENT_ID),
        patient_name: text(&obj, tags::PATIENT_NAME),
        study_instance_uid: required(tags::STUDY_INSTANCE_UID, "Study Instance UID (0020,000D)")?,
        series_instance_uid: required(tags::SERIES_INSTANCE_UID, "Series Instance UID (0020,000E)")?,
        sop_instance_uid: required(tags::SOP_INSTANCE_UID, "SOP Instance UID (0008,0018)")?,
        sop_class_uid: required(tags::SOP_CLASS_UID, "SOP Class UID (0008,0016)")?,
        modality: text(&obj, tags::MODALITY),
        accession_number: text(&obj, tags::ACCESSION_NUMBER),
        study_date: text(&obj, tags::STUDY_DATE),
        study_time: text(&obj, tags::STUDY_TIME),
        timezone_offset: text(&obj, tags::TIMEZONE_OFFSET_FROM_UTC),
        study_description: text(&obj, tags::STUDY_DESCRIPTION),
        series_number: number(&obj, tags::SERIES_NUMBER),
        instance_number: number(&obj, tags::INSTANCE_NUMBER),
        body_part_examined: text(&obj, tags::BODY_PART_EXAMINED),
        number_of_frames: number(&obj, tags::NUMBER_OF_FRAMES),
        transfer_syntax_uid: ts,
    })
}

/// A text value without padding (spaces and NULs at either end); None when absent or empty.
fn text(obj: &InMemDicomObject, tag: Tag) -> Option<String> {
    let element = obj.element_opt(tag).ok().flatten()?;
    let value = element.to_str().ok()?;
    let value = value.trim_matches(|c: char| c == ' ' || c == '\0');
    (!value.is_empty()).then(|| value.to_string())
}

/// An Integer String value as a count or ordinal; None when absent, empty,
/// negative or not a number (a modality's slip must not refuse the instance).
fn number(obj: &InMemDicomObject, tag: Tag) -> Option<u32> {
    text(obj, tag)?.trim_start_matches('+').parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use dicom_core::{DataElement, PrimitiveValue, VR};

    fn encoded(ts: &str, with_study: bool) -> Vec<u8> {
        let mut elements = vec![
            DataElement::new(
                tags::SOP_CLASS_UID,
                VR::UI,
                PrimitiveValue::from(uids::CT_IMAGE_STORAGE),
            ),
            DataElement::new(tags::SOP_INSTANCE_UID, VR::UI, PrimitiveValue::from("1.2.3.4")),
            DataElement::new(tags::STUDY_DATE, VR::DA, PrimitiveValue::from("20260101")),
            DataElement::new(tags::MODALITY, VR::CS, PrimitiveValue::from("CT")),
            DataElement::new(tags::PATIENT_NAME, VR::PN, PrimitiveValue::from("Doe^Jane")),
            DataElement::new(tags::PATIENT_ID, VR::LO, PrimitiveValue::from("P1")),
            DataElement::new(tags::SERIES_INSTANCE_UID, VR::UI, PrimitiveValue::from("1.2.3.2")),
            DataElement::new(tags::NUMBER_OF_FRAMES, VR::IS, PrimitiveValue::from("3 ")),
            DataElement::new(tags::STUDY_TIME, VR::TM, PrimitiveValue::from("101530.5 ")),
            DataElement::new(tags::STUDY_DESCRIPTION, VR::LO, PrimitiveValue::from("CT CHEST ")),
            DataElement::new(tags::SERIES_NUMBER, VR::IS, PrimitiveValue::from(" +7 ")),
            // Not a number: read as absent, not an error.
            DataElement::new(tags::INSTANCE_NUMBER, VR::IS, PrimitiveValue::from("x1")),
            DataElement::new(tags::PIXEL_DATA, VR::OB, PrimitiveValue::from(vec![0u8; 16])),
        ];
        if with_study {
            elements.push(DataElement::new(
                tags::STUDY_INSTANCE_UID,
                VR::UI,
                PrimitiveValue::from("1.2.3"),
            ));
        }
        let obj = InMemDicomObject::from_element_iter(elements);
        let mut out = Vec::new();
        obj.write_dataset_with_ts(&mut out, TransferSyntaxRegistry.get(ts).unwrap())
            .unwrap();
        out
    }

    #[test]
    fn reads_metadata_in_both_uncompressed_syntaxes() {
        for ts in [uids::IMPLICIT_VR_LITTLE_ENDIAN, uids::EXPLICIT_VR_LITTLE_ENDIAN] {
            let m = read_metadata(&encoded(ts, true), &format!("{ts}\0")).unwrap();
            assert_eq!(m.sop_instance_uid, "1.2.3.4");
            assert_eq!(m.study_instance_uid, "1.2.3");
            assert_eq!(m.series_instance_uid, "1.2.3.2");
            assert_eq!(m.patient_name.as_deref(), Some("Doe^Jane"));
            assert_eq!(m.modality.as_deref(), Some("CT"));
            assert_eq!(m.number_of_frames, Some(3));
            assert_eq!(m.study_time.as_deref(), Some("101530.5"));
            assert_eq!(m.study_description.as_deref(), Some("CT CHEST"));
            assert_eq!(m.series_number, Some(7));
            assert_eq!(m.instance_number, None);
            assert_eq!(m.timezone_offset, None);
            assert_eq!(m.accession_number, None);
            assert_eq!(m.transfer_syntax_uid, ts);
        }
    }

    #[test]
    fn missing_uid_and_truncation_are_errors() {
        let ts = uids::EXPLICIT_VR_LITTLE_ENDIAN;
        assert!(matches!(
            read_metadata(&encoded(ts, false), ts),
            Err(DatasetError::Missing(_))
        ));
        let full = encoded(ts, true);
        for cut in [1, 7, 9, 30] {
            assert!(read_metadata(&full[..cut], ts).is_err(), "cut at {cut}");
        }
        assert!(read_metadata(b"", ts).is_err());
        // A declared length far past the end is refused before the parser would allocate it.
        let mut huge = vec![0x40, 0x00, 0x60, 0xA1, b'U', b'T', 0, 0, 0xF0, 0xFF, 0xFF, 0xFF];
        huge.extend_from_slice(b"abcd");
        let err = read_metadata(&huge, ts).unwrap_err();
        assert!(err.to_string().contains("declares 4294967280 bytes"), "{err}");
        assert!(read_metadata(&full, "1.2.3.4.5.6").is_err());
    }
}
