use super::*;
use proptest::prelude::*;

fn ms(v: u64) -> Instant {
    Instant::from_millis(v)
}

fn cfg(latency_ms: u64, loss: LossModel) -> LinkConfig {
    LinkConfig {
        latency_us: latency_ms * 1_000,
        loss,
        ..LinkConfig::default()
    }
}

/// Drives a link and records every output with the instant it was drained at.
struct Run {
    link: Link,
    outs: Vec<(Instant, Output)>,
}

impl Run {
    fn new(c: LinkConfig, seed: u64) -> Run {
        Run {
            link: Link::new(c, seed).expect("valid config"),
            outs: Vec::new(),
        }
    }
    fn drain(&mut self, at: Instant) {
        while let Some(o) = self.link.poll_output() {
            self.outs.push((at, o));
        }
    }
    /// Process every event up to and including `end`, each at its own instant.
    fn run_until(&mut self, end: Instant) {
        while let Some(t) = self.link.poll_timeout() {
            if t > end {
                break;
            }
            self.link.handle_timeout(t);
            self.drain(t);
        }
        self.link.handle_timeout(end);
        self.drain(end);
    }
    fn connect(&mut self, at: Instant) {
        self.link.handle_connect(at);
        self.drain(at);
    }
    fn send(&mut self, at: Instant, dir: Dir, bytes: &[u8]) {
        self.run_until(at);
        self.link.handle_send(at, dir, bytes);
        self.drain(at);
    }
    fn delivered(&self, dir: Dir) -> Vec<u8> {
        let mut v = Vec::new();
        for (_, o) in &self.outs {
            if let Output::Deliver { dir: d, bytes } = o {
                if *d == dir {
                    v.extend_from_slice(bytes);
                }
            }
        }
        v
    }
    /// Instants at which bytes were delivered in `dir`, with the byte count.
    fn deliveries(&self, dir: Dir) -> Vec<(Instant, usize)> {
        self.outs
            .iter()
            .filter_map(|(t, o)| match o {
                Output::Deliver { dir: d, bytes } if *d == dir => Some((*t, bytes.len())),
                _ => None,
            })
            .collect()
    }
    fn resets(&self) -> Vec<(Instant, ResetReason)> {
        self.outs
            .iter()
            .filter_map(|(t, o)| match o {
                Output::Reset { reason } => Some((*t, *reason)),
                _ => None,
            })
            .collect()
    }
    fn net_lines(&self) -> Vec<String> {
        self.outs
            .iter()
            .filter_map(|(_, o)| match o {
                Output::Net(l) => Some(l.to_string()),
                _ => None,
            })
            .collect()
    }
    fn retransmits(&self) -> Vec<(Instant, u64)> {
        self.outs
            .iter()
            .filter_map(|(_, o)| match o {
                Output::Net(NetLine {
                    at,
                    event: NetEvent::Retransmit { after_us, .. },
                }) => Some((*at, *after_us)),
                _ => None,
            })
            .collect()
    }
    fn established_at(&self) -> Option<Instant> {
        self.outs
            .iter()
            .find(|(_, o)| *o == Output::Established)
            .map(|(t, _)| *t)
    }
}

fn established(c: LinkConfig, seed: u64) -> Run {
    let mut r = Run::new(c, seed);
    r.connect(ms(0));
    r.run_until(ms(500));
    assert!(
        r.link.is_established(),
        "handshake did not complete: {:?}",
        r.net_lines()
    );
    r
}

#[test]
fn validate_rejects_bad_values_with_a_message() {
    let bad = [
        LinkConfig::default().both(|s| s.mss_bytes = 0),
        LinkConfig::default().both(|s| s.rto_min_ms = 0),
        LinkConfig::default().both(|s| s.rto_initial_ms = 100),
        LinkConfig::default().both(|s| s.rto_max_ms = 500),
        LinkConfig {
            loss: LossModel::Bernoulli { loss: 1.5 },
            ..LinkConfig::default()
        },
        LinkConfig {
            loss: LossModel::Bernoulli { loss: f64::NAN },
            ..LinkConfig::default()
        },
        LinkConfig {
            loss: LossModel::GilbertElliott {
                p_good_to_bad: 0.1,
                p_bad_to_good: -0.1,
                loss_good: 0.0,
                loss_bad: 0.5,
            },
            ..LinkConfig::default()
        },
    ];
    for c in bad {
        let err = c.validate().expect_err("must be rejected");
        assert!(!err.is_empty());
        assert!(Link::new(c, 1).is_err());
    }
    assert!(LinkConfig::default().validate().is_ok());
}

#[test]
fn handshake_takes_one_rtt_and_numbers_are_exact() {
    let r = established(cfg(10, LossModel::None), 7);
    assert_eq!(r.established_at(), Some(ms(20)));
    let wires: Vec<&Wire> = r
        .outs
        .iter()
        .filter_map(|(_, o)| {
            if let Output::Wire(w) = o {
                Some(w)
            } else {
                None
            }
        })
        .collect();
    assert_eq!(wires.len(), 3);
    assert_eq!(wires[0].flags, TcpFlags(TcpFlags::SYN));
    assert_eq!(wires[1].flags, TcpFlags(TcpFlags::SYN | TcpFlags::ACK));
    assert_eq!(wires[1].ack, wires[0].seq.wrapping_add(1));
    assert_eq!(wires[2].seq, wires[0].seq.wrapping_add(1));
    assert_eq!(wires[2].ack, wires[1].seq.wrapping_add(1));
}

#[test]
fn no_loss_delivery_time_is_latency() {
    let mut r = established(cfg(25, LossModel::None), 1);
    r.send(ms(1_000), Dir::Up, b"hello");
    r.send(ms(1_000), Dir::Down, b"world");
    r.run_until(ms(3_000));
    assert_eq!(r.deliveries(Dir::Up), vec![(ms(1_025), 5)]);
    assert_eq!(r.deliveries(Dir::Down), vec![(ms(1_025), 5)]);
    assert_eq!(r.delivered(Dir::Up), b"hello");
}

