use super::*;

#[test]
fn defaults_are_valid() {
    assert_eq!(Config::default().validate(), Ok(()));
}

#[test]
fn each_bad_value_is_named() {
    let key = |set: fn(&mut Config)| {
        let mut c = Config::default();
        set(&mut c);
        c.validate().unwrap_err().key
    };
    assert_eq!(key(|c| c.max_packet_bytes = 19), "max_packet_size");
    assert_eq!(key(|c| c.max_packet_bytes = usize::MAX), "max_packet_size");
    assert_eq!(
        key(|c| c.max_inflight_messages = 0),
        "max_inflight_messages"
    );
    assert_eq!(
        key(|c| c.max_inflight_messages = 65_536),
        "max_inflight_messages"
    );
    assert_eq!(key(|c| c.max_connections = 0), "max_connections");
    assert_eq!(key(|c| c.max_outgoing_bytes = 0), "max_outgoing_bytes");
    assert_eq!(
        key(|c| c.max_paused_input_bytes = 0),
        "max_paused_input_bytes"
    );
    assert_eq!(
        key(|c| c.connect_timeout = Duration::ZERO),
        "connect_timeout"
    );
    let e = Config {
        max_packet_bytes: 3,
        ..Config::default()
    }
    .validate()
    .unwrap_err();
    assert_eq!(
        alloc::format!("{e}"),
        "max_packet_size: must be at least 20 bytes"
    );
}
