//! The broker settings the integration tests start from (the core's `Config::for_tests` is
//! `cfg(test)`, out of these crates' reach).

use mqsim::broker::Config;
use mqsim::time::Duration;

/// The defaults with `$SYS` off (`sys_interval` zero): a broker that sends and schedules nothing
/// of its own, so a test sees only its clients' traffic and timers.
pub fn test_config() -> Config {
    Config {
        sys_interval: Duration::ZERO,
        ..Config::default()
    }
}