#[test]
fn large_write_is_cut_into_mss_segments_with_consecutive_seqs() {
    let mut r = established(cfg(5, LossModel::None), 1);
    let data: Vec<u8> = (0..4000u32).map(|i| i as u8).collect();
    r.send(ms(100), Dir::Up, &data);
    r.run_until(ms(1_000));
    assert_eq!(r.delivered(Dir::Up), data);
    let segs: Vec<&Wire> = r
        .outs
        .iter()
        .filter_map(|(_, o)| match o {
            Output::Wire(w) if w.dir == Dir::Up && !w.payload.is_empty() => Some(w),
            _ => None,
        })
        .collect();
    assert_eq!(
        segs.iter().map(|w| w.payload_len()).collect::<Vec<_>>(),
        vec![1460, 1460, 1080]
    );
    assert_eq!(segs[1].seq, segs[0].seq.wrapping_add(1460));
    assert_eq!(segs[2].seq, segs[1].seq.wrapping_add(1460));
}

/// Sends `bytes` in `dir` at `at` with that transmission lost (dead direction around the send).
fn send_lost(r: &mut Run, at: Instant, dir: Dir, bytes: &[u8]) {
    r.run_until(at);
    r.link.set_dead(at, dir, true);
    r.link.handle_send(at, dir, bytes);
    r.link.set_dead(at, dir, false);
    r.drain(at);
}

impl Run {
    /// Every retransmission: instant, relative seq and why.
    fn resent(&self) -> Vec<(Instant, u64, Recovery)> {
        self.outs
            .iter()
            .filter_map(|(_, o)| match o {
                Output::Net(NetLine {
                    at,
                    event: NetEvent::Retransmit { seq, by, .. },
                }) => Some((*at, *seq, *by)),
                _ => None,
            })
            .collect()
    }
}

#[test]
fn a_lone_lost_segment_costs_an_rto() {
    let mut r = established(cfg(10, LossModel::None), 3);
    // srtt = 20 ms, rttvar = 10 ms: RTO = 20 + max(40, 200) = 220 ms (Linux adds the floor).
    assert_eq!(r.link.rto(Dir::Up), Duration::from_millis(220));
    send_lost(&mut r, ms(1_000), Dir::Up, b"first");
    r.run_until(ms(3_000));
    // Nothing follows it, so no ACK reveals the hole; with one segment in flight the probe
    // (2 x 20 + 200 ms) is capped at the RTO instant and resends it there, in the RTO's place.
    assert_eq!(r.deliveries(Dir::Up), vec![(ms(1_230), 5)]);
    assert_eq!(r.retransmits(), vec![(ms(1_220), 220_000)]);
    assert_eq!(r.resent(), vec![(ms(1_220), 1, Recovery::Tlp)]);
}

/// Was `one_lost_segment_costs_an_rto_and_blocks_the_ones_behind_it` (delivery at 1210 ms): the
/// later segment's SACK now lets RACK resend the hole after one RTT + reo_wnd, not an RTO.
#[test]
fn a_later_segment_acknowledged_resends_the_hole_by_rack() {
    let mut r = established(cfg(10, LossModel::None), 3);
    send_lost(&mut r, ms(1_000), Dir::Up, b"first");
    r.send(ms(1_050), Dir::Up, b"second");
    r.run_until(ms(3_000));
    // "second" arrives at 1060 (held behind the hole), its SACK at 1070; "first" was sent more
    // than RACK.rtt (20) + reo_wnd (20 / 4) before: lost, resent at 1070, delivered at 1080.
    assert_eq!(r.deliveries(Dir::Up), vec![(ms(1_080), 11)]);
    assert_eq!(r.delivered(Dir::Up), b"firstsecond");
    assert_eq!(r.resent(), vec![(ms(1_070), 1, Recovery::Fast)]);
}

#[test]
fn rack_waits_out_the_reordering_window() {
    let mut r = established(cfg(10, LossModel::None), 3);
    send_lost(&mut r, ms(1_000), Dir::Up, b"a");
    r.send(ms(1_001), Dir::Up, b"b");
    r.run_until(ms(3_000));
    // The SACK of "b" comes at 1021, but "a" is declared lost only at 1000 + 20 + 5.
    assert_eq!(r.resent(), vec![(ms(1_025), 1, Recovery::Fast)]);
    assert_eq!(r.deliveries(Dir::Up), vec![(ms(1_035), 2)]);
}

#[test]
fn three_later_segments_acknowledged_fast_retransmit_after_one_rtt() {
    let mut r = established(cfg(10, LossModel::None), 3);
    send_lost(&mut r, ms(1_000), Dir::Up, b"hole");
    for (i, b) in [b"x", b"y", b"z"].iter().enumerate() {
        r.send(ms(1_001 + i as u64), Dir::Up, *b);
    }
    r.run_until(ms(3_000));
    // The third SACK (DupThresh = 3) arrives at 1023, before RACK's 1025: resent at once, about
    // one RTT after the hole was sent, not 200 ms.
    assert_eq!(r.resent(), vec![(ms(1_023), 1, Recovery::Fast)]);
    assert_eq!(r.deliveries(Dir::Up), vec![(ms(1_033), 7)]);
    assert_eq!(r.delivered(Dir::Up), b"holexyz");
}

#[test]
fn tail_loss_probe_after_two_srtt_recovers_a_lost_flight() {
    let mut r = established(cfg(10, LossModel::None), 3);
    r.run_until(ms(1_000));
    r.link.set_dead(ms(1_000), Dir::Up, true);
    r.link.handle_send(ms(1_000), Dir::Up, b"one");
    r.link.handle_send(ms(1_000), Dir::Up, b"two");
    r.link.set_dead(ms(1_000), Dir::Up, false);
    r.drain(ms(1_000));
    r.run_until(ms(3_000));
    // Two in flight: PTO = 2 x SRTT = 40 ms. The probe resends the last segment ("two", seq 4);
    // its SACK at 1060 shows "one" (sent before it) lost: resent at once, delivered at 1070.
    assert_eq!(
        r.resent(),
        vec![
            (ms(1_040), 4, Recovery::Tlp),
            (ms(1_060), 1, Recovery::Fast)
        ]
    );
    assert_eq!(r.deliveries(Dir::Up), vec![(ms(1_070), 6)]);
}

