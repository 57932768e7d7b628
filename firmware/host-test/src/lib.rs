//! The firmware's glue, the very file the firmware compiles (`firmware/src/glue.rs`), built for
//! the host so that `tests/` can drive it with a fake board.

#![no_std]

extern crate alloc;

#[path = "../../src/glue.rs"]
pub mod glue;
