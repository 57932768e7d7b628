//! The TCP machinery of a [`Link`]: time, the event queue, loss and delay draws, the handshake,
//! segmentation, transmission, the retransmission timers and the processing of each event.

use super::*;

impl Link {
    pub(super) fn advance(&mut self, now: Instant) {
        if now > self.now {
            self.now = now;
        }
        while let Some(entry) = self.events.first_entry() {
            if entry.key().0 > self.now {
                break;
            }
            let ((at, _), ev) = entry.remove_entry();
            self.process(at, ev);
            // An abandoned connect with nothing more in flight is gone for good.
            if self.abandoned && self.state == State::SynSent && self.events.is_empty() {
                self.state = State::Failed;
                self.out.push_back(Output::ConnectFailed);
            }
        }
    }

    /// A RST from `side` on the wire (sequence number: its next byte).
    pub(super) fn send_rst(&mut self, at: Instant, side: Side) {
        let dir = side.sending();
        let s = &self.streams[dir.idx()];
        let seq = s.wire_seq(s.snd_nxt);
        let lost = self.decide_loss(dir);
        self.wire(at, dir, TcpFlags::RST, seq, 0, Vec::new(), lost);
    }

    /// The client's application gave up the connect in SYN-SENT: no more SYNs; a SYN or SYN-ACK
    /// already on its way may still arrive (and is answered with RST).
    pub(super) fn abandon(&mut self) {
        if self.abandoned {
            return;
        }
        self.abandoned = true;
        self.net(self.now, NetEvent::ConnectAbandoned);
        self.events
            .retain(|_, ev| !matches!(ev, Ev::SynTimeout { .. }));
        if self.events.is_empty() {
            self.state = State::Failed;
            self.out.push_back(Output::ConnectFailed);
        }
    }

    /// Arms `side`'s FIN-WAIT-2 timer once its application closed, its FIN is acknowledged and
    /// the peer's FIN has not arrived.
    pub(super) fn check_fin_wait2(&mut self, at: Instant, side: Side) {
        let dir = side.sending();
        let s = &self.streams[dir.idx()];
        let fin_acked = s.fin_queued && s.segs.iter().all(|g| g.acked);
        if !self.app_closed[side.idx()]
            || self.fin_wait2_armed[side.idx()]
            || !fin_acked
            || self.peer_fin[dir.opposite().idx()]
        {
            return;
        }
        self.fin_wait2_armed[side.idx()] = true;
        let d = Duration::from_millis(self.cfg.fin_wait2_ms);
        self.schedule(at + d, Ev::FinWait2 { side });
    }

    pub(super) fn schedule(&mut self, at: Instant, ev: Ev) {
        self.ev_counter += 1;
        self.events.insert((at, self.ev_counter), ev);
    }

    pub(super) fn net(&mut self, at: Instant, event: NetEvent) {
        self.out.push_back(Output::Net(NetLine { at, event }));
    }

    #[allow(clippy::too_many_arguments)]
    pub(super) fn wire(
        &mut self,
        at: Instant,
        dir: Dir,
        flags: u8,
        seq: u32,
        ack: u32,
        p: Vec<u8>,
        lost: bool,
    ) {
        self.out.push_back(Output::Wire(Wire {
            at,
            dir,
            flags: TcpFlags(flags),
            seq,
            ack,
            payload: p,
            lost,
        }));
    }

    /// Our own ACK number as the sender of `dir`: the next byte expected in the other direction.
    pub(super) fn ack_for(&self, dir: Dir) -> u32 {
        let o = &self.streams[dir.opposite().idx()];
        o.wire_seq(o.rcv_nxt)
    }

    pub(super) fn chance(&mut self, p: f64) -> bool {
        if p <= 0.0 {
            return false;
        }
        if p >= 1.0 {
            // Still draw, so a loss rate of 1.0 consumes the stream like any other.
            self.rng.next_u32();
            return true;
        }
        (self.rng.next_u32() as f64) < p * 4_294_967_296.0
    }

