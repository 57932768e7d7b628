//! mosquitto.conf, the subset the broker honours. Same file format: `key value` per line, `#`
//! comments. Keys mosquitto 2.0 knows and we do not implement are reported and ignored, so an
//! existing mosquitto.conf still loads; a key mosquitto does not know, or a bad value, is an error
//! naming the line, as in mosquitto.

mod mosquitto;
pub use mosquitto::{log_type, LogSettings};

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use mqsim::broker::Config as BrokerConfig;

/// What the `broker` command runs with.
#[derive(Clone, Debug)]
pub struct BrokerSettings {
    pub bind: SocketAddr,
    /// No address was given: listen on the IPv6 twin of `bind` too (`::1` beside 127.0.0.1,
    /// `::` beside 0.0.0.0), as mosquitto does.
    pub dual_stack: bool,
    pub broker: BrokerConfig,
    /// Keys seen but not supported, with their line numbers, for a warning at start-up.
    pub ignored: Vec<(usize, String)>,
    /// mosquitto's notices while reading the file (a deprecated key), printed at start-up.
    pub notices: Vec<String>,
    /// Where and what to log (`log_dest`, `log_type`).
    pub log: LogSettings,
    /// mosquitto `per_listener_settings`: security settings per listener. With one listener it
    /// changes nothing; read and checked (it must come before any security setting).
    pub per_listener_settings: bool,
}

#[derive(Debug, PartialEq, Eq)]
pub struct ConfigError {
    pub line: usize,
    pub message: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for ConfigError {}

impl Default for BrokerSettings {
    /// No config file: like mosquitto 2, listen on loopback only, anonymous clients allowed.
    fn default() -> Self {
        BrokerSettings {
            bind: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 1883),
            dual_stack: true,
            broker: BrokerConfig::default(),
            ignored: Vec::new(),
            notices: Vec::new(),
            log: LogSettings::default(),
            per_listener_settings: false,
        }
    }
}

impl BrokerSettings {
    /// The sockets to listen on: `bind`, and its IPv6 twin first when `dual_stack`, as mosquitto
    /// opens them. With port 0 only `bind` (two ephemeral ports would differ).
    pub fn listen_addrs(&self) -> Vec<SocketAddr> {
        let twin = match self.bind.ip() {
            IpAddr::V4(v4) if v4.is_loopback() => Some(IpAddr::V6(Ipv6Addr::LOCALHOST)),
            IpAddr::V4(v4) if v4.is_unspecified() => Some(IpAddr::V6(Ipv6Addr::UNSPECIFIED)),
            _ => None,
        };
        match twin {
            Some(ip) if self.dual_stack && self.bind.port() != 0 => {
                vec![SocketAddr::new(ip, self.bind.port()), self.bind]
            }
            _ => vec![self.bind],
        }
    }

