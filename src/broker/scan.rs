//! mosquitto's timing, for the profile that reproduces it: the keep-alive scan
//! ([`super::Config::keepalive_check_period`]) and the autosave timer
//! ([`super::Config::autosave_interval`]).

use super::Broker;
use crate::time::{Duration, Instant};

const US_PER_S: u64 = 1_000_000;

/// When a connection last heard at `last_rx`, with keep-alive grace `grace` (1.5 x keep alive),
/// is closed by a scan every `period` from the broker's start: at the first scan at which
/// `now_s - last_rx_s > grace_s`, each in whole seconds (mosquitto keepalive.c:49 compares
/// `db.now_s - context->last_msg_in` with `keepalive*3/2`, all `time_t` seconds).
pub(super) fn keepalive_scan_deadline(
    last_rx: Instant,
    grace: Duration,
    period: Duration,
) -> Instant {
    let last_s = last_rx.as_micros() / US_PER_S;
    let grace_s = grace.as_micros() / US_PER_S;
    // The first whole second at which the silence exceeds the grace.
    let due_us = (last_s + grace_s + 1) * US_PER_S;
    let p = period.as_micros().max(1);
    Instant::from_micros(due_us.div_ceil(p) * p)
}

impl Broker {
    /// The autosave timer fired: the next [`Broker::poll_journal`] hands over a snapshot.
    pub(super) fn autosave_due(&mut self) {
        let Some(at) = self.next_autosave else {
            return;
        };
        if at > self.now {
            return;
        }
        self.save_now();
        let mut next = at + self.config.autosave_interval;
        while next <= self.now {
            next = next + self.config.autosave_interval;
        }
        self.next_autosave = Some(next);
    }
}
