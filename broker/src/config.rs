//! mosquitto.conf, the subset the broker honours. Same file format: `key value` per line, `#`
//! comments. Keys mosquitto 2.0 knows and we do not implement are reported and ignored, so an
//! existing mosquitto.conf still loads; a key mosquitto does not know, or a bad value, is an error
//! naming the line, as in mosquitto. Several `listener PORT [ADDRESS]` lines may be given; the TLS
//! keys (`certfile`, `keyfile`, `cafile`, `require_certificate`, `use_identity_as_username`) belong
//! to the listener above them.

mod mosquitto;
pub use mosquitto::{log_type, LogSettings};

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;

use mqsim::broker::Config as BrokerConfig;

/// What the `broker` command runs with.
#[derive(Clone, Debug)]
pub struct BrokerSettings {
    /// At least one: without a `listener` line, 1883 on loopback.
    pub listeners: Vec<Listener>,
    pub broker: BrokerConfig,
    /// `password_file` and `acl_file`, used as given (relative to the working directory, as
    /// mosquitto opens them); read by `security.rs`.
    pub password_file: Option<PathBuf>,
    pub acl_file: Option<PathBuf>,
    /// Keys seen but not supported, with their line numbers, for a warning at start-up.
    pub ignored: Vec<(usize, String)>,
    /// `persistence_location` (a directory; empty = the working directory) and
    /// `persistence_file`: where the journal is kept when `persistence true`.
    pub persistence_location: std::path::PathBuf,
    pub persistence_file: String,
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

/// One `listener PORT [ADDRESS]` and the keys that follow it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Listener {
    pub bind: SocketAddr,
    /// No address was given: listen on the IPv6 twin of `bind` too (`::1` beside 127.0.0.1,
    /// `::` beside 0.0.0.0), as mosquitto does.
    pub dual_stack: bool,
    /// The `listener` line (0 for the default listener, which has none).
    pub line: usize,
    /// Set by `certfile` and `keyfile`: this listener speaks TLS.
    pub tls: Option<TlsSettings>,
    /// Its own security keys, with `per_listener_settings true` (else they are broker-wide).
    pub auth: ListenerAuth,
}

/// One listener's own security keys (`per_listener_settings true`). Unset, `allow_anonymous` is
/// false (a listener from the file refuses anonymous clients, as in mosquitto 2.0) and
/// connections are bounded by the broker-wide ceiling only.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ListenerAuth {
    pub allow_anonymous: Option<bool>,
    pub password_file: Option<PathBuf>,
    pub acl_file: Option<PathBuf>,
    /// mosquitto `max_connections` under this listener (-1 = unbounded: `usize::MAX`).
    pub max_connections: Option<usize>,
}

/// A file named in the config, with the line that names it (start-up errors point at it).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileSetting {
    pub path: String,
    pub line: usize,
}

/// A TLS listener's keys (mosquitto's names).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsSettings {
    /// The server's certificate chain, PEM, leaf first.
    pub certfile: FileSetting,
    /// The server's private key, PEM (PKCS#8, PKCS#1 or SEC1).
    pub keyfile: FileSetting,
    /// CA certificates, PEM, that client certificates must chain to.
    pub cafile: Option<FileSetting>,
    /// Refuse, at the handshake, a client without a certificate signed by `cafile`.
    pub require_certificate: bool,
    /// The client certificate's subject CN is the user name (CONNECT's is ignored).
    pub use_identity_as_username: bool,
}

impl ListenerAuth {
    /// Takes the keys `other` sets (a later line wins).
    fn merge(&mut self, other: ListenerAuth) {
        self.allow_anonymous = other.allow_anonymous.or(self.allow_anonymous);
        self.password_file = other.password_file.or(self.password_file.take());
        self.acl_file = other.acl_file.or(self.acl_file.take());
        self.max_connections = other.max_connections.or(self.max_connections);
    }
}

