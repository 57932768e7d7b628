//! What mosquitto 2.0's config reader knows (`src/conf.c`, v2.0.20): every key it accepts, and
//! its `log_dest` / `log_type` values. A key that is not in [`KNOWN_KEYS`] is an error there
//! ("Unknown configuration variable", conf.c:2190) and so here; a known key we do not implement
//! is reported at start-up and ignored, so an existing mosquitto.conf still loads.

use std::path::PathBuf;

/// Every key mosquitto 2.0.20's `config__read_file_core` accepts (besides the `auth_opt_` and
/// `plugin_opt_` prefixes), sorted.
const KNOWN_KEYS: &[&str] = &[
    "acl_file",
    "address",
    "addresses",
    "allow_anonymous",
    "allow_duplicate_messages",
    "allow_zero_length_clientid",
    "auth_plugin",
    "auth_plugin_deny_special_chars",
    "auto_id_prefix",
    "autosave_interval",
    "autosave_on_changes",
    "bind_address",
    "bind_interface",
    "bridge_alpn",
    "bridge_attempt_unsubscribe",
    "bridge_bind_address",
    "bridge_cafile",
    "bridge_capath",
    "bridge_certfile",
    "bridge_identity",
    "bridge_insecure",
    "bridge_keyfile",
    "bridge_max_packet_size",
    "bridge_outgoing_retain",
    "bridge_protocol_version",
    "bridge_psk",
    "bridge_require_ocsp",
    "bridge_tls_version",
    "cafile",
    "capath",
    "certfile",
    "check_retain_source",
    "ciphers",
    "ciphers_tls1.3",
    "cleansession",
    "clientid",
    "clientid_prefixes",
    "connection",
    "connection_messages",
    "crlfile",
    "dhparamfile",
    "http_dir",
    "idle_timeout",
    "include_dir",
    "keepalive_interval",
    "keyfile",
    "listener",
    "local_cleansession",
    "local_clientid",
    "local_password",
    "local_username",
    "log_dest",
    "log_facility",
    "log_timestamp",
    "log_timestamp_format",
    "log_type",
    "max_connections",
    "max_inflight_bytes",
    "max_inflight_messages",
    "max_keepalive",
    "max_packet_size",
    "max_qos",
    "max_queued_bytes",
    "max_queued_messages",
    "max_topic_alias",
    "maximum_qos",
    "memory_limit",
    "message_size_limit",
    "mount_point",
    "notification_topic",
    "notifications",
    "notifications_local_only",
    "password",
    "password_file",
    "per_listener_settings",
    "persistence",
    "persistence_file",
    "persistence_location",
    "persistent_client_expiration",
    "pid_file",
    "plugin",
    "port",
    "protocol",
    "psk_file",
    "psk_hint",
    "queue_qos0_messages",
    "remote_clientid",
    "remote_password",
    "remote_username",
    "require_certificate",
    "restart_timeout",
    "retain_available",
    "retained_persistence",
    "retry_interval",
    "round_robin",
    "set_tcp_nodelay",
    "socket_domain",
    "start_type",
    "sys_interval",
    "threshold",
    "tls_engine",
    "tls_engine_kpass_sha1",
    "tls_keyform",
    "tls_version",
    "topic",
    "try_private",
    "upgrade_outgoing_qos",
    "use_identity_as_username",
    "use_subject_as_username",
    "use_username_as_clientid",
    "user",
    "username",
    "websockets_headers_size",
    "websockets_log_level",
];

/// Whether mosquitto 2.0 accepts `key` (it may still refuse its value).
pub fn known_key(key: &str) -> bool {
    KNOWN_KEYS.binary_search(&key).is_ok()
        || key.starts_with("auth_opt_")
        || key.starts_with("plugin_opt_")
}

/// Keys that set security options: `per_listener_settings true` must come before them
/// (conf.c:1779-1784; `conf__set_cur_security_options` callers).
pub fn security_key(key: &str) -> bool {
    matches!(
        key,
        "acl_file"
            | "allow_anonymous"
            | "allow_zero_length_clientid"
            | "auth_plugin"
            | "auto_id_prefix"
            | "password_file"
            | "plugin"
            | "psk_file"
    ) || key.starts_with("auth_opt_")
        || key.starts_with("plugin_opt_")
}

