//! Board inputs: named values (a door switch, a button) for the application
//! (`mqsim::app::Event::Input`), sent by the firmware's own tasks with [`report`].

use embassy_sync::blocking_mutex::raw::CriticalSectionRawMutex;
use embassy_sync::channel::Channel;
use embassy_time::{with_timeout, Duration};
use esp_hal::gpio::Input;
use mqsim::app::Value;

/// Values reported and not yet handed to the device.
static INPUTS: Channel<CriticalSectionRawMutex, (&'static str, Value), 8> = Channel::new();

/// Hands `value` of the input `name` to the application, in order (waits while 8 are queued).
pub async fn report(name: &'static str, value: Value) {
    INPUTS.send((name, value)).await;
}

/// The next reported value, for the device's loop.
pub(crate) async fn next() -> (&'static str, Value) {
    INPUTS.receive().await
}

/// Missed edges (one between a read and the wait that follows) are caught this often.
const POLL_MS: u64 = 1_000;

/// A switch on a GPIO, reported as `Value::Bool` on every debounced change (and once at start).
pub struct Switch {
    name: &'static str,
    pin: Input<'static>,
    high_is_true: bool,
    debounce: Duration,
}

impl Switch {
    /// The input `name`: `true` while the pin is high, debounced 50 ms. For a switch to ground
    /// on a pin with the pull-up on (`InputConfig::default().with_pull(Pull::Up)`), `true` is
    /// "switch open" (a reed contact held closed by the door's magnet: `true` = door open).
    pub fn new(name: &'static str, pin: Input<'static>) -> Switch {
        Switch {
            name,
            pin,
            high_is_true: true,
            debounce: Duration::from_millis(50),
        }
    }

    /// `true` while the pin is low (a button to ground: `true` = pressed).
    pub fn active_low(mut self) -> Switch {
        self.high_is_true = false;
        self
    }

    /// The level must hold this long to count (contact bounce lasts a few ms).
    pub fn debounce_ms(mut self, ms: u64) -> Switch {
        self.debounce = Duration::from_millis(ms);
        self
    }
}

/// Watches a [`Switch`] for ever: its value at start, then every change that holds for the
/// debounce time, each [`report`]ed once. Spawn one per switch (at most 4).
#[embassy_executor::task(pool_size = 4)]
pub async fn switch_task(mut s: Switch) {
    let mut reported = None;
    loop {
        let high = s.pin.is_high();
        // Stable: no edge for the debounce time, and the level read again agrees.
        if with_timeout(s.debounce, s.pin.wait_for_any_edge())
            .await
            .is_ok()
            || s.pin.is_high() != high
        {
            continue;
        }
        let value = high == s.high_is_true;
        if reported != Some(value) {
            reported = Some(value);
            report(s.name, Value::Bool(value)).await;
        }
        // The next edge; a bounded wait catches one that came before the wait started.
        let _ = with_timeout(Duration::from_millis(POLL_MS), s.pin.wait_for_any_edge()).await;
    }
}