    /// Parses a config file. As in mosquitto 2, a file that configures a `listener` without an
    /// address listens on every interface and refuses anonymous clients unless
    /// `allow_anonymous true` says otherwise.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let mut s = BrokerSettings::default();
        // Broker limits go through the core's builder, which checks them (one place); each
        // setting's line is kept to point at it if the builder refuses its value.
        let mut b = mqsim::broker::Config::builder();
        let mut lines: Vec<(&'static str, usize)> = Vec::new();
        let mut anonymous: Option<bool> = None;
        let mut has_listener = false;
        let mut log_lines = mosquitto::LogLines::default();
        let mut security_seen = false;
        let mut bind_address: Option<IpAddr> = None;
        let mut default_port: Option<u16> = None;
        for (i, raw) in text.lines().enumerate() {
            let line = i + 1;
            let trimmed = raw.trim();
            if trimmed.is_empty() || trimmed.starts_with('#') {
                continue;
            }
            let mut words = trimmed.split_whitespace();
            let key = words.next().unwrap_or_default();
            let args: Vec<&str> = words.collect();
            let err = |message: String| ConfigError { line, message };
            let one = |name: &str| -> Result<&str, ConfigError> {
                match args.as_slice() {
                    [v] => Ok(*v),
                    _ => Err(err(format!("{name} takes exactly one value"))),
                }
            };
            let number = |name: &str| -> Result<i64, ConfigError> {
                one(name)?
                    .parse::<i64>()
                    .map_err(|_| err(format!("{name}: not a whole number")))
            };
            // mosquitto's conf__parse_bool (conf.c:2321), with its wording.
            let boolean = |name: &str| -> Result<bool, ConfigError> {
                match args.as_slice() {
                    [] => Err(err(format!("Empty {name} value in configuration"))),
                    ["true" | "1"] => Ok(true),
                    ["false" | "0"] => Ok(false),
                    [v] => Err(err(format!("Invalid {name} value ({v})"))),
                    _ => Err(err(format!("{name} takes exactly one value"))),
                }
            };
            // A whole number in `range`, with mosquitto's wording for one outside it. (mosquitto
            // reads a word that is not a number as 0; we refuse it.)
            let ranged = |name: &str, range: std::ops::RangeInclusive<i64>| {
                let v = match args.as_slice() {
                    [] => return Err(err(format!("Empty {name} value in configuration"))),
                    [v] => *v,
                    _ => return Err(err(format!("{name} takes exactly one value"))),
                };
                match v.parse::<i64>() {
                    Ok(n) if range.contains(&n) => Ok(n),
                    _ => Err(err(format!("Invalid {name} value ({v})"))),
                }
            };
            let security = mosquitto::security_key(key);
            match key {
                "listener" => {
                    has_listener = true;
                    let port = match args.first() {
                        Some(p) => p
                            .parse::<u16>()
                            .map_err(|_| err(format!("listener: bad port '{p}'")))?,
                        None => return Err(err("listener needs a port".into())),
                    };
                    let ip = match args.get(1) {
                        Some(a) => a
                            .parse::<IpAddr>()
                            .map_err(|_| err(format!("listener: bad address '{a}'")))?,
                        None => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                    };
                    s.bind = SocketAddr::new(ip, port);
                    s.dual_stack = args.get(1).is_none();
                }
                "allow_anonymous" => {
                    anonymous = Some(match one(key)? {
                        "true" => true,
                        "false" => false,
                        v => {
                            return Err(err(format!(
                                "allow_anonymous: expected true or false, got '{v}'"
                            )))
                        }
                    })
                }
                "max_inflight_messages" => {
                    // mosquitto: 0 = unlimited; ours is bounded by the packet-id space.
                    let n = number(key)?;
                    b.max_inflight_messages(if n <= 0 {
                        mqsim::limits::INFLIGHT_CEILING_MESSAGES
                    } else {
                        usize::try_from(n).unwrap_or(usize::MAX)
                    });
                    lines.push(("max_inflight_messages", line));
                }
                "max_queued_messages" => {
                    b.max_queued_messages(number(key)?.max(0) as usize);
                }
                "max_queued_bytes" => {
                    b.max_queued_bytes(number(key)?.max(0) as usize);
                }
                "message_size_limit" => {
                    b.message_size_limit_bytes(number(key)?.max(0) as usize);
                }
                "max_packet_size" => {
                    b.max_packet_bytes(usize::try_from(number(key)?).unwrap_or(0));
                    lines.push(("max_packet_size", line));
                }
                "max_connections" => {
                    // mosquitto: -1 = unbounded.
                    let n = number(key)?;
                    b.max_connections(usize::try_from(n).unwrap_or(usize::MAX));
                    lines.push(("max_connections", line));
                }
                "sys_interval" => {
                    b.sys_interval(mqsim::time::Duration::from_secs(number(key)?.max(0) as u64));
                }
                "port" => {
                    // conf.c:1826: the legacy default listener, on every interface (or on
                    // `bind_address`), and no longer local-only.
                    s.notices.push("The 'port' option is now deprecated and will be removed in a future version. Please use 'listener' instead.".into());
                    has_listener = true;
                    let port = ranged(key, 1..=65_535)? as u16;
                    default_port = Some(port);
                    let ip = bind_address.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
                    s.bind = SocketAddr::new(ip, port);
                    s.dual_stack = bind_address.is_none();
                }
                "bind_address" => {
                    // conf.c:922: the address of the default listener (`port`, else 1883).
                    has_listener = true;
                    let a = one(key)?;
                    let ip = a
                        .parse::<IpAddr>()
                        .map_err(|_| err(format!("bind_address: bad address '{a}'")))?;
                    bind_address = Some(ip);
                    s.bind = SocketAddr::new(ip, default_port.unwrap_or(1883));
                    s.dual_stack = false;
                }
                "max_keepalive" => {
                    b.max_keepalive_s(ranged(key, 0..=65_535)? as u16);
                }
                "allow_zero_length_clientid" => {
                    b.allow_zero_length_clientid(boolean(key)?);
                }
                "upgrade_outgoing_qos" => {
                    b.upgrade_outgoing_qos(boolean(key)?);
                }
                "retain_available" => {
                    b.retain_available(boolean(key)?);
                }
                "per_listener_settings" => {
                    s.per_listener_settings = boolean(key)?;
                    if s.per_listener_settings && security_seen {
                        return Err(err(
                            "per_listener_settings must be set before any other security settings"
                                .into(),
                        ));
                    }
                }
                "log_dest" => match log_lines.dest(&args).map_err(err)? {
                    mosquitto::DestOutcome::Set => {}
                    mosquitto::DestOutcome::Unsupported => {
                        s.ignored.push((line, format!("{key} {}", args[0])))
                    }
                },
                "log_type" => log_lines.log_type(&args).map_err(err)?,
                _ if mosquitto::known_key(key) => s.ignored.push((line, key.to_string())),
                _ => return Err(err(format!("Unknown configuration variable \"{key}\""))),
            }
            security_seen |= security;
        }
        s.log = log_lines.finish();
        b.allow_anonymous(anonymous.unwrap_or(!has_listener));
        s.broker = b.build().map_err(|e| ConfigError {
            line: lines
                .iter()
                .rev()
                .find(|(k, _)| *k == e.key)
                .map_or(0, |(_, l)| *l),
            message: e.to_string(),
        })?;
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seed_document_config() {
        // The two lines the source document puts in mosquitto.conf.
        let s = BrokerSettings::parse("listener 1883\nallow_anonymous true\n").unwrap();
        assert_eq!(s.bind, "0.0.0.0:1883".parse().unwrap());
        assert!(s.broker.allow_anonymous);
    }

    #[test]
    fn dual_stack_like_mosquitto() {
        let s = BrokerSettings::default();
        assert_eq!(
            s.listen_addrs(),
            vec![
                "[::1]:1883".parse().unwrap(),
                "127.0.0.1:1883".parse().unwrap()
            ]
        );
        let s = BrokerSettings::parse("listener 1883\n").unwrap();
        assert_eq!(
            s.listen_addrs(),
            vec![
                "[::]:1883".parse().unwrap(),
                "0.0.0.0:1883".parse().unwrap()
            ]
        );
        let s = BrokerSettings::parse("listener 1883 127.0.0.1\n").unwrap();
        assert_eq!(s.listen_addrs(), vec!["127.0.0.1:1883".parse().unwrap()]);
        let mut s = BrokerSettings::default();
        s.bind.set_port(0);
        assert_eq!(s.listen_addrs(), vec!["127.0.0.1:0".parse().unwrap()]);
    }

    #[test]
    fn listener_without_allow_anonymous_refuses_anonymous() {
        let s = BrokerSettings::parse("listener 1884 127.0.0.1").unwrap();
        assert_eq!(s.bind, "127.0.0.1:1884".parse().unwrap());
        assert!(!s.broker.allow_anonymous);
    }

    #[test]
    fn no_listener_is_local_only_and_anonymous() {
        let s = BrokerSettings::parse("# nothing\n\nmax_queued_messages 5\n").unwrap();
        assert_eq!(s.bind, "127.0.0.1:1883".parse().unwrap());
        assert!(s.broker.allow_anonymous);
        assert_eq!(s.broker.max_queued_messages, 5);
    }

    #[test]
    fn limits_and_unknown_keys() {
        let text = "max_inflight_messages 0\nmessage_size_limit 100\nmax_packet_size 4096\n\
                    max_connections -1\npersistence true\nmax_queued_bytes 1000\n";
        let s = BrokerSettings::parse(text).unwrap();
        assert_eq!(s.broker.max_inflight_messages, 65_535);
        assert_eq!(s.broker.message_size_limit_bytes, 100);
        assert_eq!(s.broker.max_packet_bytes, 4096);
        assert_eq!(s.broker.max_connections, usize::MAX);
        assert_eq!(s.broker.max_queued_bytes, 1000);
        assert_eq!(s.ignored, vec![(5, "persistence".to_string())]);
    }

    #[test]
    fn errors_name_the_line() {
        let e = BrokerSettings::parse("listener 1883\nallow_anonymous maybe\n").unwrap_err();
        assert_eq!(e.line, 2);
        let e = BrokerSettings::parse("listener abc").unwrap_err();
        assert_eq!(e.line, 1);
        assert!(BrokerSettings::parse("max_queued_messages 1 2").is_err());
        // Values the core's builder refuses point at their line.
        let e = BrokerSettings::parse("# limits\n\nmax_packet_size 10\n").unwrap_err();
        assert_eq!(e.line, 3);
        assert_eq!(e.message, "max_packet_size: must be at least 20 bytes");
        let e = BrokerSettings::parse("max_connections 0\n").unwrap_err();
        assert_eq!(
            (e.line, e.message.as_str()),
            (
                1,
                "max_connections: must be at least 1 (or -1 for unbounded)"
            )
        );
    }

    #[test]
    fn unknown_keys_are_errors_known_ones_warnings() {
        // mosquitto 2.0: "Error: Unknown configuration variable" (conf.c:2190).
        let e = BrokerSettings::parse("listener 1883\n\nfoo_bar 1\n").unwrap_err();
        assert_eq!(
            (e.line, e.message.as_str()),
            (3, "Unknown configuration variable \"foo_bar\"")
        );
        let e = BrokerSettings::parse("persistance true\n").unwrap_err();
        assert_eq!(e.line, 1, "a misspelt key is not silently ignored");
        let s =
            BrokerSettings::parse("persistence true\nauth_opt_x y\nlog_timestamp false\n").unwrap();
        let keys: Vec<_> = s.ignored.iter().map(|(l, k)| (*l, k.as_str())).collect();
        assert_eq!(
            keys,
            [(1, "persistence"), (2, "auth_opt_x"), (3, "log_timestamp")]
        );
    }

    #[test]
    fn port_is_the_legacy_listener() {
        let s = BrokerSettings::parse("port 1884\n").unwrap();
        assert_eq!(s.bind, "0.0.0.0:1884".parse().unwrap());
        assert!(s.dual_stack);
        assert!(!s.broker.allow_anonymous, "no longer local-only");
        assert_eq!(s.notices.len(), 1);
        assert!(s.notices[0].starts_with("The 'port' option is now deprecated"));
        let s = BrokerSettings::parse("bind_address 127.0.0.1\nport 1885\n").unwrap();
        assert_eq!(s.listen_addrs(), vec!["127.0.0.1:1885".parse().unwrap()]);
        let s = BrokerSettings::parse("bind_address 127.0.0.1\n").unwrap();
        assert_eq!(s.bind, "127.0.0.1:1883".parse().unwrap());
        for bad in ["port 0", "port 65536", "port x", "port"] {
            let e = BrokerSettings::parse(&format!("\n{bad}\n")).unwrap_err();
            assert_eq!(e.line, 2, "{bad}");
        }
        let e = BrokerSettings::parse("port 0\n").unwrap_err();
        assert_eq!(e.message, "Invalid port value (0)");
    }

    #[test]
    fn max_keepalive_and_the_booleans() {
        let text = "per_listener_settings 1\nmax_keepalive 60\nallow_zero_length_clientid false\n\
                    upgrade_outgoing_qos true\nretain_available 0\n";
        let s = BrokerSettings::parse(text).unwrap();
        assert_eq!(s.broker.max_keepalive_s, 60);
        assert!(!s.broker.allow_zero_length_clientid);
        assert!(s.broker.upgrade_outgoing_qos);
        assert!(!s.broker.retain_available);
        assert!(s.per_listener_settings);
        let d = BrokerSettings::parse("").unwrap();
        assert_eq!(d.broker.max_keepalive_s, 0);
        assert!(d.broker.allow_zero_length_clientid && d.broker.retain_available);
        assert!(!d.broker.upgrade_outgoing_qos && !d.per_listener_settings);
        let e = BrokerSettings::parse("max_keepalive 65536\n").unwrap_err();
        assert_eq!(
            (e.line, e.message.as_str()),
            (1, "Invalid max_keepalive value (65536)")
        );
        let e = BrokerSettings::parse("max_keepalive -1\n").unwrap_err();
        assert_eq!(e.message, "Invalid max_keepalive value (-1)");
        let e = BrokerSettings::parse("\nretain_available yes\n").unwrap_err();
        assert_eq!(
            (e.line, e.message.as_str()),
            (2, "Invalid retain_available value (yes)")
        );
        let e = BrokerSettings::parse("upgrade_outgoing_qos\n").unwrap_err();
        assert_eq!(
            e.message,
            "Empty upgrade_outgoing_qos value in configuration"
        );
    }

    #[test]
    fn per_listener_settings_must_come_first() {
        // conf.c:1779-1784.
        let e = BrokerSettings::parse("allow_anonymous true\nper_listener_settings true\n")
            .unwrap_err();
        assert_eq!(
            (e.line, e.message.as_str()),
            (
                2,
                "per_listener_settings must be set before any other security settings"
            )
        );
        let e = BrokerSettings::parse("password_file /x\nper_listener_settings true\n");
        assert_eq!(e.unwrap_err().line, 2);
        assert!(
            BrokerSettings::parse("allow_anonymous true\nper_listener_settings false\n").is_ok()
        );
        assert!(
            BrokerSettings::parse("per_listener_settings true\nallow_anonymous true\n").is_ok()
        );
    }

    #[test]
    fn log_dest_and_log_type_accumulate_like_mosquitto() {
        let d = BrokerSettings::parse("").unwrap().log;
        assert_eq!(d, LogSettings::default());
        assert!(d.stderr && !d.stdout && d.file.is_none());
        assert_eq!(d.types, log_type::DEFAULT);
        let text =
            "log_dest stdout\nlog_dest file /tmp/my broker.log\nlog_type error\nlog_type debug\n";
        let s = BrokerSettings::parse(text).unwrap().log;
        assert!(!s.stderr, "the first log_dest replaces the default");
        assert!(s.stdout);
        assert_eq!(s.file, Some("/tmp/my broker.log".into()));
        assert_eq!(s.types, log_type::ERROR | log_type::DEBUG);
        let s = BrokerSettings::parse("log_dest stderr\nlog_dest none\nlog_type all\n").unwrap();
        assert!(!s.log.stderr && !s.log.stdout);
        assert_eq!(s.log.types, log_type::ALL);
        let s = BrokerSettings::parse("log_type information\nlog_type none\n").unwrap();
        assert_eq!(s.log.types, 0);
        // Destinations mosquitto has and we do not: warned about, the rest still applies.
        let s = BrokerSettings::parse("log_dest syslog\nlog_dest stdout\n").unwrap();
        assert_eq!(s.ignored, vec![(1, "log_dest syslog".to_string())]);
        assert!(s.log.stdout && !s.log.stderr);
        for (text, line, msg) in [
            ("log_dest bogus", 1, "Invalid log_dest value (bogus)"),
            ("log_dest", 1, "Empty log_dest value in configuration"),
            (
                "log_dest file",
                1,
                "Empty \"log_dest file\" value in configuration",
            ),
            (
                "log_dest file a\nlog_dest file b",
                2,
                "Duplicate \"log_dest file\" value",
            ),
            ("\nlog_type bogus", 2, "Invalid log_type value (bogus)"),
            ("log_type", 1, "Empty log_type value in configuration"),
        ] {
            let e = BrokerSettings::parse(text).unwrap_err();
            assert_eq!((e.line, e.message.as_str()), (line, msg), "{text}");
        }
    }
}