    pub(super) fn decide_loss(&mut self, dir: Dir) -> bool {
        if self.partition || self.streams[dir.idx()].dead {
            return true;
        }
        match self.cfg.loss {
            LossModel::None => false,
            LossModel::Bernoulli { loss } => self.chance(loss),
            LossModel::GilbertElliott {
                p_good_to_bad,
                p_bad_to_good,
                loss_good,
                loss_bad,
            } => {
                let bad = self.streams[dir.idx()].ge_bad;
                let lost = self.chance(if bad { loss_bad } else { loss_good });
                let flip = self.chance(if bad { p_bad_to_good } else { p_good_to_bad });
                if flip {
                    self.streams[dir.idx()].ge_bad = !bad;
                }
                lost
            }
        }
    }

    pub(super) fn delay(&mut self) -> Duration {
        let jitter_us = self.cfg.jitter_ms.saturating_mul(1_000);
        let extra = if jitter_us == 0 {
            0
        } else {
            self.rng.next_u64() % (jitter_us + 1)
        };
        Duration::from_micros(
            self.cfg
                .latency_ms
                .saturating_mul(1_000)
                .saturating_add(extra),
        )
    }

    pub(super) fn syn_rto(&self, attempt: u32) -> Duration {
        let base = self.cfg.rto_initial_ms.saturating_mul(1_000);
        let us = base.saturating_mul(1u64 << attempt.min(40));
        Duration::from_micros(us.min(self.cfg.rto_max_ms.saturating_mul(1_000)))
    }

    pub(super) fn send_syn(&mut self, at: Instant, attempt: u32) {
        self.syn_attempt = attempt;
        self.syn_tx_at = at;
        self.schedule(at + self.syn_rto(attempt), Ev::SynTimeout { attempt });
        if self.aborted[Side::Client.idx()] {
            return;
        }
        let seq = self.streams[Dir::Up.idx()].isn;
        let lost = self.decide_loss(Dir::Up);
        self.wire(at, Dir::Up, TcpFlags::SYN, seq, 0, Vec::new(), lost);
        self.net(
            at,
            NetEvent::SynSent {
                attempt: attempt + 1,
            },
        );
        if lost {
            self.net(
                at,
                NetEvent::SynLost {
                    attempt: attempt + 1,
                },
            );
        } else {
            let d = self.delay();
            self.schedule(at + d, Ev::SynArrive { attempt });
        }
    }

    pub(super) fn send_now(&mut self, dir: Dir, bytes: &[u8]) {
        let mss = self.cfg.mss_bytes.max(1);
        for chunk in bytes.chunks(mss) {
            let off = self.streams[dir.idx()].snd_nxt;
            self.push_seg(dir, off, chunk.to_vec(), false);
        }
    }

    pub(super) fn send_fin(&mut self, dir: Dir) {
        let s = &mut self.streams[dir.idx()];
        s.fin_queued = true;
        let off = s.snd_nxt;
        self.net(self.now, NetEvent::FinSent { dir });
        self.push_seg(dir, off, Vec::new(), true);
    }

    pub(super) fn push_seg(&mut self, dir: Dir, off: u64, data: Vec<u8>, fin: bool) {
        let at = self.now;
        let s = &mut self.streams[dir.idx()];
        let seg = Seg {
            off,
            data,
            fin,
            tx_count: 0,
            first_tx: at,
            last_tx: at,
            acked: false,
        };
        s.snd_nxt = seg.end();
        s.segs.push_back(seg);
        self.transmit(at, dir, off, Recovery::Rto);
        // RFC 8985 7.2: (re)arm the probe after sending new data; RFC 6298 5.1: start the RTO
        // only if it is not running.
        self.arm_timer(at, dir, false);
    }

    /// The RTO for `dir` with the connection's backoff applied (RFC 6298 5.5), capped.
    pub(super) fn rto_backed_off(&self, dir: Dir) -> Duration {
        let base = self.rto(dir).as_micros();
        let b = self.streams[dir.idx()].backoff.min(40);
        let max = self.cfg.rto_max_ms.saturating_mul(1_000);
        Duration::from_micros(base.saturating_mul(1u64 << b).min(max))
    }

