//! riffle-catalog
