//! riffle-kafka
