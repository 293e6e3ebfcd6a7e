//! The production sink: each instance is written to file storage, then its
//! metadata is published to the backbone, and only then is the C-STORE
//! answered with success.
//!
//! - File: `<root>/<Study UID>/<Series UID>/<SOP Instance UID>.dcm`, the
//!   Part-10 file with the data set exactly as received, written atomically
//!   (see `storage`). UIDs that are not plain UIDs are refused (0xC000).
//! - Backbone: an ingress envelope on `medbus.ingress.dicom.<channel>`, kind
//!   `dicom.instance`, dedupe id `dicom:<channel>:<SOP Instance UID>`. Its body is
//!   raw (as every ingress body): the [`InstanceMetadata`](super::InstanceMetadata)
//!   as JSON, with raw headers (`Medbus-Raw-<name>`, see [`raw_header`]) naming
//!   the content type, the file (relative to the root), its size, the
//!   instance's UIDs and the AE titles. The data set itself stays in the file:
//!   instances run to hundreds of megabytes, the backbone carries references.
//!
//! A resend of the same SOP instance rewrites the file with the same bytes and
//! is kept once on the backbone (the dedupe id). A file written whose publish
//! then failed is left in place: the sender is told to retry (0xA700), and the
//! retry rewrites it and publishes.

use medbus_bus::backbone::keep::keep_durably;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use medbus_bus::backbone::{BackboneError, SharedBackbone};
use medbus_bus::envelope::{Envelope, Source};
use medbus_bus::subjects::Subject;

use super::instance::{InstanceSink, ReceivedInstance, SinkError};
use super::storage;

/// Envelope kind of a received instance.
pub const KIND: &str = "dicom.instance";

/// Raw-header names carried with each instance (as `Medbus-Raw-<name>`).
pub mod raw_header {
    /// `application/json`: the body is the instance metadata.
    pub const CONTENT_TYPE: &str = "Content-Type";
    /// The Part-10 file, relative to the storage root (`<study>/<series>/<sop>.dcm`).
    pub const FILE: &str = "File";
    /// Its size in bytes.
    pub const FILE_BYTES: &str = "File-Bytes";
    /// SOP Instance UID.
    pub const SOP_INSTANCE_UID: &str = "Sop-Instance-Uid";
    /// SOP Class UID.
    pub const SOP_CLASS_UID: &str = "Sop-Class-Uid";
    /// Study Instance UID.
    pub const STUDY_INSTANCE_UID: &str = "Study-Instance-Uid";
    /// Transfer syntax of the data set as received and stored.
    pub const TRANSFER_SYNTAX: &str = "Transfer-Syntax";
    /// Calling AE title of the association.
    pub const CALLING_AE: &str = "Calling-Ae";
    /// Called AE title (ours).
    pub const CALLED_AE: &str = "Called-Ae";
}

/// Why the sink could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum IngestSetupError {
    /// The channel name is not a subject token.
    #[error("dicom channel {0}: not a usable channel name")]
    BadChannel(String),
}

/// Writes each instance under a storage root, then publishes it to the backbone.
pub struct FileAndBackboneSink {
    root: PathBuf,
    channel: String,
    subject: String,
    backbone: SharedBackbone,
}

impl FileAndBackboneSink {
    /// A sink for `channel` (a subject token) storing under `root`.
    pub fn new(root: impl Into<PathBuf>, channel: &str, backbone: SharedBackbone) -> Result<Self, IngestSetupError> {
        let subject = Subject::ingress("dicom", channel)
            .map_err(|_| IngestSetupError::BadChannel(channel.to_string()))?
            .to_string();
        Ok(FileAndBackboneSink {
            root: root.into(),
            channel: channel.to_string(),
            subject,
            backbone,
        })
    }

    /// The storage root.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The subject instances are published on.
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// Publishes and waits for the durable ack (see [`keep_durably`]).
    async fn publish(&self, envelope: &Envelope, dedupe_id: String) -> Result<(), BackboneError> {
        keep_durably(self.backbone.as_ref(), &self.subject, envelope, dedupe_id).await
    }
}

#[async_trait::async_trait]
impl InstanceSink for FileAndBackboneSink {
    async fn store(&self, instance: ReceivedInstance) -> Result<(), SinkError> {
        let m = &instance.metadata;
        let path = storage::instance_path(
            &self.root,
            &m.study_instance_uid,
            &m.series_instance_uid,
            &m.sop_instance_uid,
        )
        .map_err(|e| SinkError::Rejected(e.to_string()))?;
        let relative = format!(
            "{}/{}/{}.dcm",
            m.study_instance_uid, m.series_instance_uid, m.sop_instance_uid
        );
        let header = instance
            .part10_header()
            .map_err(|e| SinkError::Rejected(e.to_string()))?;
        let file_bytes = header.len() + instance.dataset.len();
        let write_path = path.clone();
        // The data set is written as received, after the header: no copy of it into a file buffer.
        let dataset = instance.dataset.clone();
        // Disk writes and fsyncs block: off the async workers.
        tokio::task::spawn_blocking(move || storage::write_atomically(&write_path, &[&header, &dataset]))
            .await
            .map_err(|e| SinkError::Unavailable(format!("file write task failed: {e}")))?
            .map_err(|e| {
                tracing::error!(channel = %self.channel, path = %path.display(), error = %e, "dicom instance not written");
                SinkError::Unavailable(format!("storage: {}", e.kind()))
            })?;

        let body = serde_json::to_vec(m).map_err(|e| SinkError::Unavailable(format!("metadata: {e}")))?;
        let mut headers = BTreeMap::new();
        headers.insert(raw_header::CONTENT_TYPE.to_string(), "application/json".to_string());
        headers.insert(raw_header::FILE.to_string(), relative);
        headers.insert(raw_header::FILE_BYTES.to_string(), file_bytes.to_string());
        headers.insert(raw_header::SOP_INSTANCE_UID.to_string(), m.sop_instance_uid.clone());
        headers.insert(raw_header::SOP_CLASS_UID.to_string(), m.sop_class_uid.clone());
        headers.insert(raw_header::STUDY_INSTANCE_UID.to_string(), m.study_instance_uid.clone());
        headers.insert(raw_header::TRANSFER_SYNTAX.to_string(), m.transfer_syntax_uid.clone());
        headers.insert(
            raw_header::CALLING_AE.to_string(),
            instance.calling_ae.trim().to_string(),
        );
        headers.insert(raw_header::CALLED_AE.to_string(), instance.called_ae.trim().to_string());
        let source = Source {
            channel: self.channel.clone(),
            protocol: "dicom".into(),
            peer: Some(instance.peer.to_string()),
        };
        let envelope = Envelope::ingress(source, KIND, headers, Bytes::from(body));
        let dedupe_id = format!("dicom:{}:{}", self.channel, m.sop_instance_uid);
        self.publish(&envelope, dedupe_id).await.map_err(|e| {
            tracing::error!(channel = %self.channel, correlation_id = %envelope.id, error = %e, "dicom instance not kept on the backbone");
            // The detail is logged; the peer learns only that it may retry (no internal hosts).
            SinkError::Unavailable("the backbone did not acknowledge the instance; send it again later".into())
        })?;
        tracing::debug!(channel = %self.channel, correlation_id = %envelope.id, file_bytes, "dicom instance kept");
        Ok(())
    }
}
