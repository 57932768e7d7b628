//! Arrivals and loss recovery of a [`Link`]: segments and ACKs reaching their receiver, the
//! tail-loss probe and the RTO firing, and RACK's loss detection.

use super::*;

impl Link {
    /// RFC 8985 7.3: the probe sends new data if some is waiting (Nagle or a local drop held
    /// it) and the windows allow, one segment, past Nagle (Linux `tcp_send_loss_probe()` →
    /// `tcp_write_xmit(.., TCP_NAGLE_OFF, 2, ..)`); else it retransmits the last unacknowledged
    /// segment. Then the RTO is armed afresh; no second probe until an ACK brings news.
    pub(super) fn on_pto(&mut self, at: Instant, dir: Dir) {
        let mss = self.stack(dir.sender()).mss_bytes.max(1);
        let rwnd = self.stack(dir.receiver()).rcv_wnd_bytes;
        let s = &mut self.streams[dir.idx()];
        let Some(last) = s.segs.iter().rev().find(|g| !g.acked).map(|g| g.off) else {
            return;
        };
        s.tlp_out = true;
        let flight: u64 = s
            .segs
            .iter()
            .filter(|g| !g.acked && !g.lost)
            .map(|g| g.seq_len())
            .sum();
        let len = s.unsent.len().min(mss);
        if len > 0 && !s.fin_wanted && flight.saturating_add(len as u64) <= s.cwnd.min(rwnd) {
            let data: Vec<u8> = s.unsent.drain(..len).collect();
            let off = s.snd_nxt;
            s.xmit_failed = false;
            self.push_seg(at, dir, off, data, false);
        } else {
            self.transmit(at, dir, last, Recovery::Tlp);
        }
        self.arm_timer(at, dir, true);
    }

    /// RFC 6298 5.4-5.6: retransmit the oldest unacknowledged segment, double the connection's
    /// backoff, restart the timer. Resets after `retries_max` consecutive timeouts
    /// (Linux `tcp_retries2`, counted per connection).
    pub(super) fn on_rto(&mut self, at: Instant, dir: Dir) {
        let st = self.stack(dir.sender());
        let (mss, rst_on_give_up, resend_all, forget_after) = (
            st.mss_bytes.max(1) as u64,
            st.rst_on_give_up,
            st.rto_resend_all,
            st.rtt_forget_after_timeouts,
        );
        let limit = if self.app_closed[dir.sender().idx()] {
            st.retries_max.min(st.orphan_retries_max)
        } else {
            st.retries_max
        };
        let s = &mut self.streams[dir.idx()];
        let Some(off) = s.segs.iter().find(|g| !g.acked).map(|g| g.off) else {
            return;
        };
        if s.backoff >= limit {
            if !rst_on_give_up {
                self.give_up(at, dir.sender());
                return;
            }
            let seq = s.wire_seq(s.snd_nxt);
            let lost = self.decide_loss(dir);
            self.wire(at, dir, TcpFlags::RST, seq, 0, Vec::new(), lost);
            self.reset(at, ResetReason::RetriesExhausted { dir });
            return;
        }
        s.backoff += 1;
        // smoltcp: every third timeout since the last sample forgets srtt and rttvar (the
        // backed-off RTO stays), smoltcp v0.13 src/socket/tcp.rs:262-273.
        if forget_after > 0 && s.backoff % forget_after == 0 {
            s.rtt_forget = true;
        }
        // RFC 5681 3.1 (Linux tcp_enter_loss(), lwIP tcp_rexmit_rto()): ssthresh to half the
        // flight, cwnd to one segment, everything outstanding to be sent again as the window
        // opens (go-back-N; already-SACKed segments are kept).
        if s.cwnd != u64::MAX {
            let flight: u64 = s
                .segs
                .iter()
                .filter(|g| !g.acked && !g.lost)
                .map(|g| g.seq_len())
                .sum();
            s.ssthresh = (flight / 2).max(2 * mss);
            s.cwnd = mss;
        }
        s.recover = None;
        for g in s
            .segs
            .iter_mut()
            .filter(|g| resend_all && !g.acked && g.off != off)
        {
            g.lost = true;
        }
        if let Some(g) = s.find(off).and_then(|i| s.segs.get_mut(i)) {
            g.lost = false;
        }
        self.transmit(at, dir, off, Recovery::Rto);
        self.arm_timer(at, dir, true);
    }

    /// `side`'s stack gives up without a RST (lwIP `tcp_slowtmr()` purging the PCB after
    /// `TCP_MAXRTX`): its application sees the connection aborted; it forgets the connection, so
    /// its peer's next segment is answered with RST.
    pub(super) fn give_up(&mut self, at: Instant, side: Side) {
        self.net(at, NetEvent::GaveUp { side });
        self.aborted[side.idx()] = true;
        self.forgot[side.idx()] = true;
        self.rebooted[side.idx()] = false;
        self.out.push_back(Output::GaveUp { side });
    }

