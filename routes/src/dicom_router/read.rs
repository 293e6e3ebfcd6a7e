//! Reading one DICOM ingress delivery: the envelope, the message record and
//! the mapped event (or why it does not map), before anything is written.

use std::collections::BTreeMap;

use medbus_adapters::dicom::canonical::{self, MapOptions};
use medbus_adapters::dicom::ingest::raw_header;
use medbus_bus::backbone::Delivery;
use medbus_bus::canonical::{CanonicalEvent, DateTime};
use medbus_bus::envelope::{Body, Envelope};
use medbus_bus::store::{MessageStatus, NewMessage};

/// A delivery read and mapped.
pub(crate) struct Ready {
    pub env: Envelope,
    pub record: NewMessage,
    /// The `imaging.instance-stored` event, or why there is none (dead-letter).
    pub event: Result<CanonicalEvent, String>,
    /// The patient's key, else the Study Instance UID: what keeps order.
    pub lane: Option<String>,
}

/// Reads a delivery; an error (not an ingress envelope at all) is a reason to
/// dead-letter before anything is recorded.
pub(crate) fn prepare(d: &Delivery, authorities: &BTreeMap<String, String>) -> Result<Ready, String> {
    let env = Envelope::from_wire(&d.headers, d.payload.clone()).map_err(|e| format!("not a medbus envelope: {e}"))?;
    let Body::Raw { headers, bytes } = &env.body else {
        return Err("ingress envelope without a raw body".into());
    };
    let channel = env.source.channel.as_str();
    let metadata = canonical::read_metadata(bytes);
    let options = MapOptions {
        patient_id_authority: authorities.get(channel).map(String::as_str),
        received: DateTime::parse(&env.received_at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)).ok(),
    };
    let event = metadata
        .as_ref()
        .map_err(Clone::clone)
        .and_then(|m| {
            let stored = canonical::stored_instance(channel, headers, m)?;
            canonical::instance_stored(m, stored, &options)
        })
        .map(CanonicalEvent::ImagingInstanceStored)
        .map_err(|e| format!("instance does not map: {e}"));
    let study_uid = metadata
        .as_ref()
        .ok()
        .map(|m| m.study_instance_uid.clone())
        .or_else(|| headers.get(raw_header::STUDY_INSTANCE_UID).cloned());
    let lane = event
        .as_ref()
        .ok()
        .and_then(CanonicalEvent::patient_key)
        .or_else(|| study_uid.clone());
    let record = NewMessage {
        id: env.id,
        correlation_id: env.correlation_id,
        channel: channel.to_string(),
        protocol: env.source.protocol.clone(),
        // One record per SOP instance and channel: a late resend is not routed twice.
        control_id: metadata
            .as_ref()
            .ok()
            .map(|m| m.sop_instance_uid.clone())
            .or_else(|| headers.get(raw_header::SOP_INSTANCE_UID).cloned())
            .filter(|uid| !uid.is_empty()),
        message_type: Some(canonical::C_STORE.to_string()),
        patient_id: metadata.as_ref().ok().and_then(|m| m.patient_id.clone()),
        peer: env.source.peer.clone(),
        raw: bytes.clone(),
        headers: headers.clone(),
        received_at: env.received_at,
        status: MessageStatus::Received,
        error: None,
    };
    Ok(Ready {
        env,
        record,
        event,
        lane,
    })
}
