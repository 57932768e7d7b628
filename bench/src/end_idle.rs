//! `--end-idle-s`: when a subscriber stops waiting for messages that may never come.

/// When a subscriber stops waiting for messages that may never come: `window_ns` after the later
/// of the publishers' end and the last time it was busy, that is received a PUBLISH or held
/// itself back for its rate limit. A rate-limited subscriber runs behind the broker on purpose:
/// the time it spends throttled is not the broker's silence.
#[derive(Clone, Copy, Debug)]
pub struct IdleClock {
    window_ns: u64,
    busy_ns: u64,
}

impl IdleClock {
    /// A clock that counts from `now_ns`.
    pub fn new(window_ns: u64, now_ns: u64) -> IdleClock {
        IdleClock {
            window_ns,
            busy_ns: now_ns,
        }
    }

    /// The subscriber received something, or was throttling itself, at `now_ns`.
    #[inline]
    pub fn busy(&mut self, now_ns: u64) {
        self.busy_ns = self.busy_ns.max(now_ns);
    }

    /// Whether to give up at `now_ns`, given when the publishers finished (`None`: not yet).
    pub fn expired(&self, now_ns: u64, publishers_done_ns: Option<u64>) -> bool {
        publishers_done_ns
            .is_some_and(|done| now_ns.saturating_sub(done.max(self.busy_ns)) >= self.window_ns)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn idle_clock_waits_for_the_publishers_then_the_window() {
        const S: u64 = 1_000_000_000;
        let mut c = IdleClock::new(2 * S, 0);
        // Publishers still running: never idle, however quiet.
        assert!(!c.expired(100 * S, None));
        // Publishers done at 10 s, last message at 5 s: counts from 10 s.
        c.busy(5 * S);
        assert!(!c.expired(11 * S, Some(10 * S)));
        assert!(c.expired(12 * S, Some(10 * S)));
        // A message after the publishers finished restarts the window.
        c.busy(13 * S);
        assert!(!c.expired(14 * S, Some(10 * S)));
        assert!(c.expired(15 * S, Some(10 * S)));
        // Busy never goes back in time.
        c.busy(S);
        assert!(!c.expired(14 * S, Some(10 * S)));
    }

    #[test]
    fn idle_clock_does_not_run_while_a_slow_subscriber_throttles() {
        // 10 msg/s, 40 small messages read at once: the subscriber holds itself back for 4 s. It
        // is busy each time it wakes from its rate-limit sleep (every 100 ms), so a 2 s window
        // after publishers done at 0 never expires during the throttling.
        const MS: u64 = 1_000_000;
        let mut c = IdleClock::new(2_000 * MS, 0);
        c.busy(0);
        let mut now = 0;
        while now < 4_000 * MS {
            assert!(!c.expired(now, Some(0)), "at {now}");
            now += 100 * MS;
            c.busy(now);
        }
        // Then the broker has nothing more: 2 s later it gives up.
        assert!(!c.expired(now + 1_999 * MS, Some(0)));
        assert!(c.expired(now + 2_000 * MS, Some(0)));
    }
}