    /// RFC 8985 6.2 (RACK) with the RFC 5681/6675 DupThresh rule: an unacknowledged segment sent
    /// before the most recently sent delivered one is lost once `DUP_THRESH` segments above it
    /// are acknowledged, or once RACK.rtt + reo_wnd (min_rtt / 4) has passed since it was sent;
    /// it is retransmitted at once (no congestion window). Otherwise the reordering timer is set.
    pub(super) fn detect_loss(&mut self, at: Instant, dir: Dir) {
        let rack_tlp = self.stack(dir.sender()).rack_tlp;
        let mss = self.stack(dir.sender()).mss_bytes.max(1) as u64;
        let s = &mut self.streams[dir.idx()];
        let Some(rack) = s.rack else { return };
        let reo_wnd = Duration::from_micros(s.min_rtt_us.unwrap_or(0) / 4);
        let rack_rtt = Duration::from_micros(rack.rtt_us);
        let mut lost = Vec::new();
        let mut next: Option<Instant> = None;
        let mut sacked_above = 0usize;
        for g in s.segs.iter().rev() {
            if g.acked {
                sacked_above += 1;
                continue;
            }
            let before = g.last_tx < rack.xmit || (g.last_tx == rack.xmit && g.end() < rack.end);
            if !before {
                continue;
            }
            let deadline = g.last_tx + rack_rtt + reo_wnd;
            if sacked_above >= DUP_THRESH || (rack_tlp && deadline <= at) {
                lost.push(g.off);
            } else if rack_tlp {
                next = Some(next.map_or(deadline, |n| n.min(deadline)));
            }
        }
        s.rack_gen += 1;
        let gen = s.rack_gen;
        if let Some(t) = next {
            self.schedule(t, Ev::Rack { dir, gen });
        }
        if lost.is_empty() {
            return;
        }
        // Fast recovery (RFC 5681 3.2 / 6675): the window halves once per episode.
        let s = &mut self.streams[dir.idx()];
        let una = s.segs.front().map_or(s.snd_nxt, |g| g.off);
        if s.cwnd != u64::MAX && s.recover.is_none_or(|r| una >= r) {
            let flight: u64 = s
                .segs
                .iter()
                .filter(|g| !g.acked)
                .map(|g| g.seq_len())
                .sum();
            s.ssthresh = (flight / 2).max(2 * mss);
            s.cwnd = s.ssthresh;
            s.recover = Some(s.snd_nxt);
        }
        for off in lost.into_iter().rev() {
            self.transmit(at, dir, off, Recovery::Fast);
        }
        self.arm_timer(at, dir, false);
    }

