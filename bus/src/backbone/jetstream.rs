//! JetStream backbone (stub).
use super::*;
use async_trait::async_trait;
use std::path::Path;
/// Embedded backbone.
pub struct JetStreamBackbone;
impl JetStreamBackbone {
    /// Opens.
    pub async fn connect(_cfg: &BackboneConfig) -> Result<Self, BackboneError> {
        Err(BackboneError::Invalid("todo".into()))
    }
}
#[async_trait]
impl Backbone for JetStreamBackbone {
    fn kind(&self) -> &'static str {
        "jetstream"
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
