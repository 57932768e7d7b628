//! What a link is given: its delay, jitter and loss model, TCP's parameters, and their validation.

/// Loss of each transmitted segment (data, FIN, SYN, SYN-ACK, pure ACK), per direction.
#[derive(Clone, Debug, PartialEq)]
pub enum LossModel {
    None,
    /// Independent drops with probability `loss` (0.0 ..= 1.0).
    Bernoulli {
        loss: f64,
    },
    /// Two-state bursty loss (WiFi): each transmission is lost with the current state's rate,
    /// then the state moves with the transition probabilities. Every direction starts good.
    GilbertElliott {
        p_good_to_bad: f64,
        p_bad_to_good: f64,
        loss_good: f64,
        loss_bad: f64,
    },
}

/// Parameters of one modelled TCP connection. Units are in the names.
#[derive(Clone, Debug, PartialEq)]
pub struct LinkConfig {
    /// One-way propagation delay.
    pub latency_ms: u64,
    /// Extra one-way delay, uniform in `0 ..= jitter_ms` (microsecond resolution), per packet.
    pub jitter_ms: u64,
    /// Largest payload of one segment.
    pub mss_bytes: usize,
    pub loss: LossModel,
    /// RFC 6298 bounds (Linux: 200 ms minimum, 1 s initial, 120 s maximum).
    pub rto_min_ms: u64,
    pub rto_initial_ms: u64,
    pub rto_max_ms: u64,
    /// Consecutive retransmission timeouts without progress before the connection resets (Linux
    /// `tcp_retries2` = 15).
    pub retries_max: u32,
    /// SYN retransmissions before connect fails (Linux `tcp_syn_retries` = 6: retries after
    /// 1, 3, 7, 15, 31, 63 s, failure at 127 s with a 1 s initial RTO).
    pub syn_retries_max: u32,
    /// Consecutive retransmission timeouts before a connection its application has closed
    /// (an orphan: FIN-WAIT, CLOSING, LAST-ACK) gives up. Linux: `tcp_orphan_retries` = 0, which
    /// `tcp_orphan_retries()` (net/ipv4/tcp_timer.c) turns into 8 while the RTO is below its
    /// maximum. lwIP has no orphan limit: `TCP_MAXRTX` (12, ESP-IDF Kconfig
    /// `LWIP_TCP_MAXRTX`) applies to every state (src/core/tcp.c `tcp_slowtmr`).
    pub orphan_retries_max: u32,
    /// How long a side whose application closed waits in FIN-WAIT-2 (its FIN acknowledged) for
    /// the peer's FIN before it forgets the connection; a later segment from the peer then gets
    /// a RST. Linux: `tcp_fin_timeout` = 60 s (`TCP_FIN_TIMEOUT`, include/net/tcp.h). lwIP:
    /// `TCP_FIN_WAIT_TIMEOUT` = 20 s (src/include/lwip/priv/tcp_priv.h, `tcp_slowtmr`).
    pub fin_wait2_ms: u64,
}

/// Linux `tcp_orphan_retries()` with the sysctl at its default 0 (net/ipv4/tcp_timer.c).
pub const LINUX_ORPHAN_RETRIES: u32 = 8;
/// Linux `TCP_FIN_TIMEOUT` (include/net/tcp.h): 60 s.
pub const LINUX_FIN_WAIT2_MS: u64 = 60_000;
/// lwIP `TCP_MAXRTX` as ESP-IDF configures it (Kconfig `LWIP_TCP_MAXRTX` default 12): also the
/// limit of a closed connection's retransmissions.
pub const LWIP_ORPHAN_RETRIES: u32 = 12;
/// lwIP `TCP_FIN_WAIT_TIMEOUT` (src/include/lwip/priv/tcp_priv.h): 20 s.
pub const LWIP_FIN_WAIT2_MS: u64 = 20_000;