#[test]
fn tail_loss_probe_waits_at_least_ten_ms() {
    let mut r = established(cfg(1, LossModel::None), 3);
    r.run_until(ms(1_000));
    r.link.set_dead(ms(1_000), Dir::Up, true);
    r.link.handle_send(ms(1_000), Dir::Up, b"one");
    r.link.handle_send(ms(1_000), Dir::Up, b"two");
    r.link.set_dead(ms(1_000), Dir::Up, false);
    r.drain(ms(1_000));
    r.run_until(ms(3_000));
    // SRTT = 2 ms, so 2 x SRTT = 4 ms, raised to the 10 ms minimum.
    assert_eq!(r.resent().first(), Some(&(ms(1_010), 4, Recovery::Tlp)));
    assert_eq!(r.delivered(Dir::Up), b"onetwo");
}

#[test]
fn one_backoff_per_connection_reset_by_a_successful_retransmission() {
    let mut r = established(cfg(10, LossModel::None), 3);
    r.run_until(ms(1_000));
    r.link.set_dead(ms(1_000), Dir::Up, true);
    r.send(ms(1_000), Dir::Up, b"a");
    // Sent while "a" is backing off: no timer of its own, no probe (backoff > 0).
    r.send(ms(1_300), Dir::Up, b"b");
    r.run_until(ms(1_500));
    r.link.set_dead(ms(1_500), Dir::Up, false);
    r.drain(ms(1_500));
    r.run_until(ms(3_000));
    // The probe at the RTO instant, 1220 (lost, no backoff), the RTO at 1440 (lost, backoff 1),
    // 1880 gets "a" through (only the oldest is resent); its ACK at 1900 exposes "b" (sent
    // before that retransmission) to RACK: resent at once.
    assert_eq!(
        r.resent(),
        vec![
            (ms(1_220), 1, Recovery::Tlp),
            (ms(1_440), 1, Recovery::Rto),
            (ms(1_880), 1, Recovery::Rto),
            (ms(1_900), 2, Recovery::Fast)
        ]
    );
    assert_eq!(r.deliveries(Dir::Up), vec![(ms(1_890), 1), (ms(1_910), 1)]);
    // The ACK of new data ended the backoff: the next lone loss costs one probe at the RTO again.
    send_lost(&mut r, ms(5_000), Dir::Up, b"c");
    r.run_until(ms(6_000));
    assert_eq!(r.resent().last(), Some(&(ms(5_220), 3, Recovery::Tlp)));
}

#[test]
fn rto_doubles_per_retry_then_fifteen_retries_reset() {
    let mut r = established(cfg(10, LossModel::None), 3);
    r.run_until(ms(1_000));
    r.link.set_dead(ms(1_000), Dir::Up, true);
    r.link.handle_send(ms(1_000), Dir::Up, b"x");
    r.drain(ms(1_000));
    r.run_until(ms(2_000_000));
    let gaps: Vec<u64> = r.retransmits().iter().map(|(_, a)| *a / 1_000).collect();
    // The probe at the RTO instant (220 ms = SRTT 20 + 200), then 15 RTOs from 220 ms, doubling.
    assert_eq!(
        gaps,
        vec![
            220, 220, 440, 880, 1_760, 3_520, 7_040, 14_080, 28_160, 56_320, 112_640, 120_000,
            120_000, 120_000, 120_000, 120_000
        ]
    );
    let by: Vec<Recovery> = r.resent().iter().map(|(_, _, by)| *by).collect();
    assert_eq!(by.first(), Some(&Recovery::Tlp));
    assert!(by.iter().skip(1).all(|b| *b == Recovery::Rto));
    let resets = r.resets();
    assert_eq!(resets.len(), 1);
    assert_eq!(resets[0].1, ResetReason::RetriesExhausted { dir: Dir::Up });
    // The probe, 225.06 s of doubling, then 6 capped waits of 120 s (the last before giving up).
    assert_eq!(resets[0].0, ms(1_000 + 220 + 225_060 + 6 * 120_000));
    assert!(r.link.is_dead());
    assert_eq!(r.link.poll_timeout(), None);
    // A dead link ignores everything.
    r.send(ms(3_000_000), Dir::Up, b"late");
    assert!(r.delivered(Dir::Up).is_empty());
}

#[test]
fn partition_then_heal_delivers_after_the_next_backoff() {
    let mut r = established(cfg(10, LossModel::None), 3);
    r.run_until(ms(1_000));
    r.link.set_partition(ms(1_000), true);
    r.link
        .handle_send(ms(1_000), Dir::Down, b"during partition");
    r.drain(ms(1_000));
    // The probe at 1.22 s and the RTOs at 1.44, 1.88, 2.76, 4.52 s are lost; heal at 5 s; the
    // next RTO, at 8.04 s, gets through.
    r.run_until(ms(5_000));
    r.link.set_partition(ms(5_000), false);
    r.drain(ms(5_000));
    r.run_until(ms(20_000));
    assert_eq!(r.deliveries(Dir::Down), vec![(ms(8_050), 16)]);
    assert!(r.resets().is_empty());
    assert!(r
        .net_lines()
        .iter()
        .any(|l| l == "5.000000 partition healed"));
}

