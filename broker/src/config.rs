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
mod tests;