    /// Arms the connection's one retransmission timer in `dir`: a tail-loss probe (RFC 8985
    /// 7.2) when allowed and earlier than the RTO, else the RTO (RFC 6298). Cancels it when
    /// nothing is outstanding. `restart_rto` restarts the RTO from `at` (RFC 6298 5.3).
    pub(super) fn arm_timer(&mut self, at: Instant, dir: Dir, restart_rto: bool) {
        let rto = self.rto_backed_off(dir);
        let s = &mut self.streams[dir.idx()];
        s.timer_gen += 1;
        let flight = s.segs.iter().filter(|g| !g.acked).count();
        if flight == 0 {
            s.rto_at = None;
            return;
        }
        let rto_at = match s.rto_at {
            Some(t) if !restart_rto => t,
            _ => at + rto,
        };
        s.rto_at = Some(rto_at);
        let mut deadline = rto_at;
        s.timer_pto = false;
        if let (Some(srtt), false, 0) = (s.srtt_us, s.tlp_out, s.backoff) {
            let pto_us = if flight == 1 {
                srtt.saturating_mul(2).saturating_add(WC_DEL_ACK_US)
            } else {
                srtt.saturating_mul(2).max(TLP_MIN_US)
            };
            // RFC 8985 7.2 caps the PTO at the RTO, the probe then firing at the RTO instant in
            // its place (Linux too). Simplification: a probe that could only fire then is left
            // to the RTO (same segment, same instant, but the backoff doubles).
            let pto_at = at + Duration::from_micros(pto_us);
            if pto_at < rto_at {
                deadline = pto_at;
                s.timer_pto = true;
            }
        }
        let gen = s.timer_gen;
        self.schedule(deadline, Ev::Timer { dir, gen });
    }

    pub(super) fn transmit(&mut self, at: Instant, dir: Dir, off: u64, by: Recovery) {
        let ack = self.ack_for(dir);
        let ack_off = self.streams[dir.opposite().idx()].rcv_nxt;
        let s = &mut self.streams[dir.idx()];
        let Some(i) = s.find(off) else { return };
        let Some(seg) = s.segs.get_mut(i) else { return };
        seg.tx_count = seg.tx_count.saturating_add(1);
        let attempt = seg.tx_count;
        let after_us = at.saturating_since(seg.last_tx).as_micros();
        seg.last_tx = at;
        let (payload, fin, len) = (seg.data.clone(), seg.fin, seg.data.len());
        let seq = s.wire_seq(off);
        let rel = off + 1;
        let lost = self.decide_loss(dir);
        let flags = TcpFlags::ACK | if fin { TcpFlags::FIN } else { TcpFlags::PSH };
        self.wire(at, dir, flags, seq, ack, payload, lost);
        if attempt > 1 {
            self.net(
                at,
                NetEvent::Retransmit {
                    dir,
                    seq: rel,
                    len,
                    attempt,
                    after_us,
                    by,
                },
            );
        }
        if lost {
            self.net(
                at,
                NetEvent::SegmentLost {
                    dir,
                    seq: rel,
                    len,
                    attempt,
                },
            );
        } else {
            let d = self.delay();
            self.schedule(at + d, Ev::SegArrive { dir, off, ack_off });
        }
    }

    pub(super) fn reset(&mut self, at: Instant, reason: ResetReason) {
        self.state = State::Reset;
        self.events.clear();
        self.net(at, NetEvent::Reset { reason });
        self.out.push_back(Output::Reset { reason });
    }

