//! Compiling a sketch for the host: the sketch (`.ino`), the Arduino libraries it includes and
//! mqsim's Arduino core, in one C++ compiler invocation, into an executable cached by content
//! hash. At run time, since a scenario names its sketch at run time: the compiler is the
//! distribution's (`$CXX`, else `c++`), run with [`std::process::Command`] (the `cc` crate's
//! configuration comes from a build script's environment, which a running simulator has not).
//!
//! Where things come from, in order: the core (embedded in this binary, written into the cache),
//! the device's `libraries` folders, then `MQSIM_ARDUINO_LIBRARIES` (folders separated by `:`),
//! each an Arduino `libraries/` folder (`NAME/src/X.h` or `NAME/X.h`, as the Arduino IDE and
//! `arduino-cli lib install` put them).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The variable naming the user's Arduino `libraries/` folders (`:`-separated).
pub const LIBRARIES_ENV: &str = "MQSIM_ARDUINO_LIBRARIES";
/// The variable naming the cache of compiled sketches (default: `mqsim-sketches` in cargo's
/// target folder of this binary, else in the temporary folder).
pub const CACHE_ENV: &str = "MQSIM_SKETCH_CACHE";

macro_rules! core_files {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_str!(concat!("../../arduino/core/", $name)))),*]
    };
}

/// mqsim's Arduino core: (file name, text).
const CORE: &[(&str, &str)] = core_files!(
    "Arduino.cpp",
    "Arduino.h",
    "Client.h",
    "DHT.h",
    "HardwareSerial.cpp",
    "HardwareSerial.h",
    "IPAddress.cpp",
    "IPAddress.h",
    "Print.cpp",
    "Print.h",
    "Stream.cpp",
    "Stream.h",
    "WString.cpp",
    "WString.h",
    "WiFi.cpp",
    "WiFi.h",
    "WiFiClient.cpp",
    "WiFiClient.h",
    "mqsim_hal.cpp",
    "mqsim_hal.h",
);

/// The compiler's flags: the ESP32's `int` and `long` are 32 bits, the host's `long` 64; sketches
/// that depend on it are rare (`millis()` wraps after 49 days instead).
const FLAGS: &[&str] = &[
    "-std=gnu++17",
    "-O1",
    "-g0",
    "-w",
    "-DARDUINO=10819",
    "-DESP32=1",
];

/// An `#include` of a file: where, and what.
#[derive(Clone, Debug)]
struct Include {
    file: PathBuf,
    line: usize,
    name: String,
}

fn includes(file: &Path, text: &str) -> Vec<Include> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let l = line.trim_start();
        let Some(rest) = l.strip_prefix('#') else {
            continue;
        };
        let Some(rest) = rest.trim_start().strip_prefix("include") else {
            continue;
        };
        let rest = rest.trim_start();
        let close = match rest.chars().next() {
            Some('<') => '>',
            Some('"') => '"',
            _ => continue,
        };
        if let Some(end) = rest[1..].find(close) {
            out.push(Include {
                file: file.to_path_buf(),
                line: i + 1,
                name: rest[1..1 + end].to_string(),
            });
        }
    }
    out
}

/// A library found in a `libraries/` folder.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Library {
    /// Its include folder (`NAME/src` or `NAME`).
    include: PathBuf,
}

impl Library {
    /// Its sources: `.cpp`/`.c` under `src/` (recursively), or at the top and in `utility/` of
    /// the old layout, sorted.
    fn sources(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        let recursive = self.include.ends_with("src");
        collect_sources(&self.include, recursive, &mut out);
        if !recursive {
            collect_sources(&self.include.join("utility"), false, &mut out);
        }
        out.sort();
        out
    }
}

fn collect_sources(dir: &Path, recursive: bool, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
    entries.sort();
    for p in entries {
        if p.is_dir() {
            if recursive && !p.ends_with("examples") {
                collect_sources(&p, true, out);
            }
        } else if matches!(
            p.extension().and_then(|e| e.to_str()),
            Some("cpp" | "c" | "cc")
        ) {
            out.push(p);
        }
    }
}

/// The library of `roots` (in order) that has header `name`.
fn find_library(roots: &[PathBuf], name: &str) -> Option<Library> {
    for root in roots {
        let Ok(rd) = std::fs::read_dir(root) else {
            continue;
        };
        let mut dirs: Vec<PathBuf> = rd.flatten().map(|e| e.path()).collect();
        dirs.sort();
        for d in dirs {
            for include in [d.join("src"), d.clone()] {
                if include.join(name).is_file() {
                    return Some(Library { include });
                }
            }
        }
    }
    None
}

/// What a sketch is built from.
#[derive(Clone, Debug)]
pub struct SketchSource {
    /// The `.ino`.
    pub sketch: PathBuf,
    /// `libraries/` folders searched before [`LIBRARIES_ENV`]'s.
    pub libraries: Vec<PathBuf>,
}

