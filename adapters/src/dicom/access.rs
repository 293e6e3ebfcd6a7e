//! Which peers may associate: the called AE title must be ours, the calling AE
//! title must be on the allow-list (when there is one). A refusal is logged
//! here, where both titles and the reason are known; dicom-ul then answers
//! A-ASSOCIATE-RJ (permanent, with that reason).

use std::net::SocketAddr;
use std::sync::Arc;

use dicom_ul::association::server::AccessControl;
use dicom_ul::pdu::{AssociationRJServiceUserReason, UserIdentity};

/// The AE title checks of one incoming association.
#[derive(Debug, Clone)]
pub struct AeAccess {
    /// Our AE title.
    pub ae_title: Arc<str>,
    /// Allowed calling AE titles; empty allows any.
    pub allowed_calling_aes: Arc<[String]>,
    /// The peer, for the log line of a refusal.
    pub peer: SocketAddr,
}

impl AeAccess {
    /// The decision alone (no logging): Ok, or the A-ASSOCIATE-RJ reason.
    pub fn decide(&self, calling_ae: &str, called_ae: &str) -> Result<(), AssociationRJServiceUserReason> {
        if called_ae.trim() != self.ae_title.trim() {
            return Err(AssociationRJServiceUserReason::CalledAETitleNotRecognized);
        }
        let calling_ae = calling_ae.trim();
        if !self.allowed_calling_aes.is_empty() && !self.allowed_calling_aes.iter().any(|a| a.trim() == calling_ae) {
            return Err(AssociationRJServiceUserReason::CallingAETitleNotRecognized);
        }
        Ok(())
    }
}

impl AccessControl for AeAccess {
    fn check_access(
        &self,
        _this_ae_title: &str,
        calling_ae_title: &str,
        called_ae_title: &str,
        _user_identity: Option<&UserIdentity>,
    ) -> Result<(), AssociationRJServiceUserReason> {
        let decision = self.decide(calling_ae_title, called_ae_title);
        if let Err(reason) = &decision {
            tracing::warn!(
                peer = %self.peer,
                calling_ae = calling_ae_title.trim(),
                called_ae = called_ae_title.trim(),
                reason = %reason,
                "dicom association rejected"
            );
        }
        decision
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn access(allowed: &[&str]) -> AeAccess {
        AeAccess {
            ae_title: "MEDBUS".into(),
            allowed_calling_aes: allowed.iter().map(|s| s.to_string()).collect(),
            peer: "127.0.0.1:1".parse().unwrap(),
        }
    }

    #[test]
    fn called_title_must_be_ours_and_calling_title_listed() {
        assert!(access(&[]).decide("ANY", "MEDBUS ").is_ok());
        assert_eq!(
            access(&[]).decide("ANY", "OTHER"),
            Err(AssociationRJServiceUserReason::CalledAETitleNotRecognized)
        );
        assert!(access(&["CT1"]).decide("CT1", "MEDBUS").is_ok());
        assert_eq!(
            access(&["CT1"]).decide("CT2", "MEDBUS"),
            Err(AssociationRJServiceUserReason::CallingAETitleNotRecognized)
        );
    }
}