/// `log_type` classes, as mosquitto's `MOSQ_LOG_*` bits.
pub mod log_type {
    pub const ERROR: u32 = 1 << 0;
    pub const WARNING: u32 = 1 << 1;
    pub const NOTICE: u32 = 1 << 2;
    pub const INFORMATION: u32 = 1 << 3;
    pub const DEBUG: u32 = 1 << 4;
    pub const SUBSCRIBE: u32 = 1 << 5;
    pub const UNSUBSCRIBE: u32 = 1 << 6;
    pub const WEBSOCKETS: u32 = 1 << 7;
    pub const INTERNAL: u32 = 1 << 8;
    pub const ALL: u32 = u32::MAX;
    /// mosquitto's default without `-v` (conf.c:184).
    pub const DEFAULT: u32 = ERROR | WARNING | NOTICE | INFORMATION;
}

/// Where and what the broker logs (`log_dest`, `log_type`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogSettings {
    pub stderr: bool,
    pub stdout: bool,
    /// `log_dest file PATH`: appended to.
    pub file: Option<PathBuf>,
    /// [`log_type`] bits.
    pub types: u32,
}

impl Default for LogSettings {
    /// mosquitto's defaults on Linux: stderr, errors to information (conf.c:180-185).
    fn default() -> Self {
        LogSettings {
            stderr: true,
            stdout: false,
            file: None,
            types: log_type::DEFAULT,
        }
    }
}

/// `log_dest` and `log_type` lines of one file, accumulated as mosquitto does: the first line of
/// each kind replaces the default, later ones add to it, `none` clears what came before.
#[derive(Debug, Default)]
pub struct LogLines {
    dest: Option<LogSettings>,
    types: Option<u32>,
}

/// What a `log_dest` line did that the caller reports.
pub enum DestOutcome {
    Set,
    /// A destination mosquitto has and we do not (`syslog`, `topic`, `dlt`): ignored.
    Unsupported,
}

impl LogLines {
    /// One `log_dest` line's words after the key (conf.c:1519-1573).
    pub fn dest(&mut self, args: &[&str]) -> Result<DestOutcome, String> {
        let d = self.dest.get_or_insert(LogSettings {
            stderr: false,
            stdout: false,
            file: None,
            types: 0,
        });
        match args {
            [] => return Err("Empty log_dest value in configuration".into()),
            ["none", ..] => {
                d.stderr = false;
                d.stdout = false;
                d.file = None;
            }
            ["stderr", ..] => d.stderr = true,
            ["stdout", ..] => d.stdout = true,
            ["syslog" | "topic" | "dlt", ..] => return Ok(DestOutcome::Unsupported),
            ["file", path @ ..] => {
                if d.file.is_some() {
                    return Err("Duplicate \"log_dest file\" value".into());
                }
                if path.is_empty() {
                    return Err("Empty \"log_dest file\" value in configuration".into());
                }
                d.file = Some(PathBuf::from(path.join(" ")));
            }
            [v, ..] => return Err(format!("Invalid log_dest value ({v})")),
        }
        Ok(DestOutcome::Set)
    }

    /// One `log_type` line's words after the key (conf.c:1613-1647).
    pub fn log_type(&mut self, args: &[&str]) -> Result<(), String> {
        use log_type::*;
        let bit = match args {
            [] => return Err("Empty log_type value in configuration".into()),
            [v, ..] => match *v {
                "none" => {
                    self.types = Some(0);
                    return Ok(());
                }
                "all" => {
                    self.types = Some(ALL);
                    return Ok(());
                }
                "error" => ERROR,
                "warning" => WARNING,
                "notice" => NOTICE,
                "information" => INFORMATION,
                "debug" => DEBUG,
                "subscribe" => SUBSCRIBE,
                "unsubscribe" => UNSUBSCRIBE,
                "internal" => INTERNAL,
                "websockets" => WEBSOCKETS,
                v => return Err(format!("Invalid log_type value ({v})")),
            },
        };
        *self.types.get_or_insert(0) |= bit;
        Ok(())
    }

    /// The settings: defaults where the file said nothing.
    pub fn finish(self) -> LogSettings {
        let mut s = self.dest.unwrap_or_default();
        s.types = self.types.unwrap_or(log_type::DEFAULT);
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_keys_are_sorted_for_binary_search() {
        assert!(KNOWN_KEYS.windows(2).all(|w| w[0] < w[1]));
        assert!(known_key("persistence") && known_key("auth_opt_x") && known_key("plugin_opt_y"));
        assert!(!known_key("persistance") && !known_key("Listener"));
    }
}
