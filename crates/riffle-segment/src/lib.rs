//! riffle-segment
