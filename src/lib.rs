//! mqsim core: a sans-IO MQTT 3.1.1 codec, topic matching, and the broker and client state
//! machines that the real broker, the simulator and the ESP32 firmware all drive.
//!
//! Nothing in this crate reads a clock, opens a socket, spawns a thread or draws a random number.
//! Time is an [`Instant`] passed in by the caller; bytes go in through `handle_*` methods and come
//! out of `poll_*` methods, which the caller drains after every input (the quinn-proto / str0m
//! contract). The same state machines therefore run over real TCP (tokio), over turmoil's
//! simulated TCP, and on an ESP32-C3 under embassy-net.
//!
//! Features: `alloc` (broker, client, owned messages), `std` (error trait impls), `auth`
//! (mosquitto password hashes). The tokio adapter lives in the `mqsim-broker` crate. Without features the codec and the
//! topic rules are `no_std` without an allocator; the client needs `alloc` (the ESP32 firmware has
//! a heap), the broker also needs pointer-sized atomics (`Arc`).
//!
//! Tests: a module's unit tests sit beside it in `foo/tests.rs` (or `foo/tests/…`), declared
//! `#[cfg(test)] mod tests;`; tests through the public API only are the crate's root `tests/`.
#![no_std]
#![forbid(unsafe_code)]
#![warn(missing_debug_implementations)]
#![warn(missing_docs)]

#[cfg(feature = "alloc")]
extern crate alloc;
#[cfg(feature = "std")]
extern crate std;

pub mod codec;
pub mod limits;
pub mod time;
pub mod topic;

// Needs `Arc`, so a target with pointer-sized atomics: not the ESP32-C3 (riscv32imc), which
// runs only the client.
#[cfg(feature = "alloc")]
pub mod app;
#[cfg(all(feature = "alloc", target_has_atomic = "ptr"))]
pub mod broker;
#[cfg(feature = "alloc")]
pub mod client;
#[cfg(feature = "alloc")]
pub mod device;
#[cfg(feature = "alloc")]
pub mod driver;
#[cfg(feature = "alloc")]
pub mod qos;

#[cfg(all(test, feature = "alloc"))]
mod test_util;

pub use codec::{Packet, QoS};
pub use time::Instant;
