use super::*;
use crate::QoS;

/// The stall the old test-only harness had: it never reported bytes as sent, so after
/// `max_outgoing_bytes` (1 MiB) to one client the broker stopped reading that client for good.
/// 110 MiB at QoS 1 through one subscriber connection, with the default limits.
#[test]
fn moves_110_mib_through_one_connection_without_stalling() {
    let config = broker::Config::for_tests();
    let mut net = MemNet::new(config, Instant::ZERO).unwrap();
    net.record_trace = false;
    let sub = net.add_client(ClientConfig::new("sub")).unwrap();
    let publ = net.add_client(ClientConfig::new("pub")).unwrap();
    net.connect(sub).unwrap();
    net.connect(publ).unwrap();
    net.nodes[sub]
        .client
        .subscribe(net.now, &[("big/#", QoS::AtLeastOnce)])
        .unwrap();
    net.step().unwrap();
    const PAYLOAD_BYTES: usize = 64 * 1024;
    const MESSAGES: usize = 1_760; // 110 MiB
    let mut payload = alloc::vec![0u8; PAYLOAD_BYTES];
    let (mut sent, mut received, mut bytes) = (0usize, 0usize, 0usize);
    for _ in 0..MESSAGES * 4 {
        while sent < MESSAGES {
            payload[..8].copy_from_slice(&(sent as u64).to_be_bytes());
            match net.nodes[publ].client.publish(
                net.now,
                "big/data",
                &payload,
                QoS::AtLeastOnce,
                false,
            ) {
                Ok(_) => sent += 1,
                Err(ClientError::QueueFull) => break,
                Err(e) => panic!("{e}"),
            }
        }
        net.step().unwrap();
        for (_, ev) in core::mem::take(&mut net.nodes[sub].events) {
            if let Event::Message { payload, .. } = ev {
                let seq = u64::from_be_bytes(payload[..8].try_into().unwrap());
                assert_eq!(seq, received as u64, "in order, nothing lost or doubled");
                received += 1;
                bytes += payload.len();
            }
        }
        net.nodes[publ].events.clear();
        if received == MESSAGES {
            break;
        }
    }
    assert_eq!(received, MESSAGES);
    assert!(bytes > 100 * 1024 * 1024, "{bytes} bytes");
    assert_eq!(net.broker.inflight_messages("sub"), Some(0));
}