#[test]
fn overlapping_faults_end_independently() {
    // Fault 1 partitions 1-6 s, fault 2 2-4 s: the end of fault 2 must not heal the link.
    let mut r = established(cfg(10, LossModel::None), 3);
    r.run_until(ms(1_000));
    r.link.set_partition_by(ms(1_000), 1, true);
    r.link.set_partition_by(ms(2_000), 2, true);
    r.link.set_dead_by(ms(2_000), Dir::Up, 2, true);
    r.link.set_dead_by(ms(2_500), Dir::Up, 3, true);
    r.link.handle_send(ms(2_500), Dir::Down, b"held");
    r.drain(ms(2_500));
    r.run_until(ms(4_000));
    r.link.set_partition_by(ms(4_000), 2, false);
    r.link.set_dead_by(ms(4_000), Dir::Up, 2, false);
    r.drain(ms(4_000));
    r.run_until(ms(5_900));
    assert!(
        r.delivered(Dir::Down).is_empty(),
        "fault 1 still partitions"
    );
    r.link.set_partition_by(ms(6_000), 1, false);
    r.drain(ms(6_000));
    r.run_until(ms(30_000));
    // Down delivers after the next backoff; Up stays dead (fault 3), so no ACK comes back.
    assert_eq!(r.delivered(Dir::Down), b"held".to_vec());
    let lines = r.net_lines();
    let heals = lines
        .iter()
        .filter(|l| l.ends_with("partition healed"))
        .count();
    assert_eq!(heals, 1, "{lines:?}");
    assert!(
        !lines.iter().any(|l| l.contains("up dead healed")),
        "{lines:?}"
    );
    r.link.clear_faults(ms(30_000));
    r.drain(ms(30_000));
    assert!(r.net_lines().iter().any(|l| l.contains("up dead healed")));
}

#[test]
fn half_open_one_way_delivers_but_never_acks_then_resets() {
    let c = cfg(10, LossModel::None).both(|s| s.retries_max = 3);
    let mut r = established(c, 3);
    r.run_until(ms(1_000));
    // Down is dead: the server receives the client's bytes, its ACKs never come back.
    r.link.set_dead(ms(1_000), Dir::Down, true);
    r.send(ms(1_000), Dir::Up, b"ping");
    r.send(ms(1_000), Dir::Down, b"pong");
    r.run_until(ms(60_000));
    assert_eq!(r.delivered(Dir::Up), b"ping");
    assert!(r.delivered(Dir::Down).is_empty());
    // Duplicate arrivals are not delivered twice.
    assert_eq!(r.deliveries(Dir::Up).len(), 1);
    assert!(r.retransmits().len() >= 3);
    assert_eq!(r.resets().len(), 1);
}

#[test]
fn fin_is_delivered_in_order_after_data() {
    let mut r = established(cfg(10, LossModel::None), 3);
    r.run_until(ms(1_000));
    r.link.set_dead(ms(1_000), Dir::Up, true);
    r.link.handle_send(ms(1_000), Dir::Up, b"last words");
    r.link.set_dead(ms(1_000), Dir::Up, false);
    r.link.handle_close(ms(1_000), Dir::Up);
    r.drain(ms(1_000));
    r.run_until(ms(5_000));
    let pos_data = r
        .outs
        .iter()
        .position(|(_, o)| matches!(o, Output::Deliver { .. }));
    let pos_fin = r
        .outs
        .iter()
        .position(|(_, o)| *o == Output::Closed { dir: Dir::Up });
    assert!(pos_data.is_some() && pos_fin.is_some() && pos_data < pos_fin);
    // Writes after the FIN are ignored.
    r.send(ms(6_000), Dir::Up, b"more");
    r.run_until(ms(7_000));
    assert_eq!(r.delivered(Dir::Up), b"last words");
}

#[test]
fn reset_is_seen_at_once_and_stops_everything() {
    let mut r = established(cfg(10, LossModel::None), 3);
    r.send(ms(1_000), Dir::Up, b"abc");
    r.link.handle_reset(ms(1_001));
    r.drain(ms(1_001));
    r.run_until(ms(5_000));
    assert_eq!(r.resets(), vec![(ms(1_001), ResetReason::Requested)]);
    assert!(r.delivered(Dir::Up).is_empty());
}

#[test]
fn power_cut_server_silence_then_client_retries_reset() {
    let c = cfg(10, LossModel::None).both(|s| s.retries_max = 4);
    let mut r = established(c, 3);
    r.link.handle_abort(ms(1_000), Side::Server);
    r.drain(ms(1_000));
    // Nothing outstanding: silence, no timer.
    r.run_until(ms(100_000));
    assert_eq!(r.link.poll_timeout(), None);
    assert!(r.resets().is_empty());
    // The client writes: it arrives at a dead host, unanswered, and the client resets.
    r.send(ms(100_000), Dir::Up, b"hello?");
    r.run_until(ms(200_000));
    assert!(r.delivered(Dir::Up).is_empty());
    assert_eq!(r.resets().len(), 1);
    assert!(r.net_lines().iter().any(|l| l.contains("unanswered")));
}

#[test]
fn syn_retries_at_1_3_7_15_31_63_then_fail_at_127() {
    let c = LinkConfig {
        loss: LossModel::Bernoulli { loss: 1.0 },
        ..LinkConfig::default()
    };
    let mut r = Run::new(c, 9);
    r.connect(ms(0));
    r.run_until(ms(200_000));
    let syns: Vec<u64> = r
        .outs
        .iter()
        .filter_map(|(_, o)| match o {
            Output::Wire(w) if w.flags.has(TcpFlags::SYN) => Some(w.at.as_millis()),
            _ => None,
        })
        .collect();
    assert_eq!(syns, vec![0, 1_000, 3_000, 7_000, 15_000, 31_000, 63_000]);
    let failed: Vec<Instant> = r
        .outs
        .iter()
        .filter(|(_, o)| *o == Output::ConnectFailed)
        .map(|(t, _)| *t)
        .collect();
    assert_eq!(failed, vec![ms(127_000)]);
}

#[test]
fn lost_first_syn_connects_after_one_second() {
    let mut r = Run::new(cfg(10, LossModel::None), 2);
    r.link.set_dead(ms(0), Dir::Up, true);
    r.connect(ms(0));
    r.link.set_dead(ms(0), Dir::Up, false);
    r.drain(ms(0));
    r.run_until(ms(5_000));
    assert_eq!(r.established_at(), Some(ms(1_020)));
    // Karn: no RTT sample from a retransmitted SYN, RTO stays initial.
    assert_eq!(r.link.rto(Dir::Up), Duration::from_millis(1_000));
}

