//! Adapters that drive the sans-IO core over real byte streams.
pub mod tokio;
