//! riffle-query