impl Run {
    /// Every packet put on the wire (lost or not): (instant in ms, direction, flags).
    fn wires(&self) -> Vec<(u64, Dir, TcpFlags)> {
        self.outs
            .iter()
            .filter_map(|(_, o)| match o {
                Output::Wire(w) => Some((w.at.as_millis(), w.dir, w.flags)),
                _ => None,
            })
            .collect()
    }
    fn count(&self, out: &Output) -> usize {
        self.outs.iter().filter(|(_, o)| o == out).count()
    }
}

/// Issue 19: a device gives up its connect (WiFiClient's 3 s timeout) and closes the socket
/// while the uplink is dead. lwIP frees the SYN_SENT PCB (`tcp_close_shutdown()`, esp-lwip
/// 2.1.3-esp src/core/tcp.c:397-401): no more SYNs, so nothing completes once the link heals.
#[test]
fn an_abandoned_connect_sends_no_more_syns_and_never_completes() {
    let c = LinkConfig {
        latency_us: 15_000,
        client: Stack::lwip_arduino(),
        server: Stack::linux(),
        ..LinkConfig::default()
    };
    let mut r = Run::new(c, 4);
    r.link.set_dead(ms(0), Dir::Up, true);
    r.connect(ms(0));
    r.run_until(ms(4_000));
    r.link.handle_abandon(ms(4_000));
    r.drain(ms(4_000));
    // The uplink heals: a SYN sent now would be answered and the connection would complete.
    r.link.set_dead(ms(5_000), Dir::Up, false);
    r.drain(ms(5_000));
    r.run_until(ms(60_000));
    // lwIP on Arduino: SYNs every 3 s (no backoff in SYN_SENT), 6 retries; two went out.
    let syn = TcpFlags(TcpFlags::SYN);
    assert_eq!(r.wires(), vec![(0, Dir::Up, syn), (3_000, Dir::Up, syn)]);
    assert_eq!(r.established_at(), None);
    assert!(r.resets().is_empty(), "freed silently: {:?}", r.resets());
    // The caller learns once that the attempt is gone, at the abandon.
    let failed: Vec<Instant> = r
        .outs
        .iter()
        .filter(|(_, o)| *o == Output::ConnectFailed)
        .map(|(t, _)| *t)
        .collect();
    assert_eq!(failed, vec![ms(4_000)]);
    assert!(r.link.is_dead());
    assert_eq!(r.link.poll_timeout(), None);
    assert!(r
        .net_lines()
        .iter()
        .any(|l| l.contains("connect abandoned, attempt freed")));
}

/// A SYN or SYN-ACK still on its way when the connect is abandoned: the server answers the
/// SYN, the SYN-ACK finds no PCB at the client and lwIP answers it with a RST (`tcp_input()`,
/// "no PCB match found, resetting", esp-lwip 2.1.3-esp src/core/tcp_in.c:585-594); the
/// server's half-open connection ends there and no connection is ever established.
#[test]
fn a_late_syn_ack_to_an_abandoned_connect_is_answered_with_rst() {
    // 1 s one way: the SYN reaches the server at 1 s, its SYN-ACK the client at 2 s. Abandoned
    // with the SYN in flight (0.5 s), then with the SYN-ACK in flight (1.5 s).
    for abandon_ms in [500, 1_500] {
        let c = LinkConfig {
            latency_us: 1_000_000,
            client: Stack::lwip_arduino(),
            server: Stack::linux(),
            ..LinkConfig::default()
        };
        let mut r = Run::new(c, 5);
        r.connect(ms(0));
        r.run_until(ms(abandon_ms));
        r.link.handle_abandon(ms(abandon_ms));
        r.drain(ms(abandon_ms));
        r.run_until(ms(60_000));
        let (syn, synack, rst) = (
            TcpFlags(TcpFlags::SYN),
            TcpFlags(TcpFlags::SYN | TcpFlags::ACK),
            TcpFlags(TcpFlags::RST),
        );
        assert_eq!(
            r.wires(),
            vec![
                (0, Dir::Up, syn),
                (1_000, Dir::Down, synack),
                (2_000, Dir::Up, rst)
            ],
            "abandoned at {abandon_ms} ms"
        );
        // The RST carries the sequence number the SYN-ACK acknowledged (the client's ISN + 1).
        let seqs: Vec<u32> = r
            .outs
            .iter()
            .filter_map(|(_, o)| match o {
                Output::Wire(w) => Some(w.seq),
                _ => None,
            })
            .collect();
        assert_eq!(seqs[2], seqs[0].wrapping_add(1));
        assert_eq!(r.resets(), vec![(ms(2_000), ResetReason::LateSynAck)]);
        assert_eq!(r.established_at(), None, "no connection at the server");
        assert_eq!(r.count(&Output::Established), 0);
        assert!(r.delivered(Dir::Up).is_empty() && r.delivered(Dir::Down).is_empty());
        assert!(!r.link.is_established() && r.link.is_dead());
        assert_eq!(r.link.poll_timeout(), None);
    }
}

fn lossy_transcript(seed: u64) -> Vec<String> {
    let c = LinkConfig {
        jitter_us: 5_000,
        loss: LossModel::GilbertElliott {
            p_good_to_bad: 0.1,
            p_bad_to_good: 0.3,
            loss_good: 0.05,
            loss_bad: 0.6,
        },
        ..cfg(10, LossModel::None)
    };
    let mut r = Run::new(c, seed);
    r.connect(ms(0));
    for i in 0..50u64 {
        r.send(
            ms(2_000 + i * 500),
            Dir::Up,
            format!("publish {i}").as_bytes(),
        );
        r.send(
            ms(2_100 + i * 500),
            Dir::Down,
            format!("puback {i}").as_bytes(),
        );
    }
    r.run_until(ms(400_000));
    r.outs.iter().map(|(t, o)| format!("{t:?} {o:?}")).collect()
}

