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
        let d = Duration::from_millis(self.stack(side).fin_wait2_ms);
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
        if self.cut(dir) {
            return true;
        }
        self.random_loss(dir)
    }

    /// A fault (partition, half-open) loses everything in `dir`.
    pub(super) fn cut(&self, dir: Dir) -> bool {
        !self.partition.is_empty() || !self.streams[dir.idx()].dead.is_empty()
    }

    /// The loss model's draw for one transmission in `dir`.
    pub(super) fn random_loss(&mut self, dir: Dir) -> bool {
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
        let jitter_us = self.cfg.jitter_us;
        let extra = if jitter_us == 0 {
            0
        } else {
            self.rng.next_u64() % (jitter_us + 1)
        };
        Duration::from_micros(self.cfg.latency_us.saturating_add(extra))
    }

    /// The client's SYN timer: doubling (Linux, smoltcp) or the initial RTO each time (lwIP).
    pub(super) fn syn_rto(&self, attempt: u32) -> Duration {
        let st = &self.cfg.client;
        let base = st.rto_initial_ms.saturating_mul(1_000);
        let shift = if st.syn_backoff { attempt.min(40) } else { 0 };
        let us = base.saturating_mul(1u64 << shift);
        Duration::from_micros(us.min(st.rto_max_ms.saturating_mul(1_000)))
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

    /// Sends what the sender of `dir` may send at `at`: segments an RTO marked lost first, then
    /// new data in MSS segments, each within the congestion and receive windows (one segment
    /// always when nothing is in flight); a segment smaller than the MSS waits while anything is
    /// unacknowledged if the stack runs Nagle (not once the application closed: Linux
    /// `tcp_send_fin()` pushes with `TCP_NAGLE_OFF`); then the FIN once everything is sent.
    pub(super) fn try_send(&mut self, at: Instant, dir: Dir) {
        let (mss, nagle) = {
            let st = self.stack(dir.sender());
            (st.mss_bytes.max(1), st.nagle)
        };
        let rwnd = self.stack(dir.receiver()).rcv_wnd_bytes;
        loop {
            let s = &mut self.streams[dir.idx()];
            if s.xmit_failed {
                return;
            }
            let flight: u64 = s
                .segs
                .iter()
                .filter(|g| !g.acked && !g.lost)
                .map(|g| g.seq_len())
                .sum();
            let wnd = s.cwnd.min(rwnd);
            if let Some(i) = s.segs.iter().position(|g| g.lost && !g.acked) {
                let (off, len) = s.segs.get(i).map_or((0, 0), |g| (g.off, g.seq_len()));
                if flight > 0 && flight.saturating_add(len) > wnd {
                    return;
                }
                if let Some(g) = s.segs.get_mut(i) {
                    g.lost = false;
                }
                self.transmit(at, dir, off, Recovery::Rto);
                self.arm_timer(at, dir, false);
                continue;
            }
            if s.unsent.is_empty() {
                if s.fin_wanted && !s.fin_queued {
                    self.send_fin(at, dir);
                }
                return;
            }
            let len = s.unsent.len().min(mss);
            if flight > 0 && flight.saturating_add(len as u64) > wnd {
                return;
            }
            if nagle && len < mss && !s.fin_wanted && s.segs.iter().any(|g| !g.acked) {
                return;
            }
            let data: Vec<u8> = s.unsent.drain(..len).collect();
            let off = s.snd_nxt;
            self.push_seg(at, dir, off, data, false);
        }
    }

    pub(super) fn send_fin(&mut self, at: Instant, dir: Dir) {
        let s = &mut self.streams[dir.idx()];
        s.fin_queued = true;
        let off = s.snd_nxt;
        self.net(at, NetEvent::FinSent { dir });
        self.push_seg(at, dir, off, Vec::new(), true);
    }

    pub(super) fn push_seg(&mut self, at: Instant, dir: Dir, off: u64, data: Vec<u8>, fin: bool) {
        let s = &mut self.streams[dir.idx()];
        let seg = Seg {
            off,
            data,
            fin,
            tx_count: 0,
            first_tx: at,
            last_tx: at,
            acked: false,
            lost: false,
        };
        s.snd_nxt = seg.end();
        s.segs.push_back(seg);
        self.transmit(at, dir, off, Recovery::Rto);
        // RFC 8985 7.2: (re)arm the probe after sending new data; RFC 6298 5.1: start the RTO
        // only if it is not running.
        self.arm_timer(at, dir, false);
    }

    /// A pure ACK from the receiver of `dir` now (cumulative, plus the segment at `sack_off`).
    pub(super) fn send_ack(&mut self, at: Instant, dir: Dir, sack_off: u64) {
        let s = &mut self.streams[dir.idx()];
        s.ack_pending = 0;
        s.ack_pending_bytes = 0;
        s.pushed = 0;
        s.delack_gen += 1;
        let back = dir.opposite();
        let ack_off = s.rcv_nxt;
        let ack = s.wire_seq(ack_off);
        let b = &self.streams[back.idx()];
        let seq = b.wire_seq(b.snd_nxt);
        let lost = self.decide_loss(back);
        self.wire(at, back, TcpFlags::ACK, seq, ack, Vec::new(), lost);
        if lost {
            self.net(
                at,
                NetEvent::AckLost {
                    dir: back,
                    ack: ack_off + 1,
                },
            );
        } else {
            let d = self.delay();
            self.schedule(
                at + d,
                Ev::AckArrive {
                    dir,
                    ack_off,
                    sack_off,
                },
            );
        }
    }

    /// The first tick of a timer with period `tick_us` strictly after `at`, the timer's phase
    /// taken from `salt` (an ISN: deterministic, no extra draw), then `n - 1` ticks more.
    pub(super) fn tick_after(at: Instant, tick_us: u64, salt: u32, n: u64) -> Instant {
        let phase = u64::from(salt) % tick_us.max(1);
        let t = at.as_micros();
        let first = if t < phase {
            phase
        } else {
            phase + ((t - phase) / tick_us + 1) * tick_us
        };
        Instant::from_micros(first.saturating_add(n.saturating_sub(1).saturating_mul(tick_us)))
    }

    /// Ticks of a timer with period `tick_us` (phase from `salt`, as [`Link::tick_after`]) in
    /// `(from, to]`.
    pub(super) fn ticks_in(from: Instant, to: Instant, tick_us: u64, salt: u32) -> i64 {
        let tick = tick_us.max(1);
        let phase = u64::from(salt) % tick;
        let index = |t: Instant| {
            let t = t.as_micros();
            if t < phase {
                0
            } else {
                (t - phase) / tick + 1
            }
        };
        index(to).saturating_sub(index(from)) as i64
    }

    /// The RTO for `dir` with the connection's backoff applied (RFC 6298 5.5), capped.
    pub(super) fn rto_backed_off(&self, dir: Dir) -> Duration {
        let base = self.rto(dir).as_micros();
        let st = self.stack(dir.sender());
        let b = self.streams[dir.idx()]
            .backoff
            .min(st.backoff_shift_max)
            .min(40);
        let max = st.rto_max_ms.saturating_mul(1_000);
        Duration::from_micros(base.saturating_mul(1u64 << b).min(max))
    }

    /// Arms the connection's one retransmission timer in `dir`: a tail-loss probe (RFC 8985
    /// 7.2) when allowed and earlier than the RTO, else the RTO (RFC 6298). Cancels it when
    /// nothing is outstanding. `restart_rto` restarts the RTO from `at` (RFC 6298 5.3).
    pub(super) fn arm_timer(&mut self, at: Instant, dir: Dir, restart_rto: bool) {
        let rto = self.rto_backed_off(dir);
        let (tick_us, rack_tlp) = {
            let st = self.stack(dir.sender());
            (st.rto_tick_ms.saturating_mul(1_000), st.rack_tlp)
        };
        let s = &mut self.streams[dir.idx()];
        s.timer_gen += 1;
        let flight = s.segs.iter().filter(|g| !g.acked).count();
        if flight == 0 {
            s.rto_at = None;
            return;
        }
        let rto_at = match s.rto_at {
            Some(t) if !restart_rto => t,
            // lwIP: the RTO counts whole slow-timer ticks from the send.
            _ if tick_us > 0 => {
                let n = rto.as_micros().div_ceil(tick_us).max(1);
                Self::tick_after(at, tick_us, s.isn, n)
            }
            _ => at + rto,
        };
        s.rto_at = Some(rto_at);
        let mut deadline = rto_at;
        s.timer_pto = false;
        if let (Some(srtt), false, 0, true) = (s.srtt_us, s.tlp_out, s.backoff, rack_tlp) {
            let pto_us = if flight == 1 {
                srtt.saturating_mul(2).saturating_add(WC_DEL_ACK_US)
            } else {
                srtt.saturating_mul(2).max(TLP_MIN_US)
            };
            // RFC 8985 7.2 caps the PTO at the RTO, the probe then firing at the RTO instant in
            // its place; Linux too (`tcp_schedule_loss_probe()`: "If the RTO formula yields an
            // earlier time, then use that time", net/ipv4/tcp_output.c). The probe does not back
            // off: the RTO after it restarts from the probe, undoubled.
            let pto_at = at + Duration::from_micros(pto_us);
            deadline = pto_at.min(rto_at);
            s.timer_pto = true;
        }
        let gen = s.timer_gen;
        self.schedule(deadline, Ev::Timer { dir, gen });
    }

    pub(super) fn transmit(&mut self, at: Instant, dir: Dir, off: u64, by: Recovery) {
        // A first transmission dropped in the sender's own firewall stays unsent (see
        // LinkConfig::loss_at_sender); the draw is the one decide_loss() would make.
        let first_data = {
            let s = &self.streams[dir.idx()];
            s.find(off)
                .and_then(|i| s.segs.get(i))
                .is_some_and(|g| g.tx_count == 0 && !g.fin && !g.data.is_empty())
        };
        let ack = self.ack_for(dir);
        let (pingpong_thresh, ato_ms) = {
            let st = self.stack(dir.sender());
            (st.pingpong_thresh, st.delack_ms)
        };
        // The segment carries the ACK a delayed ACK was waiting to send (piggyback); the
        // generation moves on either way, so that seg_arrive() sees an ACK went out.
        let o = &mut self.streams[dir.opposite().idx()];
        o.ack_pending = 0;
        o.ack_pending_bytes = 0;
        o.delack_gen += 1;
        o.pushed = 0;
        // New data sent within ato of this end's last receipt: a reply (Linux
        // tcp_event_data_sent(), see Stack::pingpong_thresh).
        if pingpong_thresh > 0
            && first_data
            && o.last_rcv
                .is_some_and(|t| at.saturating_since(t) < Duration::from_millis(ato_ms))
        {
            o.pingpong = o.pingpong.saturating_add(1);
        }
        // Linux __tcp_transmit_skb() (net/ipv4/tcp_output.c) counts the ACK it carries as sent
        // (tcp_event_ack_sent(): the delayed ACK is cancelled) and the data as sent
        // (tcp_event_data_sent()) before the IP layer is called, so a first transmission the
        // sender's firewall drops takes its ACK with it: the peer hears nothing until the next
        // chance (see unsend()).
        let mut drawn = None;
        if self.cfg.loss_at_sender && first_data && !self.cut(dir) {
            if self.random_loss(dir) {
                self.unsend(at, dir, off);
                return;
            }
            drawn = Some(false);
        }
        let o = &self.streams[dir.opposite().idx()];
        let ack_off = o.rcv_nxt;
        let s = &mut self.streams[dir.idx()];
        let Some(i) = s.find(off) else { return };
        let Some(seg) = s.segs.get_mut(i) else { return };
        seg.lost = false;
        seg.tx_count = seg.tx_count.saturating_add(1);
        let attempt = seg.tx_count;
        let after_us = at.saturating_since(seg.last_tx).as_micros();
        seg.last_tx = at;
        let (payload, fin, len) = (seg.data.clone(), seg.fin, seg.data.len());
        let seq = s.wire_seq(off);
        let rel = off + 1;
        let lost = match drawn {
            Some(l) => l,
            None => self.decide_loss(dir),
        };
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

    /// The new segment at `off` (the last one) was dropped before the wire by the sender's
    /// firewall: Linux's `tcp_write_xmit()` leaves it at the head of the unsent queue. Nothing
    /// more is tried until the next chance (a write, an ACK); with nothing in flight the
    /// zero-window probe timer fires after max(RTO, `TCP_RTO_MIN`) << backoff
    /// (`tcp_check_probe_timer()`, `tcp_probe0_when()`, include/net/tcp.h), and a probe dropped
    /// again doubles it (`tcp_send_probe0()`, net/ipv4/tcp_output.c).
    pub(super) fn unsend(&mut self, at: Instant, dir: Dir, off: u64) {
        let rto_min_us = self.stack(dir.sender()).rto_min_ms.saturating_mul(1_000);
        let max_shift = self.stack(dir.sender()).backoff_shift_max;
        let s = &mut self.streams[dir.idx()];
        if s.segs.back().map(|g| g.off) != Some(off) {
            return;
        }
        let Some(seg) = s.segs.pop_back() else { return };
        s.snd_nxt = off;
        for b in seg.data.iter().rev() {
            s.unsent.push_front(*b);
        }
        s.xmit_failed = true;
        if s.probing {
            s.backoff = s.backoff.saturating_add(1).min(max_shift);
        }
        let len = seg.data.len();
        self.net(
            at,
            NetEvent::SegmentLost {
                dir,
                seq: off + 1,
                len,
                attempt: 1,
            },
        );
        let idle = self.streams[dir.idx()].segs.iter().all(|g| g.acked);
        if idle {
            let base = self.rto_backed_off(dir).as_micros().max(rto_min_us);
            let s = &mut self.streams[dir.idx()];
            s.probe0_gen += 1;
            let gen = s.probe0_gen;
            self.schedule(at + Duration::from_micros(base), Ev::Probe0 { dir, gen });
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
                if attempt >= self.cfg.client.syn_retries_max {
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
                    // The attempt was freed: the SYN-ACK matches no PCB and gets a RST whose
                    // sequence number is the SYN-ACK's ACK (esp-lwip src/core/tcp_in.c:585-594,
                    // `tcp_rst(NULL, ackno, ..)`). The server's half-open connection ends there.
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
                // smoltcp backs off its SYN through the same estimator (`on_retransmit()`
                // doubles `rto`, src/socket/tcp.rs:251-260) and the SYN-ACK of a retransmitted
                // SYN gives no sample: its first data RTO is still doubled per SYN resent.
                if self.cfg.client.backoff_until_sample && self.syn_attempt > 0 {
                    let (max, forget) = (
                        self.cfg.client.backoff_shift_max,
                        self.cfg.client.rtt_forget_after_timeouts,
                    );
                    let s = &mut self.streams[Dir::Up.idx()];
                    s.backoff = self.syn_attempt.min(max);
                    s.rtt_forget = forget > 0 && self.syn_attempt >= forget;
                }
                for dir in [Dir::Up, Dir::Down] {
                    // No RTT sample from a handshake that needed a retransmitted SYN: Linux
                    // starts the data RTO at TCP_TIMEOUT_FALLBACK (tcp_init_transfer()).
                    if self.syn_attempt > 0 {
                        let fb = self.stack(dir.sender()).syn_fallback_rto_ms;
                        self.streams[dir.idx()].rto_fallback_us = fb.map(|v| v * 1_000);
                    }
                    let s = &mut self.streams[dir.idx()];
                    let pending = std::mem::take(&mut s.pending);
                    s.unsent.extend(pending);
                    if std::mem::take(&mut s.pending_fin) {
                        s.fin_wanted = true;
                    }
                    self.try_send(at, dir);
                }
            }
            Ev::SegArrive { dir, off, ack_off } => {
                // The segment's ACK field acknowledges the opposite direction (piggyback); new
                // data it releases goes out once the segment's own data is taken
                // (`send_after_data`, sent from seg_arrive()).
                self.send_after_data = Some(None);
                if !self.aborted[dir.receiver().idx()] {
                    self.ack_arrive(at, dir.opposite(), ack_off, u64::MAX);
                }
                self.seg_arrive(at, dir, off);
                if let Some(Some(d)) = self.send_after_data.take() {
                    self.try_send(at, d);
                }
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
            Ev::Probe0 { dir, gen } => {
                let s = &mut self.streams[dir.idx()];
                if s.probe0_gen != gen
                    || self.aborted[dir.sender().idx()]
                    || s.unsent.is_empty()
                    || s.segs.iter().any(|g| !g.acked)
                {
                    return;
                }
                s.xmit_failed = false;
                s.probing = true;
                self.try_send(at, dir);
                self.streams[dir.idx()].probing = false;
            }
            Ev::DelAck { dir, gen } => {
                let s = &self.streams[dir.idx()];
                if s.delack_gen == gen && s.ack_pending > 0 && !self.aborted[dir.receiver().idx()] {
                    // Linux tcp_delack_timer_handler(): a delayed ACK that fires leaves
                    // pingpong mode (Stack::pingpong_thresh).
                    if self.stack(dir.receiver()).pingpong_thresh > 0 {
                        self.streams[dir.idx()].pingpong = 0;
                    }
                    self.send_ack(at, dir, u64::MAX);
                }
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