impl SketchSource {
    /// Every `libraries/` folder searched, in order.
    pub fn library_roots(&self) -> Vec<PathBuf> {
        let mut roots = self.libraries.clone();
        if let Some(v) = std::env::var_os(LIBRARIES_ENV) {
            roots.extend(std::env::split_paths(&v).filter(|p| !p.as_os_str().is_empty()));
        }
        roots
    }
}

/// A 64-bit FNV-1a hash: stable across Rust releases (the cache's file names).
struct Fnv(u64);

impl Fnv {
    fn new() -> Fnv {
        Fnv(0xcbf2_9ce4_8422_2325)
    }
    fn bytes(&mut self, b: &[u8]) {
        for &x in b {
            self.0 ^= u64::from(x);
            self.0 = self.0.wrapping_mul(0x0100_0000_01b3);
        }
        // A separator, so that ("ab", "c") and ("a", "bc") differ.
        self.0 = (self.0 ^ 0xff).wrapping_mul(0x0100_0000_01b3);
    }
}

/// The folder of compiled sketches.
pub fn cache_dir() -> PathBuf {
    if let Some(d) = std::env::var_os(CACHE_ENV) {
        return PathBuf::from(d);
    }
    if let Some(d) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(d).join("mqsim-sketches");
    }
    // Cargo marks its target folder with CACHEDIR.TAG.
    if let Ok(exe) = std::env::current_exe() {
        for dir in exe.ancestors().skip(1) {
            if dir.join("CACHEDIR.TAG").is_file() {
                return dir.join("mqsim-sketches");
            }
        }
    }
    std::env::temp_dir().join("mqsim-sketches")
}

fn compiler() -> String {
    std::env::var("CXX").unwrap_or_else(|_| "c++".to_string())
}

/// A temporary file name unique to this process and call: compilations of one sketch by several
/// threads (tests) or processes must not write the same file.
fn unique_tmp(path: &Path) -> PathBuf {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut name = path.as_os_str().to_owned();
    name.push(format!(".tmp{}-{n}", std::process::id()));
    PathBuf::from(name)
}