#[test]
fn same_seed_same_outputs_different_seed_different() {
    let a = lossy_transcript(42);
    let b = lossy_transcript(42);
    let c = lossy_transcript(43);
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert!(
        a.iter().any(|l| l.contains("Retransmit")),
        "the loss model should lose something"
    );
}

#[test]
fn spurious_timeouts_and_old_instants_are_no_ops() {
    let mut r = established(cfg(10, LossModel::None), 3);
    let before = r.outs.len();
    r.link.handle_timeout(ms(0));
    r.link.handle_timeout(ms(4_000));
    r.drain(ms(4_000));
    assert_eq!(r.outs.len(), before);
    // An older `now` counts as the newest seen: the send happens at 4 s.
    r.link.handle_send(ms(1), Dir::Up, b"x");
    r.drain(ms(4_000));
    r.run_until(ms(6_000));
    assert_eq!(r.deliveries(Dir::Up), vec![(ms(4_010), 1)]);
}

#[test]
fn net_lines_have_fixed_formatting() {
    let line = NetLine {
        at: Instant::from_micros(12_345_678),
        event: NetEvent::Retransmit {
            dir: Dir::Up,
            seq: 1,
            len: 20,
            attempt: 2,
            after_us: 200_500,
            by: Recovery::Rto,
        },
    };
    assert_eq!(
        line.to_string(),
        "12.345678 up retransmit seq=1 len=20 attempt=2 after=200.500ms by=rto"
    );
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// For any loss below 100 % the bytes arrive complete and in order, unless the connection
    /// reset, in which case what arrived is a prefix.
    #[test]
    fn delivered_stream_equals_sent_stream(
        seed in any::<u64>(),
        loss_permille in 0u32..950,
        jitter_ms in 0u64..50,
        mss in 1usize..200,
        writes in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..300), 1..20),
    ) {
        let c = LinkConfig {
            latency_us: 10_000,
            jitter_us: jitter_ms * 1_000,
            loss: LossModel::Bernoulli { loss: f64::from(loss_permille) / 1000.0 },
            ..LinkConfig::default()
        }
        .both(|s| {
            s.mss_bytes = mss;
            s.rto_max_ms = 2_000;
            s.retries_max = 40;
            s.syn_retries_max = 40;
        });
        let mut r = Run::new(c, seed);
        r.connect(ms(0));
        let mut sent_up = Vec::new();
        let mut sent_down = Vec::new();
        for (i, w) in writes.iter().enumerate() {
            let dir = if i % 3 == 2 { Dir::Down } else { Dir::Up };
            r.send(ms(i as u64 * 37), dir, w);
            if dir == Dir::Up { sent_up.extend_from_slice(w) } else { sent_down.extend_from_slice(w) }
        }
        r.run_until(ms(10_000_000));
        let up = r.delivered(Dir::Up);
        let down = r.delivered(Dir::Down);
        let failed = r.outs.iter().any(|(_, o)| *o == Output::ConnectFailed);
        if r.resets().is_empty() && !failed {
            prop_assert_eq!(&up, &sent_up);
            prop_assert_eq!(&down, &sent_down);
        } else {
            prop_assert!(sent_up.starts_with(&up));
            prop_assert!(sent_down.starts_with(&down));
        }
        prop_assert_eq!(r.link.poll_timeout(), None, "the link must go quiet");
    }
}

/// Linux's RTO adds the 200 ms floor to SRTT (`tcp_rtt_estimator()` keeps rttvar at least
/// `tcp_rto_min`): on a 300 ms path without jitter it settles at 500 ms. The RTO that compared
/// SRTT + 4 RTTVAR with the floor converged to the RTT itself and resent every segment at the
/// instant its ACK arrived.
#[test]
fn linux_rto_adds_the_floor_so_a_long_path_is_never_resent_spuriously() {
    let mut r = Run::new(cfg(150, LossModel::None), 3);
    r.connect(ms(0));
    for i in 0..40u64 {
        r.send(ms(1_000 + i * 1_000), Dir::Up, b"reading");
    }
    r.run_until(ms(45_000));
    assert_eq!(r.retransmits(), vec![]);
    assert_eq!(r.delivered(Dir::Up).len(), 40 * 7);
    assert_eq!(r.link.rto(Dir::Up), Duration::from_millis(500));
}

/// lwIP counts RTT in 500 ms ticks (`tcp_receive()`): Arduino's RTO starts at 6 ticks (3 s) and
/// each LAN sample (0 ticks) takes `sv >> 2` off, down to 3 ticks, where it stays.
#[test]
fn lwip_rto_counts_ticks_and_settles_at_three() {
    let c = LinkConfig {
        client: Stack::lwip_arduino(),
        ..cfg(1, LossModel::None)
    };
    let mut r = established(c, 3);
    assert_eq!(r.link.rto(Dir::Up), Duration::from_millis(3_000));
    let mut seen = Vec::new();
    for i in 0..5u64 {
        r.send(ms(1_000 + i * 1_000), Dir::Up, b"x");
        r.run_until(ms(1_500 + i * 1_000));
        seen.push(r.link.rto(Dir::Up).as_millis());
    }
    assert_eq!(seen, vec![2_500, 2_000, 1_500, 1_500, 1_500]);
}

/// smoltcp: SRTT + max(5 ms, 4 RTTVAR), then clamped to 1..=60 s (`RttEstimator::sample()`): the
/// floor applies to the sum, so a 900 ms path settles at 1 s (Linux: SRTT + 200 ms = 1.1 s).
#[test]
fn smoltcp_rto_is_srtt_plus_a_margin_within_its_clamp() {
    let smol = |latency| LinkConfig {
        client: Stack::smoltcp_embassy(),
        ..cfg(latency, LossModel::None)
    };
    let r = established(smol(1), 3);
    assert_eq!(r.link.rto(Dir::Up), Duration::from_millis(1_000));
    let mut r = Run::new(smol(450), 3);
    r.connect(ms(0));
    for i in 0..40u64 {
        r.send(ms(2_000 + i * 2_000), Dir::Up, b"x");
    }
    r.run_until(ms(90_000));
    assert_eq!(r.retransmits(), vec![]);
    assert_eq!(r.link.rto(Dir::Up), Duration::from_millis(1_000));
}

