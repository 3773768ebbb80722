//! riffle-server
