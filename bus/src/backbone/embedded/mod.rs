//! Embedded backbone (stub, being written).
use super::*;
use async_trait::async_trait;
use std::path::Path;
/// Embedded backbone.
pub struct EmbeddedBackbone;
impl EmbeddedBackbone {
    /// Opens.
    pub async fn open(_dir: &Path, _cfg: &BackboneConfig) -> Result<Self, BackboneError> {
        Err(BackboneError::Invalid("todo".into()))
    }
}
#[async_trait]
impl Backbone for EmbeddedBackbone {
    fn kind(&self) -> &'static str {
        "embedded"
    }
    async fn publish(&self, _msg: Outgoing) -> Result<PublishReceipt, BackboneError> {
        todo!()
    }
    async fn bind_consumer(&self, _spec: &ConsumerSpec) -> Result<Box<dyn ConsumerSource>, BackboneError> {
        todo!()
    }
    async fn check(&self) -> Result<(), BackboneError> {
        todo!()
    }
    async fn close(&self) -> Result<(), BackboneError> {
        todo!()
    }
}
