//! Topic names and topic filters (MQTT 3.1.1 section 4.7): validation and matching.
//!
//! * A topic name (PUBLISH, will) is non-empty and contains no `+` or `#` (MQTT-3.3.2-2, MQTT-4.7.3-1).
//! * A filter is non-empty; `+` fills a whole level (MQTT-4.7.1-3); `#` fills a whole level and is
//!   last (MQTT-4.7.1-2).
//! * A filter starting with a wildcard never matches a name starting with `$` (MQTT-4.7.2-1), so
//!   `#` does not see `$SYS/...`.

#[cfg(feature = "alloc")]
mod tree;
#[cfg(feature = "alloc")]
pub use tree::SubscriptionTree;

use crate::limits::TOPIC_LEVELS_MAX;

/// Whether `name` may be published to.
pub fn valid_topic_name(name: &str) -> bool {
    !name.is_empty() && !name.bytes().any(|b| b == b'+' || b == b'#') && !name.contains('\0')
}

/// Whether `name` is the broker's own (`$SYS/...`): clients may read it, not write it, neither by
/// PUBLISH nor through a will (as in mosquitto).
pub fn reserved_for_broker(name: &str) -> bool {
    name.starts_with("$SYS")
}

/// Whether `name` (or a filter) has at most [`TOPIC_LEVELS_MAX`] levels, the broker's limit
/// (mosquitto counts the `/` separators: at most 200).
pub fn depth_within_limit(name: &str) -> bool {
    name.bytes().filter(|&b| b == b'/').count() < TOPIC_LEVELS_MAX
}

/// Whether `filter` may be subscribed to.
pub fn valid_topic_filter(filter: &str) -> bool {
    if filter.is_empty() || filter.contains('\0') {
        return false;
    }
    let mut levels = filter.split('/').peekable();
    let mut depth = 0;
    while let Some(level) = levels.next() {
        depth += 1;
        if depth > TOPIC_LEVELS_MAX {
            return false;
        }
        match level {
            "#" => return levels.peek().is_none(),
            "+" => {}
            l if l.contains('+') || l.contains('#') => return false,
            _ => {}
        }
    }
    true
}

/// Whether the (valid) `filter` matches the (valid) topic `name`.
pub fn matches(filter: &str, name: &str) -> bool {
    if name.starts_with('$') && (filter.starts_with('+') || filter.starts_with('#')) {
        return false;
    }
    let mut f = filter.split('/');
    let mut n = name.split('/');
    loop {
        match (f.next(), n.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(fl), Some(nl)) if fl == nl => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests;
