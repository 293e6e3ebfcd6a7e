//! The DIMSE messages an SCU sends, built by hand because dicom-ul stops at P-DATA: the
//! C-STORE-RQ and C-ECHO-RQ command sets, the reading of their responses, and what a
//! C-STORE status means. Command sets are always Implicit VR Little Endian (PS3.7 6.3.1),
//! whatever the data set's syntax. (The SCP side, requests read and responses written,
//! is [`crate::dicom::dimse`].)

use dicom_core::{DataElement, PrimitiveValue, VR};
use dicom_dictionary_std::{tags, uids};
use dicom_object::InMemDicomObject;
use dicom_transfer_syntax_registry::entries::IMPLICIT_VR_LITTLE_ENDIAN;

pub use crate::dicom::dimse::command_field::{C_ECHO_RQ, C_ECHO_RSP, C_STORE_RQ, C_STORE_RSP};
use crate::dicom::dimse::NO_DATA_SET;

/// Command Data Set Type for "a data set follows" (any other value would do; 0 is customary).
const DATA_SET_FOLLOWS: u16 = 0x0000;
/// Priority (0000,0700) MEDIUM.
const MEDIUM: u16 = 0x0000;

fn encode(elements: Vec<DataElement<InMemDicomObject>>) -> Vec<u8> {
    let command = InMemDicomObject::command_from_element_iter(elements);
    let mut out = Vec::with_capacity(160);
    // Writing a handful of well-formed elements into a Vec cannot fail: no I/O, every value
    // has its dictionary VR. An error would be a bug in this file, found by any test.
    if let Err(e) = command.write_dataset_with_ts(&mut out, &IMPLICIT_VR_LITTLE_ENDIAN.erased()) {
        unreachable!("encoding a command set: {e}");
    }
    out
}

fn us(tag: dicom_core::Tag, v: u16) -> DataElement<InMemDicomObject> {
    DataElement::new(tag, VR::US, PrimitiveValue::from(v))
}

fn ui(tag: dicom_core::Tag, v: &str) -> DataElement<InMemDicomObject> {
    DataElement::new(tag, VR::UI, PrimitiveValue::from(v))
}

/// A C-STORE-RQ command set for one instance.
pub fn c_store_rq(message_id: u16, sop_class_uid: &str, sop_instance_uid: &str) -> Vec<u8> {
    encode(vec![
        ui(tags::AFFECTED_SOP_CLASS_UID, sop_class_uid),
        us(tags::COMMAND_FIELD, C_STORE_RQ),
        us(tags::MESSAGE_ID, message_id),
        us(tags::PRIORITY, MEDIUM),
        us(tags::COMMAND_DATA_SET_TYPE, DATA_SET_FOLLOWS),
        ui(tags::AFFECTED_SOP_INSTANCE_UID, sop_instance_uid),
    ])
}

/// A C-ECHO-RQ command set.
pub fn c_echo_rq(message_id: u16) -> Vec<u8> {
    encode(vec![
        ui(tags::AFFECTED_SOP_CLASS_UID, uids::VERIFICATION),
        us(tags::COMMAND_FIELD, C_ECHO_RQ),
        us(tags::MESSAGE_ID, message_id),
        us(tags::COMMAND_DATA_SET_TYPE, NO_DATA_SET),
    ])
}

/// What a response command set said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// Command Field.
    pub command_field: u16,
    /// Message ID Being Responded To.
    pub responding_to: u16,
    /// Status (0000,0900).
    pub status: u16,
    /// Error Comment (0000,0902), when the peer gave one.
    pub error_comment: Option<String>,
}

impl Response {
    /// Reads a response command set; an error names what is missing or malformed.
    pub fn parse(bytes: &[u8]) -> Result<Response, String> {
        let obj = InMemDicomObject::read_dataset_with_ts(bytes, &IMPLICIT_VR_LITTLE_ENDIAN.erased())
            .map_err(|e| format!("unreadable response command set: {e}"))?;
        let int = |tag, name: &str| -> Result<u16, String> {
            obj.element_opt(tag)
                .ok()
                .flatten()
                .ok_or_else(|| format!("response has no {name}"))?
                .to_int::<u16>()
                .map_err(|e| format!("response {name} is not a number: {e}"))
        };
        Ok(Response {
            command_field: int(tags::COMMAND_FIELD, "Command Field")?,
            responding_to: int(tags::MESSAGE_ID_BEING_RESPONDED_TO, "Message ID Being Responded To")?,
            status: int(tags::STATUS, "Status")?,
            error_comment: obj
                .element_opt(tags::ERROR_COMMENT)
                .ok()
                .flatten()
                .and_then(|e| e.to_str().ok())
                .map(|s| s.trim_end_matches(['\0', ' ']).to_string())
                .filter(|s| !s.is_empty()),
        })
    }
}

