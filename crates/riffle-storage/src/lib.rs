//! riffle-storage
