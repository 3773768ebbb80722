//! [`CatalogStore`]: the catalog, used from async code. Every transaction runs on the
//! node's io pool, never on an async worker thread (a commit waits for an fsync).

use std::sync::Arc;

use riffle_catalog::{Catalog, CatalogError};
use riffle_common::Pool;

use crate::error::ControllerError;

/// The catalog and the pool its transactions run on.
#[derive(Clone, Debug)]
pub struct CatalogStore {
    catalog: Arc<Catalog>,
    io: Pool,
}

impl CatalogStore {
    /// A store over `catalog` whose calls run on `io`.
    pub fn new(catalog: Arc<Catalog>, io: Pool) -> CatalogStore {
        CatalogStore { catalog, io }
    }

    /// Runs `f` with the catalog on the io pool.
    pub async fn run<T, F>(&self, f: F) -> Result<T, ControllerError>
    where
        T: Send + 'static,
        F: FnOnce(&Catalog) -> Result<T, CatalogError> + Send + 'static,
    {
        let catalog = self.catalog.clone();
        Ok(self.io.run(move || f(&catalog)).await??)
    }
}
