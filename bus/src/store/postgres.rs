//! PostgreSQL store (stub, being written).
use super::*;
/// PostgreSQL store.
pub struct PostgresStore;
impl PostgresStore {
    /// Connects.
    pub async fn connect(_u: &str, _cfg: &StoreConfig) -> Result<Self, StoreError> {
        todo!()
    }
}