/// smoltcp keeps the backed-off RTO after a recovery until an RTT sample (src/socket/tcp.rs
/// :200-226, 251-260): the ACK of a retransmitted segment gives none, so the next lone loss
/// waits the doubled RTO; a segment sent once and acknowledged brings it back. Linux (`plain`)
/// ends the backoff with that first ACK of new data.
#[test]
fn smoltcp_keeps_the_doubled_rto_until_an_rtt_sample() {
    let run = |client: Stack| {
        let mut r = established(
            LinkConfig {
                client,
                ..cfg(10, LossModel::None)
            },
            3,
        );
        // "a" lost until 3.5 s: RTOs at 2 s (lost) and 4 s (through); backoff 2.
        r.run_until(ms(1_000));
        r.link.set_dead(ms(1_000), Dir::Up, true);
        r.send(ms(1_000), Dir::Up, b"a");
        r.run_until(ms(3_500));
        r.link.set_dead(ms(3_500), Dir::Up, false);
        r.drain(ms(3_500));
        // "b" lost once; "c" goes through (an RTT sample); "d" lost once.
        send_lost(&mut r, ms(10_000), Dir::Up, b"b");
        r.send(ms(20_000), Dir::Up, b"c");
        send_lost(&mut r, ms(30_000), Dir::Up, b"d");
        r.run_until(ms(40_000));
        r.resent()
            .into_iter()
            .map(|(t, seq, _)| (t.as_millis(), seq))
            .collect::<Vec<_>>()
    };
    // smoltcp: "b" waits 1 s << 2 = 4 s; after the sample from "c", "d" waits 1 s again.
    assert_eq!(
        run(Stack::smoltcp_embassy()),
        vec![(2_000, 1), (4_000, 1), (14_000, 2), (31_000, 4)]
    );
    // Linux's rule on the same stack: "b" waits the undoubled 1 s.
    let linux_rule = Stack {
        backoff_until_sample: false,
        rtt_forget_after_timeouts: 0,
        ..Stack::smoltcp_embassy()
    };
    assert_eq!(
        run(linux_rule),
        vec![(2_000, 1), (4_000, 1), (11_000, 2), (31_000, 4)]
    );
}

/// smoltcp's SYN backs off through the same RTO: after one retransmitted SYN (no sample) the
/// first lost data segment waits 2 s, not 1 s.
#[test]
fn smoltcp_starts_data_with_the_rto_its_syn_backed_off() {
    let mut r = Run::new(
        LinkConfig {
            client: Stack::smoltcp_embassy(),
            ..cfg(10, LossModel::None)
        },
        2,
    );
    r.link.set_dead(ms(0), Dir::Up, true);
    r.connect(ms(0));
    r.link.set_dead(ms(0), Dir::Up, false);
    r.drain(ms(0));
    r.run_until(ms(2_000));
    assert_eq!(r.established_at(), Some(ms(1_020)));
    send_lost(&mut r, ms(5_000), Dir::Up, b"a");
    r.run_until(ms(10_000));
    assert_eq!(r.resent(), vec![(ms(7_000), 1, Recovery::Rto)]);
}

/// After three timeouts without a sample smoltcp forgets srtt and rttvar (src/socket/tcp.rs
/// :262-273): on an 800 ms round trip whose variance had decayed (RTO at the 1 s floor), the
/// next sample starts again as a first one, srtt + 4 x srtt / 2 = 2.4 s.
#[test]
fn smoltcp_forgets_its_rtt_estimate_after_three_timeouts() {
    let mut r = Run::new(
        LinkConfig {
            client: Stack::smoltcp_embassy(),
            ..cfg(400, LossModel::None)
        },
        3,
    );
    r.connect(ms(0));
    for i in 0..30u64 {
        r.send(ms(2_000 + i * 2_000), Dir::Up, b"x");
    }
    r.run_until(ms(70_000));
    assert_eq!(r.link.rto(Dir::Up), Duration::from_millis(1_000));
    // Three timeouts (at +1, +3 and +7 s), then the path heals.
    r.link.set_dead(ms(70_000), Dir::Up, true);
    r.send(ms(70_000), Dir::Up, b"y");
    r.run_until(ms(77_500));
    r.link.set_dead(ms(77_500), Dir::Up, false);
    r.drain(ms(77_500));
    r.run_until(ms(100_000));
    assert_eq!(
        r.link.rto(Dir::Up),
        Duration::from_millis(1_000),
        "no sample yet"
    );
    r.send(ms(100_000), Dir::Up, b"z");
    r.run_until(ms(105_000));
    assert_eq!(r.link.rto(Dir::Up), Duration::from_millis(2_400));
}

/// A segment dropped in the sender's own firewall (`loss_at_sender`) never reaches the wire:
/// Linux keeps it unsent and it goes out with the next write, coalesced, not retransmitted.
#[test]
fn a_drop_at_the_sender_keeps_the_segment_for_the_next_write() {
    let c = LinkConfig {
        loss_at_sender: true,
        ..cfg(1, LossModel::None)
    };
    let mut r = established(c, 3);
    r.run_until(ms(1_000));
    r.link
        .set_loss(ms(1_000), LossModel::Bernoulli { loss: 1.0 });
    r.link.handle_send(ms(1_000), Dir::Up, b"one");
    r.drain(ms(1_000));
    r.link.set_loss(ms(1_000), LossModel::None);
    r.send(ms(1_050), Dir::Up, b"two");
    r.run_until(ms(2_000));
    assert_eq!(r.deliveries(Dir::Up), vec![(ms(1_051), 6)]);
    assert_eq!(r.retransmits(), vec![]);
}