    pub(super) fn seg_arrive(&mut self, at: Instant, dir: Dir, off: u64) {
        let s = &self.streams[dir.idx()];
        // The sender still holds every segment that is not cumulatively acknowledged, so a
        // segment it no longer holds is a duplicate of bytes the receiver already has.
        let seg = s
            .find(off)
            .and_then(|i| s.segs.get(i))
            .map(|g| (g.data.clone(), g.fin));
        let len = seg.as_ref().map_or(0, |g| g.0.len());
        let receiver = dir.receiver();
        if self.forgot[receiver.idx()] {
            // Forgotten after FIN-WAIT-2: no such connection, RST.
            self.send_rst(at, receiver);
            self.reset(at, ResetReason::Rst { side: receiver });
            return;
        }
        if self.app_closed[receiver.idx()]
            && len > 0
            && off.saturating_add(len as u64) > self.streams[dir.idx()].rcv_nxt
        {
            // New data for an application that closed its socket: abort with RST (Linux
            // tcp_rcv_state_process, LINUX_MIB_TCPABORTONDATA; lwIP tcp_input, TF_RXCLOSED).
            self.send_rst(at, receiver);
            self.reset(at, ResetReason::Rst { side: receiver });
            return;
        }
        if self.aborted[dir.receiver().idx()] {
            if self.rebooted[dir.receiver().idx()] {
                self.reset(
                    at,
                    ResetReason::PeerRebooted {
                        side: dir.receiver(),
                    },
                );
                return;
            }
            self.net(
                at,
                NetEvent::Unanswered {
                    dir,
                    seq: off + 1,
                    len,
                },
            );
            return;
        }
        let s = &mut self.streams[dir.idx()];
        let had_ooo = !s.ooo.is_empty();
        if let Some((data, fin)) = seg {
            if off.saturating_add(data.len() as u64 + u64::from(fin)) > s.rcv_nxt {
                s.ooo.entry(off).or_insert((data, fin));
            }
        }
        let mut delivered = Vec::new();
        let mut closed = false;
        while let Some(entry) = s.ooo.first_entry() {
            let o = *entry.key();
            if o > s.rcv_nxt {
                break;
            }
            let (data, fin) = entry.remove();
            let end = o + data.len() as u64;
            if end > s.rcv_nxt {
                let from = usize::try_from(s.rcv_nxt - o).unwrap_or(usize::MAX);
                delivered.extend_from_slice(data.get(from..).unwrap_or(&[]));
                s.rcv_nxt = end;
            }
            if fin && s.rcv_nxt == end {
                s.rcv_nxt = end + 1;
                closed = true;
            }
        }
        let filled_hole = had_ooo && !delivered.is_empty();
        if !delivered.is_empty() {
            self.out.push_back(Output::Deliver {
                dir,
                bytes: delivered.clone(),
            });
        }
        if closed {
            self.peer_fin[dir.idx()] = true;
            self.out.push_back(Output::Closed { dir });
        }
        // New data the segment's ACK released goes out now, carrying the ACK of this data
        // (Linux tcp_data_snd_check() before tcp_ack_snd_check()): then no pure ACK follows.
        let gen_before = self.streams[dir.idx()].delack_gen;
        if let Some(Some(d)) = self.send_after_data.take() {
            self.try_send(at, d);
        }
        let carried = self.streams[dir.idx()].delack_gen != gen_before;
        // The ACK back: at once for out-of-order data, a duplicate, a FIN, a quick ACK or past
        // the stack's threshold; else delayed (or carried by data going back meanwhile).
        let st = self.stack(receiver);
        let (delack_ms, tick_ms, every, quickacks, pingpong_thresh) = (
            st.delack_ms,
            st.delack_tick_ms,
            st.ack_every,
            st.quickacks,
            st.pingpong_thresh,
        );
        let rcv_rto = self.rto(dir.opposite());
        let s = &mut self.streams[dir.idx()];
        // Linux tcp_data_queue(): a segment that fills the last hole is acknowledged at once
        // (ICSK_ACK_NOW); lwIP's tcp_receive() delays it like any in-order data (tcp_ack()).
        let hole_ack_now = filled_hole && quickacks > 0;
        let in_order = !delivered.is_empty() && s.ooo.is_empty() && !closed && !hole_ack_now;
        if !in_order && quickacks > 0 {
            // Linux tcp_data_queue(): out-of-order data and a retransmission of data already
            // received enter quick-ACK mode (`tcp_enter_quickack_mode(sk, TCP_MAX_QUICKACKS)`),
            // which also leaves pingpong mode.
            s.quick_left = quickacks;
            s.pingpong = 0;
        }
        if quickacks > 0 && s.last_rcv.is_some_and(|t| at.saturating_since(t) > rcv_rto) {
            // Linux tcp_event_data_recv(): a receive gap longer than the RTO refills quick ACKs.
            s.quick_left = quickacks;
        }
        s.last_rcv = Some(at);
        if in_order && carried {
            // Data going back carried the ACK (see above): nothing left to acknowledge.
            return;
        }
        let threshold = match every {
            AckEvery::Segments(n) => s.ack_pending + 1 >= n,
            AckEvery::Bytes(b) => s.ack_pending_bytes + delivered.len() as u64 > b,
        };
        // Linux (Stack::pingpong_thresh): no quick ACKs in pingpong mode; the application's
        // read acknowledges a small pushed segment at once outside it, and a second one in it.
        let pingpong = pingpong_thresh > 0 && s.pingpong >= pingpong_thresh;
        let quick = s.quick_left > 0 && !pingpong;
        let mut at_read = false;
        if pingpong_thresh > 0 && in_order && delivered.len() < config::LINUX_RCV_MSS_INITIAL_BYTES
        {
            s.pushed = s.pushed.saturating_add(1);
            at_read = s.pushed >= 2 || !pingpong;
        }
        if !in_order || delack_ms == 0 || quick || threshold || at_read {
            if in_order && quick {
                s.quick_left -= 1;
            }
            self.send_ack(at, dir, off);
        } else {
            s.ack_pending += 1;
            s.ack_pending_bytes += delivered.len() as u64;
            if s.ack_pending == 1 {
                s.delack_gen += 1;
                let gen = s.delack_gen;
                let when = if tick_ms > 0 {
                    Self::tick_after(at, tick_ms * 1_000, s.isn.rotate_left(7), 1)
                } else {
                    at + Duration::from_millis(delack_ms)
                };
                self.schedule(when, Ev::DelAck { dir, gen });
            }
        }
    }

