//! DIMSE command sets, by hand (dicom-rs has no DIMSE layer): the C-ECHO and
//! C-STORE requests read, their responses written. Command sets are always
//! Implicit VR Little Endian, whatever the presentation context says.

use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_encoding::TransferSyntaxIndex;
use dicom_object::InMemDicomObject;
use dicom_transfer_syntax_registry::TransferSyntaxRegistry;

use super::element_lengths;
use super::sop_classes::trim_uid;

/// Command Field (0000,0100) values.
pub mod command_field {
    /// C-STORE-RQ.
    pub const C_STORE_RQ: u16 = 0x0001;
    /// C-STORE-RSP.
    pub const C_STORE_RSP: u16 = 0x8001;
    /// C-ECHO-RQ.
    pub const C_ECHO_RQ: u16 = 0x0030;
    /// C-ECHO-RSP.
    pub const C_ECHO_RSP: u16 = 0x8030;
}

/// Status (0000,0900) values the SCP answers with (PS3.4 B.2.3, PS3.7 C).
pub mod status {
    /// Success.
    pub const SUCCESS: u16 = 0x0000;
    /// Refused: SOP class not supported.
    pub const SOP_CLASS_NOT_SUPPORTED: u16 = 0x0122;
    /// Unrecognized operation (a command this SCP does not serve).
    pub const UNRECOGNIZED_OPERATION: u16 = 0x0211;
    /// Refused: out of resources (storage or backbone trouble; worth a retry).
    pub const OUT_OF_RESOURCES: u16 = 0xA700;
    /// Error: data set does not match SOP class.
    pub const DATASET_DOES_NOT_MATCH_SOP_CLASS: u16 = 0xA900;
    /// Error: cannot understand (a malformed or incomplete data set).
    pub const CANNOT_UNDERSTAND: u16 = 0xC000;
}

/// Command Data Set Type (0000,0800) meaning "no data set follows".
pub const NO_DATA_SET: u16 = 0x0101;

/// Longest Error Comment (0000,0902): its VR is LO.
const ERROR_COMMENT_MAX: usize = 64;

/// The fields of a request command set the SCP uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Command {
    /// Command Field (0000,0100).
    pub field: u16,
    /// Message ID (0000,0110).
    pub message_id: u16,
    /// Affected SOP Class UID (0000,0002), unpadded.
    pub affected_sop_class_uid: Option<String>,
    /// Affected SOP Instance UID (0000,1000), unpadded.
    pub affected_sop_instance_uid: Option<String>,
    /// Whether a data set follows (Command Data Set Type ≠ 0x0101).
    pub has_data_set: bool,
}

/// Why a command set could not be read.
#[derive(Debug, thiserror::Error)]
pub enum DimseError {
    /// Not a readable Implicit VR Little Endian data set.
    #[error("command set unreadable: {0}")]
    Unreadable(String),
    /// A required element is absent or of the wrong kind.
    #[error("command set lacks a usable {0}")]
    Missing(&'static str),
    /// Encoding a response failed (a bug).
    #[error("response not encoded: {0}")]
    Encode(String),
}

fn implicit_le() -> Result<&'static dicom_encoding::TransferSyntax, DimseError> {
    TransferSyntaxRegistry
        .get(uids::IMPLICIT_VR_LITTLE_ENDIAN)
        .ok_or(DimseError::Encode(
            "no Implicit VR Little Endian in the registry".into(),
        ))
}

/// Reads a request command set from the reassembled command fragments.
pub fn read_command(bytes: &[u8]) -> Result<Command, DimseError> {
    // The parser allocates declared lengths before reading: bound them by what came in.
    element_lengths::check_command(bytes).map_err(DimseError::Unreadable)?;
    let obj = InMemDicomObject::read_dataset_with_ts(bytes, implicit_le()?)
        .map_err(|e| DimseError::Unreadable(e.to_string()))?;
    let uint = |tag, name| {
        obj.element_opt(tag)
            .ok()
            .flatten()
            .and_then(|e| e.to_int::<u16>().ok())
            .ok_or(DimseError::Missing(name))
    };
    let text = |tag| {
        obj.element_opt(tag)
            .ok()
            .flatten()
            .and_then(|e| e.to_str().ok())
            .map(|s| trim_uid(s.trim_start()).to_string())
            .filter(|s| !s.is_empty())
    };
    Ok(Command {
        field: uint(tags::COMMAND_FIELD, "Command Field")?,
        message_id: uint(tags::MESSAGE_ID, "Message ID")?,
        affected_sop_class_uid: text(tags::AFFECTED_SOP_CLASS_UID),
        affected_sop_instance_uid: text(tags::AFFECTED_SOP_INSTANCE_UID),
        has_data_set: uint(tags::COMMAND_DATA_SET_TYPE, "Command Data Set Type")? != NO_DATA_SET,
    })
}