    pub(super) fn process(&mut self, at: Instant, ev: Ev) {
        if self.is_dead() {
            return;
        }
        match ev {
            Ev::SynTimeout { attempt } => {
                if self.state != State::SynSent || attempt != self.syn_attempt || self.abandoned {
                    return;
                }
                if attempt >= self.cfg.syn_retries_max {
                    self.state = State::Failed;
                    self.events.clear();
                    self.net(
                        at,
                        NetEvent::ConnectFailed {
                            attempts: attempt + 1,
                        },
                    );
                    self.out.push_back(Output::ConnectFailed);
                } else {
                    self.send_syn(at, attempt + 1);
                }
            }
            Ev::SynArrive { attempt } => {
                if self.aborted[Side::Server.idx()] {
                    // A rebooted server answers a retransmitted SYN of a handshake begun with its
                    // previous life. A real host would accept it as a new connection; here that
                    // connection is bound to the old incarnation, so it is refused (RST) and the
                    // client connects again, at about the same moment.
                    if self.rebooted[Side::Server.idx()] {
                        self.reset(at, ResetReason::PeerRebooted { side: Side::Server });
                    }
                    return;
                }
                let seq = self.streams[Dir::Down.idx()].isn;
                let ack = self.streams[Dir::Up.idx()].isn.wrapping_add(1);
                let lost = self.decide_loss(Dir::Down);
                self.wire(
                    at,
                    Dir::Down,
                    TcpFlags::SYN | TcpFlags::ACK,
                    seq,
                    ack,
                    Vec::new(),
                    lost,
                );
                if lost {
                    self.net(
                        at,
                        NetEvent::SynAckLost {
                            attempt: attempt + 1,
                        },
                    );
                } else {
                    let d = self.delay();
                    self.schedule(at + d, Ev::SynAckArrive { attempt });
                }
            }
            Ev::SynAckArrive { attempt } => {
                if self.state != State::SynSent || self.aborted[Side::Client.idx()] {
                    return;
                }
                if self.abandoned {
                    // The attempt was freed: the SYN-ACK matches nothing and gets a RST.
                    self.send_rst(at, Side::Client);
                    self.reset(at, ResetReason::LateSynAck);
                    return;
                }
                self.state = State::Established;
                let rtt_us = at.saturating_since(self.syn_tx_at).as_micros();
                // Karn: no sample from a retransmitted SYN. Latency is symmetric in this model,
                // so the client's sample seeds both directions' estimators.
                if attempt == 0 && attempt == self.syn_attempt {
                    self.streams[0].rtt_sample(rtt_us);
                    self.streams[1].rtt_sample(rtt_us);
                }
                let seq = self.streams[Dir::Up.idx()].wire_seq(0);
                let ack = self.streams[Dir::Down.idx()].wire_seq(0);
                let lost = self.decide_loss(Dir::Up);
                // A lost handshake ACK is harmless here: every data segment carries the ACK.
                self.wire(at, Dir::Up, TcpFlags::ACK, seq, ack, Vec::new(), lost);
                self.net(at, NetEvent::Established { rtt_us });
                self.out.push_back(Output::Established);
                let saved = self.now;
                self.now = at;
                for dir in [Dir::Up, Dir::Down] {
                    let pending = std::mem::take(&mut self.streams[dir.idx()].pending);
                    if !pending.is_empty() {
                        self.send_now(dir, &pending);
                    }
                    if std::mem::take(&mut self.streams[dir.idx()].pending_fin) {
                        self.send_fin(dir);
                    }
                }
                self.now = saved;
            }
            Ev::SegArrive { dir, off, ack_off } => {
                // The segment's ACK field acknowledges the opposite direction (piggyback).
                if !self.aborted[dir.receiver().idx()] {
                    self.ack_arrive(at, dir.opposite(), ack_off, u64::MAX);
                }
                self.seg_arrive(at, dir, off);
            }
            Ev::AckArrive {
                dir,
                ack_off,
                sack_off,
            } => self.ack_arrive(at, dir, ack_off, sack_off),
            Ev::Timer { dir, gen } => {
                if self.aborted[dir.sender().idx()] || self.streams[dir.idx()].timer_gen != gen {
                    return;
                }
                if self.streams[dir.idx()].timer_pto {
                    self.on_pto(at, dir);
                } else {
                    self.on_rto(at, dir);
                }
            }
            Ev::Rack { dir, gen } => {
                if self.aborted[dir.sender().idx()] || self.streams[dir.idx()].rack_gen != gen {
                    return;
                }
                self.detect_loss(at, dir);
            }
            Ev::FinWait2 { side } => {
                if self.peer_fin[side.sending().opposite().idx()] || self.aborted[side.idx()] {
                    return;
                }
                // The side forgets the connection: it sends nothing more and answers the
                // peer's next segment with RST.
                self.net(at, NetEvent::FinWait2Timeout { side });
                self.aborted[side.idx()] = true;
                self.forgot[side.idx()] = true;
            }
        }
    }
}