impl Listener {
    /// A plain listener at `bind` (with its IPv6 twin when `dual_stack`), as if set at `line` of
    /// the config file (0: not from a file).
    pub fn new(bind: SocketAddr, dual_stack: bool, line: usize) -> Self {
        Listener {
            bind,
            dual_stack,
            line,
            tls: None,
            auth: ListenerAuth::default(),
        }
    }

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
}

impl Default for BrokerSettings {
    /// No config file: like mosquitto 2, listen on loopback only, anonymous clients allowed.
    fn default() -> Self {
        BrokerSettings {
            listeners: vec![Listener::new(
                SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 1883),
                true,
                0,
            )],
            broker: BrokerConfig::default(),
            password_file: None,
            acl_file: None,
            ignored: Vec::new(),
            persistence_location: std::path::PathBuf::new(),
            persistence_file: String::from("mosquitto.db"),
            notices: Vec::new(),
            log: LogSettings::default(),
            per_listener_settings: false,
        }
    }
}

/// The TLS keys of one listener as read, before they are checked together.
#[derive(Default)]
struct TlsKeys {
    certfile: Option<FileSetting>,
    keyfile: Option<FileSetting>,
    cafile: Option<FileSetting>,
    require_certificate: Option<(bool, usize)>,
    use_identity_as_username: Option<(bool, usize)>,
}

impl TlsKeys {
    /// The listener's TLS settings, or why they do not fit together (at the line to fix).
    fn finish(self, listener_line: usize) -> Result<Option<TlsSettings>, ConfigError> {
        let err = |line: usize, message: &str| ConfigError {
            line,
            message: message.to_string(),
        };
        let (certfile, keyfile) = match (self.certfile, self.keyfile) {
            (Some(c), Some(k)) => (c, k),
            (None, None) => {
                // No TLS on this listener: its TLS-only keys would silently do nothing.
                let on = |k: Option<(bool, usize)>| k.filter(|(v, _)| *v).map(|(_, l)| l);
                let stray = [
                    self.cafile.map(|f| f.line),
                    on(self.require_certificate),
                    on(self.use_identity_as_username),
                ];
                return match stray.into_iter().flatten().min() {
                    Some(line) => Err(err(
                        line,
                        "a TLS option on a listener without certfile and keyfile",
                    )),
                    None => Ok(None),
                };
            }
            (Some(_), None) | (None, Some(_)) => {
                return Err(err(
                    listener_line,
                    "both certfile and keyfile must be provided if one of them is set",
                ))
            }
        };
        let (require_certificate, require_line) = self.require_certificate.unwrap_or_default();
        if require_certificate && self.cafile.is_none() {
            return Err(err(
                require_line,
                "require_certificate true needs a cafile to check client certificates against",
            ));
        }
        let (use_identity_as_username, identity_line) =
            self.use_identity_as_username.unwrap_or_default();
        if use_identity_as_username && !require_certificate {
            // mosquitto would start and then refuse every client (no certificate is asked for).
            return Err(err(
                identity_line,
                "use_identity_as_username true needs require_certificate true",
            ));
        }
        Ok(Some(TlsSettings {
            certfile,
            keyfile,
            cafile: self.cafile,
            require_certificate,
            use_identity_as_username,
        }))
    }
}

impl BrokerSettings {
    /// The journal's path, when persistence is on.
    pub fn persistence_path(&self) -> Option<std::path::PathBuf> {
        self.broker
            .persistence
            .then(|| self.persistence_location.join(&self.persistence_file))
    }

