//! What the SCP hands on for each received instance, and the trait of whoever
//! keeps it. The SCP answers a C-STORE only after [`InstanceSink::store`]
//! returned: success means the instance is kept.

use std::net::SocketAddr;

use bytes::Bytes;
use serde::{Deserialize, Serialize};

use super::dimse::status;
use super::part10::{self, Part10Error};

/// The metadata of one instance, read from its data set (text values trimmed of padding).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceMetadata {
    /// Patient ID (0010,0020).
    pub patient_id: Option<String>,
    /// Patient's Name (0010,0010), as encoded (`Family^Given`).
    pub patient_name: Option<String>,
    /// Study Instance UID (0020,000D).
    pub study_instance_uid: String,
    /// Series Instance UID (0020,000E).
    pub series_instance_uid: String,
    /// SOP Instance UID (0008,0018).
    pub sop_instance_uid: String,
    /// SOP Class UID (0008,0016).
    pub sop_class_uid: String,
    /// Modality (0008,0060).
    pub modality: Option<String>,
    /// Accession Number (0008,0050).
    pub accession_number: Option<String>,
    /// Study Date (0008,0020), `YYYYMMDD` as sent.
    pub study_date: Option<String>,
    /// Study Time (0008,0030), `HHMMSS.FFFFFF` (or a prefix of it) as sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub study_time: Option<String>,
    /// Timezone Offset From UTC (0008,0201), `+HHMM` / `-HHMM` as sent: the
    /// zone of Study Date and Time, when the modality says it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timezone_offset: Option<String>,
    /// Study Description (0008,1030).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub study_description: Option<String>,
    /// Series Number (0020,0011), when present and a non-negative integer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub series_number: Option<u32>,
    /// Instance Number (0020,0013), when present and a non-negative integer.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub instance_number: Option<u32>,
    /// Body Part Examined (0018,0015).
    pub body_part_examined: Option<String>,
    /// Number of Frames (0028,0008), when present and numeric.
    pub number_of_frames: Option<u32>,
    /// The transfer syntax the data set was received in.
    pub transfer_syntax_uid: String,
}

/// One instance received by C-STORE, before it is answered.
#[derive(Debug, Clone)]
pub struct ReceivedInstance {
    /// The calling AE title of the association.
    pub calling_ae: String,
    /// The called AE title (ours).
    pub called_ae: String,
    /// The peer's address.
    pub peer: SocketAddr,
    /// Metadata read from the data set.
    pub metadata: InstanceMetadata,
    /// The data set bytes exactly as received (no file meta group).
    pub dataset: Bytes,
    /// The transfer syntax they are encoded in (unpadded).
    pub transfer_syntax: String,
}

impl ReceivedInstance {
    /// The start of its Part-10 file (preamble, `DICM`, file meta group); the
    /// data set as received follows it.
    pub fn part10_header(&self) -> Result<Vec<u8>, Part10Error> {
        part10::header_bytes(
            &self.metadata.sop_class_uid,
            &self.metadata.sop_instance_uid,
            &self.transfer_syntax,
            &self.calling_ae,
        )
    }

    /// The DICOM Part-10 file: preamble, `DICM`, file meta group, then the data set as received.
    pub fn to_part10(&self) -> Result<Vec<u8>, Part10Error> {
        part10::file_bytes(
            &self.metadata.sop_class_uid,
            &self.metadata.sop_instance_uid,
            &self.transfer_syntax,
            &self.calling_ae,
            &self.dataset,
        )
    }
}

/// Why a sink did not keep an instance; the SCP answers with a failure status
/// and the reason as Error Comment.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SinkError {
    /// The instance cannot be kept as it is (an unusable UID, say): the sender
    /// must fix it. Answered 0xC000 "cannot understand".
    #[error("{0}")]
    Rejected(String),
    /// Storage or backbone trouble: the sender should retry later. Answered
    /// 0xA700 "out of resources".
    #[error("{0}")]
    Unavailable(String),
}

impl SinkError {
    /// The C-STORE status this error is answered with.
    pub fn status(&self) -> u16 {
        match self {
            SinkError::Rejected(_) => status::CANNOT_UNDERSTAND,
            SinkError::Unavailable(_) => status::OUT_OF_RESOURCES,
        }
    }
}

/// Keeps received instances. Called once per C-STORE, before the response:
/// Ok answers success (0x0000), Err a failure status with the reason.
#[async_trait::async_trait]
pub trait InstanceSink: Send + Sync + 'static {
    /// Keeps `instance` durably, or says why not.
    async fn store(&self, instance: ReceivedInstance) -> Result<(), SinkError>;
}
