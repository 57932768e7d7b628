//! The firmware's board-free code, the very files the firmware compiles, built for the host so
//! that `tests/` can check them (the glue is the core's, `mqsim::device::glue`, tested there).

#![no_std]

extern crate alloc;

#[path = "../../src/settings.rs"]
pub mod settings;