    /// Parses a config file. As in mosquitto 2, a file that configures a `listener` without an
    /// address listens on every interface and refuses anonymous clients unless
    /// `allow_anonymous true` says otherwise.
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let mut s = BrokerSettings::default();
        // Broker limits are checked by the core's `Config::validate` (one place); each
        // setting's line is kept to point at it if its value is refused.
        let mut b = mqsim::broker::Config::default();
        let mut lines: Vec<(&'static str, usize)> = Vec::new();
        let mut anonymous: Option<bool> = None;
        // Listeners from the file, each with its TLS keys, checked when the next one starts.
        let mut listeners: Vec<(Listener, TlsKeys)> = Vec::new();
        let mut log_lines = mosquitto::LogLines::default();
        let mut security_seen = false;
        // `per_listener_settings true`: keys given before any `listener` line, for the legacy
        // default listener (`port`); an error at the first one's line if there is none.
        let mut early = ListenerAuth::default();
        let mut early_line = 0;
        let mut early_key = "";
        // `per_listener_settings false`: each broker-wide security key's value, its line and the
        // listener it was given under, to refuse a second, different value under another one.
        let mut global_keys: Vec<(&str, String, usize, usize)> = Vec::new();
        let mut conflict: Option<ConfigError> = None;
        // mosquitto's legacy default listener: `port` and `bind_address`, with their line.
        let mut bind_address: Option<IpAddr> = None;
        let mut default_port: Option<u16> = None;
        let mut default_line = 0;
        for (line, trimmed) in mqsim::broker::file_lines(text) {
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
                    if args.len() > 2 {
                        return Err(err("listener takes a port and an optional address".into()));
                    }
                    let bind = SocketAddr::new(ip, port);
                    listeners.push((
                        Listener::new(bind, args.get(1).is_none(), line),
                        TlsKeys::default(),
                    ));
                }
                "certfile"
                | "keyfile"
                | "cafile"
                | "require_certificate"
                | "use_identity_as_username" => {
                    let Some((_, keys)) = listeners.last_mut() else {
                        return Err(err(format!(
                            "{key} belongs to a listener: put it after a `listener` line"
                        )));
                    };
                    let file = || -> Result<FileSetting, ConfigError> {
                        match args.as_slice() {
                            [_, ..] => Ok(FileSetting {
                                // A path may contain spaces, as in mosquitto.
                                path: trimmed[key.len()..].trim().to_string(),
                                line,
                            }),
                            [] => Err(err(format!("{key} needs a file name"))),
                        }
                    };
                    match key {
                        "certfile" => keys.certfile = Some(file()?),
                        "keyfile" => keys.keyfile = Some(file()?),
                        "cafile" => keys.cafile = Some(file()?),
                        "require_certificate" => {
                            keys.require_certificate = Some((boolean(key)?, line))
                        }
                        _ => keys.use_identity_as_username = Some((boolean(key)?, line)),
                    }
                }
                "allow_anonymous" | "password_file" | "acl_file" | "max_connections" => {
                    let mut auth = ListenerAuth::default();
                    match key {
                        "allow_anonymous" => auth.allow_anonymous = Some(boolean(key)?),
                        "max_connections" => {
                            // mosquitto: -1 = unbounded.
                            let n = number(key)?;
                            let n = usize::try_from(n).unwrap_or(usize::MAX);
                            if n == 0 {
                                // As the core's `Config::validate` words it.
                                return Err(err(
                                    "max_connections: must be at least 1 (or -1 for unbounded)"
                                        .into(),
                                ));
                            }
                            auth.max_connections = Some(n);
                        }
                        _ => {
                            // The rest of the line: a path may contain spaces.
                            let path = trimmed[key.len()..].trim();
                            if path.is_empty() {
                                return Err(err(format!("{key} needs a file name")));
                            }
                            let slot = if key == "password_file" {
                                &mut auth.password_file
                            } else {
                                &mut auth.acl_file
                            };
                            *slot = Some(PathBuf::from(path));
                        }
                    }
                    if s.per_listener_settings {
                        let target = match listeners.last_mut() {
                            Some((l, _)) => &mut l.auth,
                            None => {
                                if early_line == 0 {
                                    (early_line, early_key) = (line, key);
                                }
                                &mut early
                            }
                        };
                        target.merge(auth);
                    } else {
                        let value = format!("{auth:?}");
                        let under = listeners.len();
                        if let Some((_, v, l, u)) =
                            global_keys.iter().find(|(k, ..)| *k == key).cloned()
                        {
                            if v != value && u != under && conflict.is_none() {
                                conflict = Some(err(format!(
                                    "{key} set again under another listener, to another value than on line {l}: with per_listener_settings false one value applies to every listener (set per_listener_settings true to give each listener its own)"
                                )));
                            }
                        }
                        global_keys.retain(|(k, ..)| *k != key);
                        global_keys.push((key, value, line, under));
                        if let Some(a) = auth.allow_anonymous {
                            anonymous = Some(a);
                        }
                        if let Some(n) = auth.max_connections {
                            b.max_connections = n;
                            lines.push(("max_connections", line));
                        }
                        if auth.password_file.is_some() {
                            s.password_file = auth.password_file;
                        }
                        if auth.acl_file.is_some() {
                            s.acl_file = auth.acl_file;
                        }
                    }
                }
                "max_inflight_messages" => {
                    // mosquitto: 0 = unlimited; ours is bounded by the packet-id space.
                    let n = number(key)?;
                    b.max_inflight_messages = if n <= 0 {
                        mqsim::limits::INFLIGHT_CEILING_MESSAGES
                    } else {
                        usize::try_from(n).unwrap_or(usize::MAX)
                    };
                    lines.push(("max_inflight_messages", line));
                }
                "max_queued_messages" => {
                    b.max_queued_messages = number(key)?.max(0) as usize;
                }
                "max_queued_bytes" => {
                    b.max_queued_bytes = number(key)?.max(0) as usize;
                }
                "message_size_limit" => {
                    b.message_size_limit_bytes = number(key)?.max(0) as usize;
                }
                "max_packet_size" => {
                    b.max_packet_bytes = usize::try_from(number(key)?).unwrap_or(0);
                    lines.push(("max_packet_size", line));
                }
                "persistence" => {
                    b.persistence = boolean(key)?;
                }
                // The rest of the line: a path may hold spaces.
                "persistence_location" | "persistence_file" if args.is_empty() => {
                    return Err(err(format!("{key} needs a value")));
                }
                "persistence_location" => s.persistence_location = args.join(" ").into(),
                "persistence_file" => s.persistence_file = args.join(" "),
                // mosquitto snapshots every autosave_interval seconds and loses what came since
                // at a power cut; here every acknowledged change is in the journal before its
                // acknowledgement, so there is nothing to save periodically. Accepted, checked.
                "autosave_interval" => {
                    number(key)?;
                }
                "autosave_on_changes" => {
                    boolean(key)?;
                }
                "sys_interval" => {
                    b.sys_interval = mqsim::time::Duration::from_secs(number(key)?.max(0) as u64);
                }
                "port" => {
                    // conf.c:1826: the legacy default listener, on every interface (or on
                    // `bind_address`), and no longer local-only.
                    s.notices.push("The 'port' option is now deprecated and will be removed in a future version. Please use 'listener' instead.".into());
                    default_port = Some(ranged(key, 1..=65_535)? as u16);
                    default_line = line;
                }
                "bind_address" => {
                    // conf.c:922: the address of the default listener (`port`, else 1883).
                    let a = one(key)?;
                    let ip = a
                        .parse::<IpAddr>()
                        .map_err(|_| err(format!("bind_address: bad address '{a}'")))?;
                    bind_address = Some(ip);
                    if default_line == 0 {
                        default_line = line;
                    }
                }
                "max_keepalive" => {
                    b.max_keepalive_s = ranged(key, 0..=65_535)? as u16;
                }
                "allow_zero_length_clientid" => {
                    b.allow_zero_length_clientid = boolean(key)?;
                }
                "upgrade_outgoing_qos" => {
                    b.upgrade_outgoing_qos = boolean(key)?;
                }
                "retain_available" => {
                    b.retain_available = boolean(key)?;
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
        let default_listener = (default_port.is_some() || bind_address.is_some()).then(|| {
            let ip = bind_address.unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
            let port = default_port.unwrap_or(1883);
            Listener::new(
                SocketAddr::new(ip, port),
                bind_address.is_none(),
                default_line,
            )
        });
        let any_listener = !listeners.is_empty() || default_listener.is_some();
        b.allow_anonymous = anonymous.unwrap_or(!any_listener);
        if any_listener {
            s.listeners.clear();
            s.listeners.extend(default_listener);
            for (mut l, keys) in listeners {
                l.tls = keys.finish(l.line)?;
                s.listeners.push(l);
            }
        }
        if let Some(e) = conflict.filter(|_| s.listeners.len() > 1) {
            return Err(e);
        }
        if s.per_listener_settings {
            // Keys before any `listener` line belong to the default listener: the legacy one
            // (`port`, `bind_address`), or the implicit local one of a file without listeners.
            // mosquitto 2.0 takes them silently even when there is no such listener, where they
            // do nothing (or `max_connections` opens port 1883 on every interface).
            let default_first = default_port.is_some() || bind_address.is_some() || !any_listener;
            if early_line != 0 && !default_first {
                let key = early_key;
                return Err(ConfigError {
                    line: early_line,
                    message: format!(
                        "You must create a listener before using the {key} option with per_listener_settings true"
                    ),
                });
            }
            if default_first {
                s.listeners[0].auth = early;
            }
            for l in &mut s.listeners {
                l.auth.allow_anonymous = Some(l.auth.allow_anonymous.unwrap_or(!any_listener));
            }
        }
        b.validate().map_err(|e| ConfigError {
            line: lines
                .iter()
                .rev()
                .find(|(k, _)| *k == e.key)
                .map_or(0, |(_, l)| *l),
            message: e.to_string(),
        })?;
        s.broker = b;
        Ok(s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn persistence_keys() {
        let s = BrokerSettings::parse("listener 1883\n").unwrap();
        assert_eq!(s.persistence_path(), None);
        let s = BrokerSettings::parse(
            "persistence true\npersistence_location /var/lib/my broker/\nautosave_interval 1800\n",
        )
        .unwrap();
        assert_eq!(
            s.persistence_path(),
            Some("/var/lib/my broker/mosquitto.db".into())
        );
        let s = BrokerSettings::parse("persistence true\npersistence_file j.db\n").unwrap();
        assert_eq!(s.persistence_path(), Some("j.db".into()));
        let e = BrokerSettings::parse("\npersistence yes\n").unwrap_err();
        assert_eq!(
            (e.line, e.message.as_str()),
            (2, "Invalid persistence value (yes)")
        );
        assert_eq!(
            BrokerSettings::parse("autosave_interval soon")
                .unwrap_err()
                .line,
            1
        );
        assert!(BrokerSettings::parse("persistence_file").is_err());
    }

    #[test]
    fn seed_document_config() {
        // The two lines the source document puts in mosquitto.conf.
        let s = BrokerSettings::parse("listener 1883\nallow_anonymous true\n").unwrap();
        assert_eq!(s.listeners[0].bind, "0.0.0.0:1883".parse().unwrap());
        assert!(s.broker.allow_anonymous);
    }

    #[test]
    fn dual_stack_like_mosquitto() {
        let s = BrokerSettings::default();
        assert_eq!(
            s.listeners[0].listen_addrs(),
            vec![
                "[::1]:1883".parse().unwrap(),
                "127.0.0.1:1883".parse().unwrap()
            ]
        );
        let s = BrokerSettings::parse("listener 1883\n").unwrap();
        assert_eq!(
            s.listeners[0].listen_addrs(),
            vec![
                "[::]:1883".parse().unwrap(),
                "0.0.0.0:1883".parse().unwrap()
            ]
        );
        let s = BrokerSettings::parse("listener 1883 127.0.0.1\n").unwrap();
        assert_eq!(
            s.listeners[0].listen_addrs(),
            vec!["127.0.0.1:1883".parse().unwrap()]
        );
        let mut s = BrokerSettings::default();
        s.listeners[0].bind.set_port(0);
        assert_eq!(
            s.listeners[0].listen_addrs(),
            vec!["127.0.0.1:0".parse().unwrap()]
        );
    }

    #[test]
    fn listener_without_allow_anonymous_refuses_anonymous() {
        let s = BrokerSettings::parse("listener 1884 127.0.0.1").unwrap();
        assert_eq!(s.listeners[0].bind, "127.0.0.1:1884".parse().unwrap());
        assert!(!s.broker.allow_anonymous);
    }

    #[test]
    fn no_listener_is_local_only_and_anonymous() {
        let s = BrokerSettings::parse("# nothing\n\nmax_queued_messages 5\n").unwrap();
        assert_eq!(s.listeners[0].bind, "127.0.0.1:1883".parse().unwrap());
        assert!(s.broker.allow_anonymous);
        assert_eq!(s.broker.max_queued_messages, 5);
    }

    #[test]
    fn limits_and_unknown_keys() {
        let text = "max_inflight_messages 0\nmessage_size_limit 100\nmax_packet_size 4096\n\
                    max_connections -1\nbridge_protocol_version mqttv311\nmax_queued_bytes 1000\n";
        let s = BrokerSettings::parse(text).unwrap();
        assert_eq!(s.broker.max_inflight_messages, 65_535);
        assert_eq!(s.broker.message_size_limit_bytes, 100);
        assert_eq!(s.broker.max_packet_bytes, 4096);
        assert_eq!(s.broker.max_connections, usize::MAX);
        assert_eq!(s.broker.max_queued_bytes, 1000);
        assert_eq!(s.ignored, vec![(5, "bridge_protocol_version".to_string())]);
    }

    #[test]
    fn password_and_acl_files_as_given() {
        let s = BrokerSettings::parse(
            "listener 1883\npassword_file /etc/mosquitto/passwd\nacl_file my acl.txt\n",
        )
        .unwrap();
        assert_eq!(
            s.password_file,
            Some(PathBuf::from("/etc/mosquitto/passwd"))
        );
        assert_eq!(s.acl_file, Some(PathBuf::from("my acl.txt")));
        assert!(s.ignored.is_empty());
        let e = BrokerSettings::parse("acl_file\n").unwrap_err();
        assert_eq!(
            (e.line, e.message.as_str()),
            (1, "acl_file needs a file name")
        );
    }

    #[test]
    fn errors_name_the_line() {
        let e = BrokerSettings::parse("listener 1883\nallow_anonymous maybe\n").unwrap_err();
        assert_eq!(e.line, 2);
        let e = BrokerSettings::parse("listener abc").unwrap_err();
        assert_eq!(e.line, 1);
        assert!(BrokerSettings::parse("max_queued_messages 1 2").is_err());
        // Values the core's `Config::validate` refuses point at their line.
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

    /// The keys of the listener above them; three listeners, TLS on one.
    #[test]
    fn several_listeners_each_with_its_tls_keys() {
        let text = "allow_anonymous true\n\
                    listener 1883\n\
                    listener 8883 127.0.0.1\n\
                    certfile /etc/mqsim/server pem.pem\n\
                    keyfile /etc/mqsim/server.key\n\
                    cafile /etc/mqsim/ca.pem\n\
                    require_certificate true\n\
                    use_identity_as_username true\n\
                    listener 1884 ::1\n\
                    require_certificate false\n";
        let s = BrokerSettings::parse(text).unwrap();
        assert!(s.broker.allow_anonymous);
        let binds: Vec<_> = s.listeners.iter().map(|l| (l.bind, l.line)).collect();
        assert_eq!(
            binds,
            [
                ("0.0.0.0:1883".parse().unwrap(), 2),
                ("127.0.0.1:8883".parse().unwrap(), 3),
                ("[::1]:1884".parse().unwrap(), 9),
            ]
        );
        assert_eq!(s.listeners[0].tls, None);
        assert_eq!(s.listeners[2].tls, None);
        let file = |path: &str, line| FileSetting {
            path: path.into(),
            line,
        };
        assert_eq!(
            s.listeners[1].tls,
            Some(TlsSettings {
                // The rest of the line, spaces included, as mosquitto reads a path.
                certfile: file("/etc/mqsim/server pem.pem", 4),
                keyfile: file("/etc/mqsim/server.key", 5),
                cafile: Some(file("/etc/mqsim/ca.pem", 6)),
                require_certificate: true,
                use_identity_as_username: true,
            })
        );
        assert_eq!(
            s.listeners[1].listen_addrs(),
            vec!["127.0.0.1:8883".parse().unwrap()]
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
            BrokerSettings::parse("connection_messages true\nauth_opt_x y\nlog_timestamp false\n")
                .unwrap();
        let keys: Vec<_> = s.ignored.iter().map(|(l, k)| (*l, k.as_str())).collect();
        assert_eq!(
            keys,
            [
                (1, "connection_messages"),
                (2, "auth_opt_x"),
                (3, "log_timestamp")
            ]
        );
    }

    #[test]
    fn port_is_the_legacy_listener() {
        let s = BrokerSettings::parse("port 1884\n").unwrap();
        assert_eq!(s.listeners.len(), 1);
        assert_eq!(s.listeners[0].bind, "0.0.0.0:1884".parse().unwrap());
        assert!(s.listeners[0].dual_stack);
        assert!(!s.broker.allow_anonymous, "no longer local-only");
        assert_eq!(s.notices.len(), 1);
        assert!(s.notices[0].starts_with("The 'port' option is now deprecated"));
        let s = BrokerSettings::parse("bind_address 127.0.0.1\nport 1885\n").unwrap();
        assert_eq!(
            s.listeners[0].listen_addrs(),
            vec!["127.0.0.1:1885".parse().unwrap()]
        );
        let s = BrokerSettings::parse("bind_address 127.0.0.1\n").unwrap();
        assert_eq!(s.listeners[0].bind, "127.0.0.1:1883".parse().unwrap());
        // With listeners too: the default listener first, then theirs.
        let s = BrokerSettings::parse("port 1884\nlistener 8883 127.0.0.1\n").unwrap();
        let binds: Vec<_> = s.listeners.iter().map(|l| l.bind).collect();
        assert_eq!(
            binds,
            [
                "0.0.0.0:1884".parse().unwrap(),
                "127.0.0.1:8883".parse().unwrap()
            ]
        );
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
    fn tls_keys_that_do_not_fit_name_their_line() {
        let e = |text: &str| {
            let e = BrokerSettings::parse(text).unwrap_err();
            (e.line, e.message)
        };
        assert_eq!(
            e("certfile a.pem\nlistener 8883\n"),
            (
                1,
                "certfile belongs to a listener: put it after a `listener` line".into()
            )
        );
        assert_eq!(
            e("listener 8883\ncertfile a.pem\nlistener 1883\n"),
            (
                1,
                "both certfile and keyfile must be provided if one of them is set".into()
            )
        );
        assert_eq!(
            e("listener 8883\ncertfile a.pem\nkeyfile k.pem\nrequire_certificate true\n"),
            (
                4,
                "require_certificate true needs a cafile to check client certificates against"
                    .into()
            )
        );
        assert_eq!(
            e("listener 8883\ncertfile a\nkeyfile k\nuse_identity_as_username true\n"),
            (
                4,
                "use_identity_as_username true needs require_certificate true".into()
            )
        );
        assert_eq!(
            e("listener 1883\ncafile ca.pem\n"),
            (
                2,
                "a TLS option on a listener without certfile and keyfile".into()
            )
        );
        assert_eq!(
            e("listener 8883\nrequire_certificate yes\n"),
            (2, "Invalid require_certificate value (yes)".into())
        );
        assert_eq!(
            e("listener 8883\nkeyfile\n"),
            (2, "keyfile needs a file name".into())
        );
        assert_eq!(
            e("listener 8883 127.0.0.1 extra\n"),
            (1, "listener takes a port and an optional address".into())
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
    fn per_listener_settings_gives_each_listener_its_keys() {
        let text = "per_listener_settings true\nlistener 1883 127.0.0.1\nallow_anonymous true\n\
                    max_connections 10\nlistener 8883\npassword_file /etc/p w\nacl_file acl\n\
                    allow_anonymous false\nmax_connections -1\nlistener 1884\n";
        let s = BrokerSettings::parse(text).unwrap();
        let auth: Vec<_> = s.listeners.iter().map(|l| l.auth.clone()).collect();
        assert_eq!(
            auth,
            [
                ListenerAuth {
                    allow_anonymous: Some(true),
                    max_connections: Some(10),
                    ..ListenerAuth::default()
                },
                ListenerAuth {
                    allow_anonymous: Some(false),
                    password_file: Some("/etc/p w".into()),
                    acl_file: Some("acl".into()),
                    max_connections: Some(usize::MAX),
                },
                // A listener from the file refuses anonymous clients unless told otherwise.
                ListenerAuth {
                    allow_anonymous: Some(false),
                    ..ListenerAuth::default()
                },
            ]
        );
        assert_eq!(s.password_file, None, "nothing broker-wide");
        // Before any listener: for the legacy default listener, or the implicit local one.
        let s = BrokerSettings::parse(
            "per_listener_settings true\nallow_anonymous true\nport 1884\nlistener 1885\n",
        )
        .unwrap();
        assert_eq!(s.listeners[0].auth.allow_anonymous, Some(true));
        assert_eq!(s.listeners[1].auth.allow_anonymous, Some(false));
        let s = BrokerSettings::parse("per_listener_settings true\nacl_file a\n").unwrap();
        assert_eq!(s.listeners[0].auth.acl_file, Some("a".into()));
        assert_eq!(s.listeners[0].auth.allow_anonymous, Some(true));
    }

    #[test]
    fn per_listener_keys_before_any_listener_are_refused() {
        // mosquitto 2.0.11 takes them silently for a default listener that is never opened
        // (or, for max_connections, opens one on port 1883).
        for key in [
            "allow_anonymous true",
            "password_file p",
            "acl_file a",
            "max_connections 5",
        ] {
            let text = format!("per_listener_settings true\n# x\n{key}\nlistener 1883\n");
            let e = BrokerSettings::parse(&text).unwrap_err();
            let name = key.split(' ').next().unwrap();
            assert_eq!(
                (e.line, e.message),
                (3, format!("You must create a listener before using the {name} option with per_listener_settings true")),
            );
        }
    }

    #[test]
    fn per_listener_false_refuses_a_second_value_under_another_listener() {
        // mosquitto 2.0.11 silently applies the last one to every listener.
        let text =
            "listener 1883 127.0.0.1\nallow_anonymous true\nlistener 8883\nallow_anonymous false\n";
        let e = BrokerSettings::parse(text).unwrap_err();
        assert_eq!(e.line, 4);
        assert!(
            e.message
                .starts_with("allow_anonymous set again under another listener"),
            "{}",
            e.message
        );
        let e = BrokerSettings::parse("listener 1\npassword_file a\nlistener 2\npassword_file b\n");
        assert_eq!(e.unwrap_err().line, 4);
        // The same value again, or one listener, or before the listeners: as before.
        for ok in [
            "listener 1\nallow_anonymous true\nlistener 2\nallow_anonymous true\n",
            "allow_anonymous false\nlistener 1\nallow_anonymous true\n",
            "allow_anonymous true\nlistener 1\nlistener 2\n",
            "per_listener_settings false\nlistener 1\nlistener 2\n",
        ] {
            assert!(BrokerSettings::parse(ok).is_ok(), "{ok}");
        }
        let s = BrokerSettings::parse("allow_anonymous false\nlistener 1\nallow_anonymous true\n")
            .unwrap();
        assert!(s.broker.allow_anonymous);
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
