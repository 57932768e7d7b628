//! The simulator's library half: scenario files (`scenario`), the modelled network under the
//! deterministic simulation (`net`), the ledger that checks what QoS 0/1/2 really delivered, fed
//! only from the edges (`check`), and the run report (`report`). The `mqsim` binary (`main.rs`)
//! is the command line: the broker front end, the load generator and the simulator.

pub mod check;
pub mod device_io;
pub mod disk;
pub mod net;
pub mod picture;
#[cfg(feature = "proptest")]
pub mod proptest;
pub mod random;
pub mod report;
pub mod run;
pub mod scenario;
pub mod seed;
pub mod sketch;
pub mod sweep;
pub mod tcp;
pub mod world;

// README.md's Rust snippets, compiled as doctests of this crate (`cargo test --doc -p mqsim-sim`):
// the README shows the simulator's library API, so its examples build against it.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
pub struct ReadmeDoctests;
