//! Why a router could not finish a delivery now: the distinction every
//! router stage settles by (nak and retry, or dead-letter).

use medbus_bus::backbone::BackboneError;
use medbus_bus::store::StoreError;

use crate::publish::PublishError;

/// Why a delivery could not be finished now.
pub(crate) enum Failure {
    /// Worth retrying later.
    Transient(String),
    /// Will never work: dead-letter.
    Permanent(String),
}

impl From<StoreError> for Failure {
    fn from(e: StoreError) -> Self {
        if e.is_retryable() {
            Failure::Transient(e.to_string())
        } else {
            Failure::Permanent(e.to_string())
        }
    }
}

impl From<BackboneError> for Failure {
    fn from(e: BackboneError) -> Self {
        if e.is_retryable() {
            Failure::Transient(e.to_string())
        } else {
            Failure::Permanent(e.to_string())
        }
    }
}

impl From<PublishError> for Failure {
    fn from(e: PublishError) -> Self {
        match e {
            PublishError::Backbone(e) => e.into(),
            other => Failure::Permanent(other.to_string()),
        }
    }
}