/// With nothing in flight and no further write, the zero-window probe timer sends it after
/// max(RTO, 200 ms): SRTT 2 ms, so the RTO is 202 ms.
#[test]
fn a_drop_at_the_sender_with_nothing_in_flight_waits_for_the_probe_timer() {
    let c = LinkConfig {
        loss_at_sender: true,
        ..cfg(1, LossModel::None)
    };
    let mut r = established(c, 3);
    r.run_until(ms(1_000));
    r.link
        .set_loss(ms(1_000), LossModel::Bernoulli { loss: 1.0 });
    r.link.handle_send(ms(1_000), Dir::Up, b"one");
    r.drain(ms(1_000));
    r.link.set_loss(ms(1_000), LossModel::None);
    r.run_until(ms(2_000));
    assert_eq!(r.deliveries(Dir::Up), vec![(ms(1_203), 3)]);
    assert_eq!(r.retransmits(), vec![]);
}

/// Without `loss_at_sender` the same drop is a wire loss: the segment is retransmitted.
#[test]
fn the_same_drop_on_the_wire_is_retransmitted() {
    let mut r = established(cfg(1, LossModel::None), 3);
    r.run_until(ms(1_000));
    r.link
        .set_loss(ms(1_000), LossModel::Bernoulli { loss: 1.0 });
    r.link.handle_send(ms(1_000), Dir::Up, b"one");
    r.drain(ms(1_000));
    r.link.set_loss(ms(1_000), LossModel::None);
    r.run_until(ms(2_000));
    assert_eq!(r.delivered(Dir::Up), b"one");
    assert_eq!(r.retransmits().len(), 1);
}

fn linux_both_ends(loss_at_sender: bool) -> LinkConfig {
    LinkConfig {
        loss_at_sender,
        client: Stack::linux(),
        server: Stack::linux(),
        ..cfg(1, LossModel::None)
    }
}

impl Run {
    /// Instants of the pure ACKs sent in `dir` (lost or not).
    fn pure_acks(&self, dir: Dir) -> Vec<Instant> {
        self.outs
            .iter()
            .filter_map(|(_, o)| match o {
                Output::Wire(w)
                    if w.dir == dir && w.payload.is_empty() && w.flags.0 == TcpFlags::ACK =>
                {
                    Some(w.at)
                }
                _ => None,
            })
            .collect()
    }
}

/// Linux acknowledges a small pushed segment when its application reads it (here: on delivery),
/// unless the socket is in pingpong mode because it answered within the delayed-ACK time of a
/// receipt (`__tcp_cleanup_rbuf()`, `tcp_event_data_sent()`, threshold 1); then the delayed ACK
/// fires 40 ms later and leaves pingpong mode, so the next segment is acknowledged at once again
/// (the real capture: the broker's ACK 41-44 ms after the PUBLISH that follows a PINGRESP).
#[test]
fn linux_acks_at_the_read_unless_it_just_answered() {
    let mut r = established(linux_both_ends(false), 3);
    // 20 segments 100 ms apart use up the 16 quick ACKs; each is acknowledged at once.
    for i in 0..20u64 {
        r.send(ms(1_000 + i * 100), Dir::Up, b"publish");
    }
    r.run_until(ms(3_500));
    let acks = r.pure_acks(Dir::Down);
    let last: Vec<Instant> = acks.iter().copied().filter(|t| *t >= ms(2_850)).collect();
    assert_eq!(last, vec![ms(2_901)], "at the read, 1 ms after the send");
    // The server answers within 40 ms of a receipt (a PINGRESP): pingpong mode.
    r.send(ms(4_000), Dir::Up, b"pingreq");
    r.send(ms(4_001), Dir::Down, b"pingresp");
    r.send(ms(4_100), Dir::Up, b"publish");
    r.send(ms(4_300), Dir::Up, b"publish");
    r.run_until(ms(5_000));
    let after: Vec<Instant> = r
        .pure_acks(Dir::Down)
        .into_iter()
        .filter(|t| *t >= ms(4_000))
        .collect();
    // The PINGREQ is acknowledged at its read, before the answer; the next PUBLISH waits for
    // the delayed ACK (40 ms), which leaves pingpong mode; the one after is acknowledged at the
    // read again.
    assert_eq!(after, vec![ms(4_001), ms(4_141), ms(4_301)]);
}

/// Linux counts the ACK a data segment carries as sent before the IP layer sees the segment
/// (`__tcp_transmit_skb()`: `tcp_event_ack_sent()` first), so a reply dropped in the sender's
/// own firewall takes its ACK with it: no delayed ACK follows, and the peer hears nothing until
/// its own retransmission (the real capture: a broker's PUBACK dropped, the next packet from it
/// the PUBACK 200-240 ms later, no pure ACK between).
#[test]
fn a_reply_dropped_at_the_sender_takes_its_ack_with_it() {
    let mut r = established(linux_both_ends(true), 3);
    for i in 0..20u64 {
        r.send(ms(1_000 + i * 100), Dir::Up, b"publish");
        r.send(ms(1_001 + i * 100), Dir::Down, b"puback");
    }
    r.run_until(ms(4_000));
    // In pingpong mode: the next PUBLISH's ACK is delayed, and its PUBACK is dropped.
    r.send(ms(4_000), Dir::Up, b"publish");
    r.run_until(ms(4_001));
    r.link
        .set_loss(ms(4_001), LossModel::Bernoulli { loss: 1.0 });
    r.link.handle_send(ms(4_001), Dir::Down, b"puback");
    r.drain(ms(4_001));
    r.link.set_loss(ms(4_001), LossModel::None);
    r.run_until(ms(5_000));
    let acks: Vec<Instant> = r
        .pure_acks(Dir::Down)
        .into_iter()
        .filter(|t| *t >= ms(4_000))
        .collect();
    assert!(
        acks.iter().all(|t| *t > ms(4_150)),
        "no delayed ACK 40 ms after the drop: {acks:?}"
    );
    // The PUBLISH is resent (its ACK never came), and the PUBACK then goes out.
    assert_eq!(r.retransmits().len(), 1, "{:?}", r.net_lines());
    assert_eq!(r.delivered(Dir::Down).len(), 21 * 6);
}
