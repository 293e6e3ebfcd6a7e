//! SQLite store (stub, being written).
use super::*;
use std::path::Path;
/// SQLite store.
pub struct SqliteStore;
impl SqliteStore {
    /// Opens a file.
    pub async fn open_file(_p: &Path, _cfg: &StoreConfig) -> Result<Self, StoreError> {
        todo!()
    }
    /// Opens a URL.
    pub async fn open_url(_u: &str, _cfg: &StoreConfig) -> Result<Self, StoreError> {
        todo!()
    }
}
