//! riffle-decode
