//! The `mqsim bench` command line.

use clap::value_parser;

/// `mqsim bench` options.
#[derive(clap::Args, Debug, Clone)]
pub struct BenchArgs {
    /// Broker host.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Broker port.
    #[arg(long, default_value_t = 1883)]
    pub port: u16,
    /// Number of publishing clients.
    #[arg(long, default_value_t = 1, value_parser = value_parser!(u32).range(1..=65_535))]
    pub publishers: u32,
    /// Number of subscribing clients (each subscribes to the topic).
    #[arg(long, default_value_t = 1, value_parser = value_parser!(u32).range(0..=65_535))]
    pub subscribers: u32,
    /// QoS of the PUBLISHes and of the subscriptions.
    #[arg(long, default_value_t = 0, value_parser = value_parser!(u8).range(0..=2))]
    pub qos: u8,
    /// Payload size in bytes (at least 16: publisher, sequence number, timestamp).
    #[arg(long, default_value_t = 24, value_parser = value_parser!(u32).range(16..=64 * 1024 * 1024))]
    pub payload_bytes: u32,
    /// Messages sent by each publisher.
    #[arg(long, default_value_t = 50_000, value_parser = value_parser!(u32).range(1..))]
    pub messages: u32,
    /// Most unacknowledged QoS 1/2 PUBLISHes per publisher.
    #[arg(long, default_value_t = 100, value_parser = value_parser!(u16).range(1..))]
    pub inflight: u16,
    /// Topic to publish and subscribe to (no wildcards).
    #[arg(long, default_value = "bench/t")]
    pub topic: String,
    /// Messages per second each subscriber processes at most (0 = unlimited): a slow consumer.
    #[arg(long, value_name = "MSG_PER_S", default_value_t = 0)]
    pub sub_rate_limit: u32,
    /// Clean session flag of the subscribers.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set)]
    pub clean_session: bool,
    /// Start the broker with this command line (split on whitespace, no shell), wait for the
    /// port, and kill it after the run.
    #[arg(long, value_name = "COMMAND LINE", conflicts_with = "broker_pid")]
    pub spawn: Option<String>,
    /// PID of an already running local broker, to report its peak RSS.
    #[arg(long, value_name = "PID")]
    pub broker_pid: Option<u32>,
    /// Give up this many seconds after the start.
    #[arg(long, default_value_t = 60, value_parser = value_parser!(u64).range(1..))]
    pub timeout_s: u64,
    /// A subscriber stops after waiting this long for the broker, with nothing arriving, once the
    /// publishers are done (time it spends throttling itself does not count).
    #[arg(long, value_name = "SECONDS", default_value_t = 2, value_parser = value_parser!(u64).range(1..))]
    pub end_idle_s: u64,
    /// Extra connections that CONNECT, get their CONNACK and stay silent for the whole run.
    #[arg(long, value_name = "N", default_value_t = 0)]
    pub idle_connections: u32,
    /// Keep alive the idle connections announce (0 = the broker never times them out).
    #[arg(long, value_name = "SECONDS", default_value_t = 0)]
    pub idle_keep_alive: u16,
    /// Idle connection handshakes under way at once.
    #[arg(long, value_name = "N", default_value_t = 64, value_parser = value_parser!(u32).range(1..=10_000))]
    pub idle_concurrency: u32,
    /// Print the report as one JSON line.
    #[arg(long)]
    pub json: bool,
}