/// Writes `text` to `path` unless it already holds it (atomic: a temporary file, then rename).
fn write_if_changed(path: &Path, text: &[u8]) -> Result<(), String> {
    if std::fs::read(path).is_ok_and(|t| t == text) {
        return Ok(());
    }
    let tmp = unique_tmp(path);
    std::fs::write(&tmp, text).map_err(|e| format!("{}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("{}: {e}", path.display()))
}

/// Compiles `src` (or finds it compiled): the executable's path. `Err` holds what the user must
/// read: the compiler's first errors with file and line, or the `#include` no library provides
/// and where it was looked for.
pub fn compile(src: &SketchSource) -> Result<PathBuf, String> {
    let sketch = std::fs::canonicalize(&src.sketch)
        .map_err(|e| format!("sketch {}: {e}", src.sketch.display()))?;
    let text = std::fs::read_to_string(&sketch)
        .map_err(|e| format!("sketch {}: {e}", sketch.display()))?;
    let roots = src.library_roots();

    // The libraries: every include of the sketch and, transitively, of the libraries' files,
    // that the core does not provide.
    let core_names: BTreeSet<&str> = CORE.iter().map(|(n, _)| *n).collect();
    let mut libraries: BTreeMap<Library, ()> = BTreeMap::new();
    let mut unresolved: Vec<Include> = Vec::new();
    let mut work: Vec<Include> = includes(&sketch, &text);
    let mut seen: BTreeSet<String> = BTreeSet::new();
    while let Some(inc) = work.pop() {
        if core_names.contains(inc.name.as_str()) || !seen.insert(inc.name.clone()) {
            continue;
        }
        // A header next to the including file is its own.
        if inc
            .file
            .parent()
            .is_some_and(|d| d.join(&inc.name).is_file())
        {
            continue;
        }
        match find_library(&roots, &inc.name) {
            Some(lib) if !libraries.contains_key(&lib) => {
                for f in lib.sources().into_iter().chain(headers(&lib.include)) {
                    if let Ok(t) = std::fs::read_to_string(&f) {
                        work.extend(includes(&f, &t));
                    }
                }
                libraries.insert(lib, ());
            }
            Some(_) => {}
            // A system header (<functional>, <math.h>), or missing: the compiler tells.
            None => unresolved.push(inc),
        }
    }

    // The cache key: the compiler, the flags, every source's path and text.
    let cache = cache_dir();
    let mut h = Fnv::new();
    h.bytes(compiler().as_bytes());
    for f in FLAGS {
        h.bytes(f.as_bytes());
    }
    for (name, text) in CORE {
        h.bytes(name.as_bytes());
        h.bytes(text.as_bytes());
    }
    h.bytes(sketch.as_os_str().as_encoded_bytes());
    h.bytes(text.as_bytes());
    let mut sources: Vec<PathBuf> = Vec::new();
    let mut include_dirs: Vec<PathBuf> = Vec::new();
    for lib in libraries.keys() {
        include_dirs.push(lib.include.clone());
        h.bytes(lib.include.as_os_str().as_encoded_bytes());
        for f in lib.sources().into_iter().chain(headers(&lib.include)) {
            h.bytes(f.as_os_str().as_encoded_bytes());
            h.bytes(&std::fs::read(&f).unwrap_or_default());
            if !is_header(&f) {
                sources.push(f);
            }
        }
    }
    let key = format!("{:016x}", h.0);
    let stem = sketch
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("sketch")
        .to_string();
    let exe = cache.join(format!("{stem}-{key}"));
    if exe.is_file() {
        return Ok(exe);
    }

    // The core, written once per version of it.
    let mut ch = Fnv::new();
    for (name, text) in CORE {
        ch.bytes(name.as_bytes());
        ch.bytes(text.as_bytes());
    }
    let core_dir = cache.join(format!("core-{:016x}", ch.0));
    std::fs::create_dir_all(&core_dir).map_err(|e| format!("{}: {e}", core_dir.display()))?;
    for (name, text) in CORE {
        write_if_changed(&core_dir.join(name), text.as_bytes())?;
    }
    // The sketch as the Arduino IDE compiles it: Arduino.h first, line numbers of the .ino.
    let wrapper = cache.join(format!("{stem}-{key}.ino.cpp"));
    let mut w = String::new();
    let _ = writeln!(w, "#include <Arduino.h>");
    let _ = writeln!(w, "#line 1 \"{}\"", sketch.display());
    w.push_str(&text);
    w.push('\n');
    write_if_changed(&wrapper, w.as_bytes())?;

    let mut cmd = Command::new(compiler());
    cmd.args(FLAGS);
    cmd.arg("-I").arg(&core_dir);
    for d in &include_dirs {
        cmd.arg("-I").arg(d);
    }
    for (name, _) in CORE {
        if name.ends_with(".cpp") {
            cmd.arg(core_dir.join(name));
        }
    }
    for s in &sources {
        if s.extension().is_some_and(|e| e == "c") {
            cmd.arg("-x").arg("c").arg(s).arg("-x").arg("none");
        } else {
            cmd.arg(s);
        }
    }
    cmd.arg(&wrapper);
    let tmp = unique_tmp(&exe);
    cmd.arg("-o").arg(&tmp);
    let out = cmd.output().map_err(|e| {
        format!(
            "sketch {}: cannot run the C++ compiler `{}`: {e} (install g++, or set CXX)",
            sketch.display(),
            compiler()
        )
    })?;
    if !out.status.success() {
        let _ = std::fs::remove_file(&tmp);
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(explain(&sketch, &stderr, &unresolved, &roots));
    }
    std::fs::rename(&tmp, &exe).map_err(|e| format!("{}: {e}", exe.display()))?;
    Ok(exe)
}

fn is_header(p: &Path) -> bool {
    matches!(p.extension().and_then(|e| e.to_str()), Some("h" | "hpp"))
}

/// A library's headers (top level of its include folder), sorted.
fn headers(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(dir)
        .map(|rd| {
            rd.flatten()
                .map(|e| e.path())
                .filter(|p| is_header(p))
                .collect()
        })
        .unwrap_or_default();
    out.sort();
    out
}

/// Lines of the compiler's output worth showing first.
const ERRORS_SHOWN: usize = 5;

/// The compiler's failure, for the user: a missing header named with its `#include` and where
/// it was looked for, else the first errors with file and line.
fn explain(sketch: &Path, stderr: &str, unresolved: &[Include], roots: &[PathBuf]) -> String {
    let looked = || {
        let mut s = String::from("mqsim's Arduino core");
        for r in roots {
            let _ = write!(s, ", {}", r.display());
        }
        if roots.is_empty() {
            let _ = write!(
                s,
                " (no libraries folder: set {LIBRARIES_ENV} or the device's `libraries`)"
            );
        }
        s
    };
    // `file:line:col: fatal error: X.h: No such file or directory`
    for l in stderr.lines() {
        if let Some((at, rest)) = l.split_once(": fatal error: ") {
            if let Some(name) = rest.strip_suffix(": No such file or directory") {
                let inc = unresolved.iter().find(|i| i.name == name);
                let at = match inc {
                    Some(i) => format!("{}:{}", i.file.display(), i.line),
                    None => at.to_string(),
                };
                return format!(
                    "sketch {}: missing library: {at}: #include <{name}>: no library has it (looked in {})",
                    sketch.display(),
                    looked()
                );
            }
        }
    }
    let errors: Vec<&str> = stderr
        .lines()
        .filter(|l| l.contains("error:"))
        .take(ERRORS_SHOWN)
        .collect();
    let shown = if errors.is_empty() {
        stderr
            .lines()
            .take(ERRORS_SHOWN)
            .collect::<Vec<_>>()
            .join("\n  ")
    } else {
        errors.join("\n  ")
    };
    format!("sketch {} does not compile:\n  {shown}", sketch.display())
}
