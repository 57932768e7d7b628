//! The simulator's library half: scenario files, the ledger that checks what QoS 0/1/2 really
//! delivered (fed only from the edges), and the run report. The `mqsim` binary (`main.rs`) keeps
//! its own modules for the broker front end and the load generator.

pub mod check;
pub mod report;
pub mod scenario;
