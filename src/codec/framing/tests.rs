use super::*;
use crate::codec::encode_to_vec;
use alloc::vec;

fn bytes(packets: &[Packet<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for p in packets {
        encode_to_vec(p, &mut out).unwrap();
    }
    out
}

#[test]
fn packets_split_anywhere_come_out_whole_and_in_order() {
    let stream = bytes(&[Packet::PingReq, Packet::PubAck(7), Packet::PubRel(9)]);
    for cut in 0..=stream.len() {
        let mut fb = FrameBuffer::new();
        let mut got = Vec::new();
        for chunk in [&stream[..cut], &stream[cut..]] {
            let r = fb.feed::<()>(chunk, 1024, |p| {
                got.push(p.name());
                ControlFlow::Continue(())
            });
            assert_eq!(r, Ok(()));
        }
        assert_eq!(got, ["PINGREQ", "PUBACK", "PUBREL"], "cut at {cut}");
        assert!(fb.is_empty());
    }
}

#[test]
fn a_break_keeps_the_rest_for_the_next_feed() {
    let stream = bytes(&[Packet::PubAck(1), Packet::PubAck(2), Packet::PubAck(3)]);
    let mut fb = FrameBuffer::new();
    let mut got = Vec::new();
    let r = fb.feed(&stream, 1024, |p| {
        got.push(p.name());
        ControlFlow::Break("pause")
    });
    assert_eq!(r, Err(FeedStop::Handler("pause")));
    assert_eq!(fb.len(), 8, "two PUBACKs of 4 bytes kept");
    let r = fb.feed::<()>(&[], 1024, |p| {
        got.push(p.name());
        ControlFlow::Continue(())
    });
    assert_eq!(r, Ok(()));
    assert_eq!(got.len(), 3);
    assert!(fb.is_empty());
}

#[test]
fn a_kept_packet_waits_undecoded_with_everything_after_it() {
    let stream = bytes(&[Packet::PingReq, Packet::PubAck(1), Packet::PingReq]);
    for cut in 0..=stream.len() {
        let mut fb = FrameBuffer::new();
        let mut got = Vec::new();
        for chunk in [&stream[..cut], &stream[cut..]] {
            let r = fb.feed_or_keep(chunk, 1024, |p| match p {
                Packet::PubAck(_) => Take::Keep("later"),
                p => {
                    got.push(p.name());
                    Take::Done
                }
            });
            assert!(matches!(r, Ok(()) | Err(FeedStop::Handler("later"))));
        }
        assert_eq!(got, ["PINGREQ"], "cut at {cut}");
        assert_eq!(fb.len(), 6, "PUBACK and PINGREQ kept whole");
        let r = fb.feed_or_keep::<()>(&[], 1024, |p| {
            got.push(p.name());
            Take::Done
        });
        assert_eq!(r, Ok(()));
        assert_eq!(got, ["PINGREQ", "PUBACK", "PINGREQ"]);
        assert!(fb.is_empty());
    }
}

#[test]
fn oversized_packets_can_be_dropped_keeping_the_stream() {
    // A 300-byte PUBLISH between two PINGRESPs, cut at every point, under a 256-byte limit.
    let big = bytes(&[Packet::Publish(crate::codec::Publish {
        dup: false,
        qos: crate::QoS::AtMostOnce,
        retain: false,
        topic: "t",
        pkid: 0,
        payload: &[7u8; 294],
    })]);
    assert_eq!(big.len(), 300);
    let mut stream = bytes(&[Packet::PingResp]);
    stream.extend_from_slice(&big);
    stream.extend(bytes(&[Packet::PingResp]));
    for cut in 0..=stream.len() {
        let mut fb = FrameBuffer::new();
        let mut got = Vec::new();
        for chunk in [&stream[..cut], &stream[cut..]] {
            let r = fb.feed_frames::<()>(chunk, 256, Oversized::Drop, |f| {
                got.push(match f {
                    Frame::Packet(p) => alloc::string::ToString::to_string(p.name()),
                    Frame::Dropped(n) => alloc::format!("dropped {n}"),
                });
                ControlFlow::Continue(())
            });
            assert_eq!(r, Ok(()));
        }
        assert_eq!(got, ["PINGRESP", "dropped 300", "PINGRESP"], "cut at {cut}");
    }
}

#[test]
fn an_oversized_packet_is_refused_from_its_header() {
    // PUBLISH with a remaining length of 2000: only the fixed header has arrived.
    let header = vec![0x30, 0xD0, 0x0F];
    let mut fb = FrameBuffer::new();
    let r = fb.feed::<()>(&header, 1024, |_| ControlFlow::Continue(()));
    assert!(matches!(r, Err(FeedStop::Malformed(_))), "{r:?}");
}