    pub(super) fn ack_arrive(&mut self, at: Instant, dir: Dir, ack_off: u64, sack_off: u64) {
        if self.aborted[dir.sender().idx()] {
            return;
        }
        let mss = self.stack(dir.sender()).mss_bytes.max(1) as u64;
        let until_sample = self.stack(dir.sender()).backoff_until_sample;
        let lwip_tick_us = match self.stack(dir.sender()).rto_formula {
            RtoFormula::LwipTicks => Some(self.stack(dir.sender()).rto_tick_ms * 1_000),
            _ => None,
        };
        let s = &mut self.streams[dir.idx()];
        // Every ACK is a chance for data a local drop kept unsent (Linux tcp_data_snd_check()).
        let retry = std::mem::take(&mut s.xmit_failed);
        let una_before = s.segs.front().map(|g| g.off);
        let una_before_off = una_before.unwrap_or(s.snd_nxt);
        let mut samples = Vec::new();
        // lwIP times one segment at a time (`rttest`/`rtseq`): the oldest one acknowledged here.
        let mut timed: Option<Instant> = None;
        let mut news = false;
        let min_rtt = s.min_rtt_us.unwrap_or(0);
        let mut rack = s.rack;
        for seg in s.segs.iter_mut() {
            if seg.acked {
                continue;
            }
            if seg.end() <= ack_off || seg.off == sack_off {
                seg.acked = true;
                news = true;
                let rtt = at.saturating_since(seg.last_tx).as_micros();
                // Karn: RTT samples only from segments sent once.
                if seg.tx_count == 1 {
                    samples.push(at.saturating_since(seg.first_tx).as_micros());
                    timed.get_or_insert(seg.first_tx);
                }
                // RFC 8985 6.2 step 2: an ACK sooner than min_rtt after a retransmission is
                // taken for the original's (no timestamps here) and does not advance RACK.
                if seg.tx_count > 1 && rtt < min_rtt {
                    continue;
                }
                let newer = rack.is_none_or(|r| {
                    seg.last_tx > r.xmit || (seg.last_tx == r.xmit && seg.end() > r.end)
                });
                if newer {
                    rack = Some(RackState {
                        xmit: seg.last_tx,
                        end: seg.end(),
                        rtt_us: rtt,
                    });
                }
            }
        }
        s.rack = rack;
        let sampled = !samples.is_empty();
        for r in samples {
            s.rtt_sample(r);
        }
        if let (Some(tick_us), Some(t0)) = (lwip_tick_us, timed) {
            // `m = tcp_ticks - rttest`: slow-timer ticks between the send and now.
            let m = Self::ticks_in(t0, at, tick_us, s.isn);
            s.lwip_sample(m);
        }
        while s
            .segs
            .front()
            .is_some_and(|g| g.acked && g.end() <= ack_off)
        {
            s.segs.pop_front();
        }
        if !news {
            if retry {
                self.send_after_ack(at, dir);
            }
            return;
        }
        s.tlp_out = false;
        let advanced = s.segs.front().map(|g| g.off) != una_before;
        // The backoff ends with new data cumulatively acknowledged (RFC 6298 5.7, Linux resets
        // icsk_backoff on such an ACK), or for smoltcp only with an RTT sample
        // ([`Stack::backoff_until_sample`]); the RTO restarts (RFC 6298 5.3) either way.
        if (advanced && !until_sample) || (until_sample && sampled) {
            s.backoff = 0;
        }
        if advanced {
            // The window grows (RFC 5681 3.1): by the bytes acknowledged, at most one MSS per
            // ACK, in slow start; by about one MSS per window above ssthresh.
            let una = s.segs.front().map_or(s.snd_nxt, |g| g.off);
            let acked = una.saturating_sub(una_before_off);
            if s.cwnd != u64::MAX {
                if s.cwnd < s.ssthresh {
                    s.cwnd = s.cwnd.saturating_add(acked.min(mss));
                } else {
                    s.cwnd = s.cwnd.saturating_add((mss * mss / s.cwnd).max(1));
                }
            }
            if s.recover.is_some_and(|r| una >= r) {
                s.recover = None;
            }
        }
        self.arm_timer(at, dir, advanced);
        self.detect_loss(at, dir);
        self.check_fin_wait2(at, dir.sender());
        self.send_after_ack(at, dir);
    }

    /// New data an ACK released: at once for a pure ACK, after the segment's data when the ACK
    /// came with data ([`Link::send_after_data`]).
    fn send_after_ack(&mut self, at: Instant, dir: Dir) {
        match &mut self.send_after_data {
            Some(pending) => *pending = Some(dir),
            None => self.try_send(at, dir),
        }
    }
}
