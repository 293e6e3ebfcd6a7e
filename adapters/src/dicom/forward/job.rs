//! From a delivery to what is sent: the ingress envelope of a received
//! instance names its channel and its file (relative to the channel's storage
//! root); the file is read whole and split into meta information and data
//! set. The file, not the envelope, says the SOP class and transfer syntax:
//! it is what goes on the wire.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use medbus_bus::backbone::Delivery;
use medbus_bus::config::dicom_destinations::DicomDestinationConfig;
use medbus_bus::envelope::{Body, Envelope};

use super::session::Outbound;
use crate::dicom::ingest::{raw_header, KIND};
use crate::dicom::scu::file;

/// One instance ready to send.
pub(super) struct Job {
    /// The DICOM channel it came in on.
    pub channel: String,
    /// The file's bytes.
    file: Vec<u8>,
    /// Where the data set starts in `file`.
    dataset_at: usize,
    sop_class: String,
    sop_instance: String,
    transfer_syntax: String,
}

impl Job {
    /// The instance as the session sends it.
    pub(super) fn outbound(&self) -> Outbound<'_> {
        Outbound {
            sop_class: &self.sop_class,
            sop_instance: &self.sop_instance,
            transfer_syntax: &self.transfer_syntax,
            dataset: &self.file[self.dataset_at..],
        }
    }

    /// Bytes of the data set.
    pub(super) fn dataset_len(&self) -> usize {
        self.file.len() - self.dataset_at
    }
}

/// What a delivery is to this destination.
pub(super) enum Decoded {
    /// An instance to send.
    Send(Job),
    /// Not for this destination (another channel, another kind): acked and forgotten.
    Skip(&'static str),
    /// Cannot be sent, ever: dead-lettered with the reason.
    Bad(String),
}

/// Decodes `d` and reads its file under the root of its channel in `roots`.
pub(super) async fn decode(cfg: &DicomDestinationConfig, roots: &BTreeMap<String, PathBuf>, d: &Delivery) -> Decoded {
    let env = match Envelope::from_wire(&d.headers, d.payload.clone()) {
        Ok(e) => e,
        Err(e) => return Decoded::Bad(format!("not a medbus envelope: {e}")),
    };
    if env.kind != KIND {
        return Decoded::Skip("not a received DICOM instance");
    }
    let channel = env.source.channel;
    if !cfg.wants(&channel) {
        return Decoded::Skip("channel not selected by channels");
    }
    let Body::Raw { headers, .. } = env.body else {
        return Decoded::Bad("a dicom.instance envelope without raw headers".into());
    };
    let Some(relative) = headers.get(raw_header::FILE) else {
        return Decoded::Bad(format!(
            "no {} header: the instance's file is not named",
            raw_header::FILE
        ));
    };
    let Some(root) = roots.get(&channel) else {
        return Decoded::Bad(format!(
            "no storage directory is known for DICOM channel {channel:?} (is [dicom.{channel}] still configured?)"
        ));
    };
    let Some(path) = inside(root, relative) else {
        return Decoded::Bad(format!("file name {relative:?} is not a path under the storage root"));
    };
    let read_path = path.clone();
    let bytes = match tokio::task::spawn_blocking(move || std::fs::read(read_path)).await {
        Ok(Ok(b)) => b,
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => {
            return Decoded::Bad(format!(
                "file {} of channel {channel:?} is missing (deleted or moved since it was received)",
                path.display()
            ))
        }
        Ok(Err(e)) => return Decoded::Bad(format!("file {} cannot be read: {e}", path.display())),
        Err(e) => return Decoded::Bad(format!("file read task failed: {e}")),
    };
    let parsed = match file::read(&bytes) {
        Ok(p) => p,
        Err(e) => return Decoded::Bad(format!("file {}: {e}", path.display())),
    };
    let (sop_class, sop_instance, transfer_syntax) = (
        parsed.sop_class_uid,
        parsed.sop_instance_uid,
        parsed.transfer_syntax_uid,
    );
    let dataset_at = bytes.len() - parsed.dataset.len();
    Decoded::Send(Job {
        channel,
        file: bytes,
        dataset_at,
        sop_class,
        sop_instance,
        transfer_syntax,
    })
}

/// `relative` joined to `root`, when it is a plain relative path (no `..`, not
/// absolute): a header names a file, it never walks out of the storage root.
fn inside(root: &Path, relative: &str) -> Option<PathBuf> {
    let rel = Path::new(relative);
    let plain = !relative.is_empty() && rel.components().all(|c| matches!(c, Component::Normal(_)));
    plain.then(|| root.join(rel))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_stay_under_the_root() {
        let root = Path::new("/data/dicom/ct");
        assert_eq!(
            inside(root, "1.2/1.2.3/1.2.3.4.dcm"),
            Some(PathBuf::from("/data/dicom/ct/1.2/1.2.3/1.2.3.4.dcm"))
        );
        for bad in ["", "/etc/passwd", "../x.dcm", "1.2/../../x", "./x"] {
            assert_eq!(inside(root, bad), None, "{bad:?}");
        }
    }
}