/// A response to `request`: the matching response field, Message ID Being
/// Responded To, the affected UIDs echoed, the status, and the Error Comment
/// (cut to 64 characters) when given.
pub fn response(request: &Command, status: u16, error_comment: Option<&str>) -> Result<Vec<u8>, DimseError> {
    let mut elements = vec![
        DataElement::new(
            tags::COMMAND_FIELD,
            VR::US,
            PrimitiveValue::from(request.field | 0x8000),
        ),
        DataElement::new(
            tags::MESSAGE_ID_BEING_RESPONDED_TO,
            VR::US,
            PrimitiveValue::from(request.message_id),
        ),
        DataElement::new(tags::COMMAND_DATA_SET_TYPE, VR::US, PrimitiveValue::from(NO_DATA_SET)),
        DataElement::new(tags::STATUS, VR::US, PrimitiveValue::from(status)),
    ];
    if let Some(uid) = &request.affected_sop_class_uid {
        elements.push(DataElement::new(
            tags::AFFECTED_SOP_CLASS_UID,
            VR::UI,
            padded(uid, '\0'),
        ));
    }
    if let Some(uid) = &request.affected_sop_instance_uid {
        elements.push(DataElement::new(
            tags::AFFECTED_SOP_INSTANCE_UID,
            VR::UI,
            padded(uid, '\0'),
        ));
    }
    if let Some(comment) = error_comment {
        elements.push(DataElement::new(tags::ERROR_COMMENT, VR::LO, padded(&lo(comment), ' ')));
    }
    let obj = InMemDicomObject::command_from_element_iter(elements);
    let mut out = Vec::with_capacity(256);
    obj.write_dataset_with_ts(&mut out, implicit_le()?)
        .map_err(|e| DimseError::Encode(e.to_string()))?;
    Ok(out)
}

/// An even-length value: DICOM pads UIs with NUL and text with a space.
fn padded(value: &str, pad: char) -> PrimitiveValue {
    let mut s = value.to_string();
    if s.len() % 2 == 1 {
        s.push(pad);
    }
    PrimitiveValue::from(s)
}

/// A valid LO: no backslash (the value separator) or control characters, at most 64 characters.
fn lo(text: &str) -> String {
    text.chars()
        .map(|c| if c == '\\' || c.is_control() { ' ' } else { c })
        .take(ERROR_COMMENT_MAX)
        .collect::<String>()
        .trim_end()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store_rq() -> Command {
        Command {
            field: command_field::C_STORE_RQ,
            message_id: 7,
            affected_sop_class_uid: Some(uids::CT_IMAGE_STORAGE.into()),
            affected_sop_instance_uid: Some("1.2.3.4.5".into()),
            has_data_set: true,
        }
    }

    #[test]
    fn a_response_reads_back_with_the_request_fields() {
        let bytes = response(&store_rq(), status::CANNOT_UNDERSTAND, Some("bad\\data set")).unwrap();
        let back = read_command(&bytes);
        // A response has no Message ID, so it is not a readable request.
        assert!(matches!(back, Err(DimseError::Missing("Message ID"))));
        let obj = InMemDicomObject::read_dataset_with_ts(&bytes[..], implicit_le().unwrap()).unwrap();
        let get = |t| obj.element(t).unwrap().to_str().unwrap().into_owned();
        assert_eq!(get(tags::COMMAND_FIELD), "32769");
        assert_eq!(get(tags::MESSAGE_ID_BEING_RESPONDED_TO), "7");
        assert_eq!(get(tags::STATUS), "49152");
        assert_eq!(get(tags::ERROR_COMMENT), "bad data set");
        assert_eq!(get(tags::AFFECTED_SOP_INSTANCE_UID), "1.2.3.4.5");
        // Command Group Length is present and matches what follows it (12 bytes of its own element).
        let group = obj
            .element(tags::COMMAND_GROUP_LENGTH)
            .unwrap()
            .to_int::<u32>()
            .unwrap();
        assert_eq!(group as usize, bytes.len() - 12);
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        for bytes in [
            &b""[..],
            b"\x00\x00\x00\x01\xff\xff\xff\xff",
            b"\x00\x00\x00\x01\x02\x00\x00\x00\x01",
            // Affected SOP Class UID declaring 2 GiB.
            b"\x00\x00\x02\x00\xf0\xff\xff\x7f1.2",
        ] {
            assert!(read_command(bytes).is_err());
        }
    }
}
