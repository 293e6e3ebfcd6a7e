//! The settings of one storage SCP.

use std::time::Duration;

use super::sop_classes;

/// Smallest maximum PDU length the SCP offers (the standard's floor for useful PDUs).
pub const MIN_PDU_LENGTH: u32 = 4 * 1024;
/// Largest maximum PDU length the SCP offers: bounds the memory one PDU can take.
pub const MAX_PDU_LENGTH: u32 = 4 * 1024 * 1024;

/// The settings of one storage SCP. A plain struct: the config layer maps its own
/// (serde) settings onto this.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScpOptions {
    /// Our AE title; an association calling another title is rejected. Default `MEDBUS`.
    pub ae_title: String,
    /// Calling AE titles allowed to associate; empty allows any.
    pub allowed_calling_aes: Vec<String>,
    /// Largest PDU we accept (announced in the A-ASSOCIATE-AC), clamped to
    /// [`MIN_PDU_LENGTH`]..=[`MAX_PDU_LENGTH`]. Default 64 KiB.
    pub max_pdu_length: u32,
    /// Largest data set one C-STORE may carry; a bigger one is read to its end,
    /// discarded and answered with "out of resources". Default 512 MiB.
    pub max_dataset_bytes: usize,
    /// Memory all associations together may hold in data sets being received;
    /// a data set that would go over is read, discarded and answered "out of
    /// resources" (the sender retries later). Default 2 GiB.
    pub max_buffered_bytes: usize,
    /// Associations served at once; one more is rejected (transient, local limit exceeded).
    pub max_associations: usize,
    /// Longest a whole association may last, from accept to release. Default 1 hour.
    pub association_timeout: Duration,
    /// Longest wait for the next PDU (also bounds the A-ASSOCIATE-RQ). Default 60 s.
    pub idle_timeout: Duration,
    /// Storage SOP classes accepted (Verification is always accepted too).
    pub abstract_syntaxes: Vec<String>,
    /// Transfer syntaxes accepted, kept as received.
    pub transfer_syntaxes: Vec<String>,
}

impl Default for ScpOptions {
    fn default() -> Self {
        ScpOptions {
            ae_title: "MEDBUS".into(),
            allowed_calling_aes: Vec::new(),
            max_pdu_length: 64 * 1024,
            max_dataset_bytes: 512 * 1024 * 1024,
            max_buffered_bytes: 2 * 1024 * 1024 * 1024,
            max_associations: 32,
            association_timeout: Duration::from_secs(3600),
            idle_timeout: Duration::from_secs(60),
            abstract_syntaxes: sop_classes::STORAGE_SOP_CLASSES.iter().map(|s| s.to_string()).collect(),
            transfer_syntaxes: sop_classes::TRANSFER_SYNTAXES.iter().map(|s| s.to_string()).collect(),
        }
    }
}

impl ScpOptions {
    /// The maximum PDU length actually offered (clamped).
    pub fn effective_max_pdu_length(&self) -> u32 {
        self.max_pdu_length.clamp(MIN_PDU_LENGTH, MAX_PDU_LENGTH)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pdu_length_is_bounded() {
        let mut o = ScpOptions {
            max_pdu_length: 1,
            ..Default::default()
        };
        assert_eq!(o.effective_max_pdu_length(), MIN_PDU_LENGTH);
        o.max_pdu_length = u32::MAX;
        assert_eq!(o.effective_max_pdu_length(), MAX_PDU_LENGTH);
    }
}