/// How a C-STORE status counts (PS3.4 B.2.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// 0x0000.
    Success,
    /// 0xB000, 0xB006, 0xB007, 0x0107, 0x0116 (coercion, elements discarded, data set mismatch,
    /// attribute list error, value out of range): stored.
    Warning,
    /// Anything else: refused, error, or failure.
    Failure,
}

/// The class of a C-STORE status.
pub fn outcome(status: u16) -> Outcome {
    match status {
        0x0000 => Outcome::Success,
        // Coercion, elements discarded, data set/SOP class mismatch; attribute list error and value
        // out of range (PS3.7 C.4.2): stored, with a remark.
        0xB000 | 0xB006 | 0xB007 | 0x0107 | 0x0116 => Outcome::Warning,
        _ => Outcome::Failure,
    }
}

/// The status with its standard meaning, e.g. `0xA700 (refused: out of resources)`.
pub fn describe(status: u16) -> String {
    let meaning = match status {
        0x0000 => "success",
        0xB000 => "warning: coercion of data elements",
        0xB006 => "warning: elements discarded",
        0xB007 => "warning: data set does not match SOP class",
        0x0117 => "invalid SOP instance",
        0x0122 => "refused: SOP class not supported",
        0x0124 => "refused: not authorized",
        0x0210 => "duplicate invocation",
        0x0211 => "unrecognized operation",
        0x0212 => "mistyped argument",
        0xFE00 => "cancel",
        s if s & 0xFF00 == 0xA700 => "refused: out of resources",
        s if s & 0xFF00 == 0xA900 => "error: data set does not match SOP class",
        s if s & 0xF000 == 0xC000 => "error: cannot understand",
        _ => "failure",
    };
    format!("0x{status:04X} ({meaning})")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_request_reads_back() {
        let bytes = c_store_rq(7, uids::CT_IMAGE_STORAGE, "2.25.1");
        let obj = InMemDicomObject::read_dataset_with_ts(&bytes[..], &IMPLICIT_VR_LITTLE_ENDIAN.erased()).unwrap();
        assert_eq!(obj.element(tags::COMMAND_FIELD).unwrap().to_int::<u16>().unwrap(), 1);
        assert_eq!(obj.element(tags::MESSAGE_ID).unwrap().to_int::<u16>().unwrap(), 7);
        // The group length counts every byte after itself (12 bytes: tag, length, value).
        let group = obj
            .element(tags::COMMAND_GROUP_LENGTH)
            .unwrap()
            .to_int::<u32>()
            .unwrap();
        assert_eq!(group as usize, bytes.len() - 12);
        // UIDs are padded with NUL to an even length.
        assert_eq!(bytes.len() % 2, 0);
    }

    #[test]
    fn responses_parse_and_garbage_does_not_panic() {
        let rsp = encode(vec![
            ui(tags::AFFECTED_SOP_CLASS_UID, uids::VERIFICATION),
            us(tags::COMMAND_FIELD, C_ECHO_RSP),
            us(tags::MESSAGE_ID_BEING_RESPONDED_TO, 3),
            us(tags::COMMAND_DATA_SET_TYPE, NO_DATA_SET),
            us(tags::STATUS, 0),
        ]);
        let r = Response::parse(&rsp).unwrap();
        assert_eq!((r.command_field, r.responding_to, r.status), (C_ECHO_RSP, 3, 0));
        assert!(Response::parse(&c_echo_rq(1)).unwrap_err().contains("Responded To"));
        for junk in [&b""[..], b"\x00\x00", b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff"] {
            let _ = Response::parse(junk);
        }
        assert_eq!(outcome(0xB000), Outcome::Warning);
        assert_eq!(outcome(0xA701), Outcome::Failure);
        assert_eq!(describe(0xA702), "0xA702 (refused: out of resources)");
    }
}
