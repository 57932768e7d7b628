//! The simulator's library side: the modelled network under the deterministic simulation
//! (`net`). The `mqsim` binary (main.rs) is the CLI.

pub mod net;