impl Default for LinkConfig {
    fn default() -> Self {
        LinkConfig {
            latency_ms: 5,
            jitter_ms: 0,
            mss_bytes: 1460,
            loss: LossModel::None,
            rto_min_ms: 200,
            rto_initial_ms: 1_000,
            rto_max_ms: 120_000,
            retries_max: 15,
            syn_retries_max: 6,
            orphan_retries_max: LINUX_ORPHAN_RETRIES,
            fin_wait2_ms: LINUX_FIN_WAIT2_MS,
        }
    }
}

/// Largest values the validation accepts (keeps every sum and shift far from overflow).
pub const LATENCY_MS_MAX: u64 = 3_600_000;
pub const RTO_MS_MAX: u64 = 3_600_000;
pub const RETRIES_MAX: u32 = 64;
pub const MSS_BYTES_MAX: usize = 65_495;

fn check_probability(name: &str, p: f64) -> Result<(), String> {
    if p.is_finite() && (0.0..=1.0).contains(&p) {
        Ok(())
    } else {
        Err(format!(
            "{name} must be a probability in 0.0..=1.0, got {p}"
        ))
    }
}

impl LinkConfig {
    /// Every bad value gets its own message.
    pub fn validate(&self) -> Result<(), String> {
        if self.latency_ms > LATENCY_MS_MAX {
            return Err(format!(
                "latency_ms must be <= {LATENCY_MS_MAX}, got {}",
                self.latency_ms
            ));
        }
        if self.jitter_ms > LATENCY_MS_MAX {
            return Err(format!(
                "jitter_ms must be <= {LATENCY_MS_MAX}, got {}",
                self.jitter_ms
            ));
        }
        if self.mss_bytes == 0 || self.mss_bytes > MSS_BYTES_MAX {
            return Err(format!(
                "mss_bytes must be in 1..={MSS_BYTES_MAX}, got {}",
                self.mss_bytes
            ));
        }
        if self.rto_min_ms == 0 {
            return Err("rto_min_ms must be > 0".into());
        }
        if self.rto_initial_ms < self.rto_min_ms {
            return Err(format!(
                "rto_initial_ms ({}) must be >= rto_min_ms ({})",
                self.rto_initial_ms, self.rto_min_ms
            ));
        }
        if self.rto_max_ms < self.rto_initial_ms || self.rto_max_ms > RTO_MS_MAX {
            return Err(format!(
                "rto_max_ms ({}) must be in rto_initial_ms ({})..={RTO_MS_MAX}",
                self.rto_max_ms, self.rto_initial_ms
            ));
        }
        if self.retries_max > RETRIES_MAX {
            return Err(format!(
                "retries_max must be <= {RETRIES_MAX}, got {}",
                self.retries_max
            ));
        }
        if self.syn_retries_max > RETRIES_MAX {
            return Err(format!(
                "syn_retries_max must be <= {RETRIES_MAX}, got {}",
                self.syn_retries_max
            ));
        }
        if self.orphan_retries_max > RETRIES_MAX {
            return Err(format!(
                "orphan_retries_max must be <= {RETRIES_MAX}, got {}",
                self.orphan_retries_max
            ));
        }
        if self.fin_wait2_ms == 0 || self.fin_wait2_ms > RTO_MS_MAX {
            return Err(format!(
                "fin_wait2_ms must be in 1..={RTO_MS_MAX}, got {}",
                self.fin_wait2_ms
            ));
        }
        match self.loss {
            LossModel::None => Ok(()),
            LossModel::Bernoulli { loss } => check_probability("loss", loss),
            LossModel::GilbertElliott {
                p_good_to_bad,
                p_bad_to_good,
                loss_good,
                loss_bad,
            } => {
                check_probability("p_good_to_bad", p_good_to_bad)?;
                check_probability("p_bad_to_good", p_bad_to_good)?;
                check_probability("loss_good", loss_good)?;
                check_probability("loss_bad", loss_bad)
            }
        }
    }
}
