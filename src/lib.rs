//! mqgate
