//! The simulator's commands: `mqsim sim` and `mqsim device`.

pub mod device;
pub mod merge;
pub mod sim;
pub mod sweep;
