//! A sweep split over machines: `--shard i/n` runs every n-th seed of the range (seed `a + i`,
//! `a + i + n`, ...), each shard writes its outcomes to a file ([`ShardFile`], JSON), and
//! `mqsim sim merge` puts the files back together ([`merge`]) into the table one machine would
//! have printed. Any scheduler that starts n numbered copies of a command will do: a Kubernetes
//! Indexed Job (its index in `JOB_COMPLETION_INDEX`), a CI matrix.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::outcome::SeedOutcome;

/// The environment variable a Kubernetes Indexed Job sets to each pod's index.
pub const INDEX_ENV: &str = "JOB_COMPLETION_INDEX";
/// The shard count when `--shard` is not given and [`INDEX_ENV`] is set (or `--shard-count`).
pub const COUNT_ENV: &str = "MQSIM_SHARD_COUNT";
/// What a shard file's `format` says; a file of another format is refused.
pub const FORMAT: &str = "mqsim-sweep-shard/1";

/// Shard `index` of `count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Shard {
    pub index: u64,
    pub count: u64,
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl Shard {
    /// The whole range on one machine.
    pub const ALL: Shard = Shard { index: 0, count: 1 };

    /// A shard, checked: `index < count`, `count > 0`.
    pub fn new(index: u64, count: u64) -> Result<Shard, String> {
        if count == 0 {
            return Err(format!(
                "shard {index}/{count}: the count must be at least 1"
            ));
        }
        if index >= count {
            return Err(format!(
                "shard {index}/{count}: the index must be below the count (0..={})",
                count - 1
            ));
        }
        Ok(Shard { index, count })
    }

    /// `i/n`, as `--shard` takes it.
    pub fn parse(s: &str) -> Result<Shard, String> {
        let (i, n) = s
            .split_once('/')
            .ok_or_else(|| format!("expected INDEX/COUNT (as 0/4), got {s:?}"))?;
        let i = i
            .trim()
            .parse()
            .map_err(|_| format!("shard index {i:?} is not a number"))?;
        let n = n
            .trim()
            .parse()
            .map_err(|_| format!("shard count {n:?} is not a number"))?;
        Shard::new(i, n)
    }

    /// The shard the environment asks for when `--shard` is not given: the index from
    /// [`INDEX_ENV`], the count from `count` (`--shard-count`) or [`COUNT_ENV`]. `None` when no
    /// index is set.
    pub fn from_env(
        count: Option<u64>,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Option<Shard>, String> {
        let Some(index) = env(INDEX_ENV) else {
            return Ok(None);
        };
        let index: u64 = index
            .trim()
            .parse()
            .map_err(|_| format!("{INDEX_ENV}={index:?} is not a shard index"))?;
        let count = match (count, env(COUNT_ENV)) {
            (Some(n), _) => n,
            (None, Some(n)) => n
                .trim()
                .parse()
                .map_err(|_| format!("{COUNT_ENV}={n:?} is not a shard count"))?,
            (None, None) => {
                return Err(format!(
                    "{INDEX_ENV}={index} is set but not the shard count: give --shard-count N \
                     or {COUNT_ENV} (the Job's completions)"
                ))
            }
        };
        Shard::new(index, count).map(Some)
    }

    /// This shard's seeds of `a..b`: `a + index`, then every `count`-th.
    pub fn seeds(&self, (a, b): (u64, u64)) -> Vec<u64> {
        let step = usize::try_from(self.count).unwrap_or(usize::MAX);
        (a.saturating_add(self.index)..b).step_by(step).collect()
    }
}

/// What a scenario was: the path given, and a hash of its text (FNV-1a, 64 bits: an identity
/// check between shard files, not a defence against forgery).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScenarioId {
    pub file: String,
    pub hash: String,
}

impl ScenarioId {
    pub fn of(file: &str, text: &str) -> ScenarioId {
        // FNV-1a 64-bit: offset basis and prime from the FNV reference
        // (http://www.isthe.com/chongo/tech/comp/fnv/).
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        for b in text.bytes() {
            h ^= u64::from(b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
        ScenarioId {
            file: file.to_string(),
            hash: format!("fnv1a64:{h:016x}"),
        }
    }
}

/// What a sweep (or one shard of it) writes with `--out`: what was swept and each seed's outcome.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardFile {
    pub format: String,
    pub scenario: ScenarioId,
    /// The whole sweep's range, `[a, b)`.
    pub seeds: [u64; 2],
    pub shard: Shard,
    /// Swept with `--swarm`.
    pub swarm: bool,
    /// `--duration S`, when it overrode the file's.
    pub duration_s: Option<u64>,
    /// `--broker-profile NAME`, when it overrode the file's.
    #[serde(default)]
    pub broker_profile: Option<String>,
    /// This shard's seeds, in order.
    pub outcomes: Vec<SeedOutcome>,
}

/// Shard files put back together: the sweep's identity and every seed's outcome, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Merged {
    pub scenario: ScenarioId,
    pub seeds: [u64; 2],
    pub swarm: bool,
    pub duration_s: Option<u64>,
    pub outcomes: Vec<SeedOutcome>,
}

/// Puts `files` (each with the name it was read from) back together, after checking that they
/// are the shards of one sweep: one scenario (by hash), one seed range, the same options, one
/// shard count, each shard exactly once, each holding its own seeds. `Err` says which file
/// differs, or which shard is there twice or missing.
pub fn merge(files: &[(String, ShardFile)]) -> Result<Merged, String> {
    let Some((first_name, first)) = files.first() else {
        return Err("no shard files to merge".to_string());
    };
    for (name, f) in files {
        if f.format != FORMAT {
            return Err(format!(
                "{name}: format {:?}, expected {FORMAT:?} (written by `mqsim sim --seeds A..B --out FILE`)",
                f.format
            ));
        }
    }
    for (name, f) in &files[1..] {
        if f.scenario.hash != first.scenario.hash {
            return Err(format!(
                "{name} is of another scenario: {} ({}), {first_name} is of {} ({})",
                f.scenario.file, f.scenario.hash, first.scenario.file, first.scenario.hash
            ));
        }
        if f.seeds != first.seeds {
            return Err(format!(
                "{name} swept seeds {}..{}, {first_name} seeds {}..{}: different seed ranges",
                f.seeds[0], f.seeds[1], first.seeds[0], first.seeds[1]
            ));
        }
        if (f.swarm, f.duration_s, &f.broker_profile)
            != (first.swarm, first.duration_s, &first.broker_profile)
        {
            return Err(format!(
                "{name} ran with {}, {first_name} with {}: different options",
                options(f),
                options(first)
            ));
        }
        if f.shard.count != first.shard.count {
            return Err(format!(
                "{name} is shard {} and {first_name} shard {}: different shard counts",
                f.shard, first.shard
            ));
        }
    }
    let mut seen: Vec<Option<&str>> = vec![None; usize::try_from(first.shard.count).unwrap_or(0)];
    for (name, f) in files {
        let slot = usize::try_from(f.shard.index)
            .ok()
            .and_then(|i| seen.get_mut(i))
            .ok_or_else(|| format!("{name}: shard {} is not a shard", f.shard))?;
        if let Some(other) = slot {
            return Err(format!(
                "shard {} is in both {other} and {name}: overlapping shards",
                f.shard
            ));
        }
        *slot = Some(name);
        let want = f.shard.seeds((f.seeds[0], f.seeds[1]));
        let have: Vec<u64> = f.outcomes.iter().map(|o| o.seed).collect();
        if have != want {
            return Err(format!(
                "{name}: holds {} outcomes that are not shard {}'s {} seeds of {}..{} (a file cut short?)",
                have.len(),
                f.shard,
                want.len(),
                f.seeds[0],
                f.seeds[1]
            ));
        }
    }
    let missing: Vec<String> = seen
        .iter()
        .enumerate()
        .filter(|(_, s)| s.is_none())
        .map(|(i, _)| format!("{i}/{}", first.shard.count))
        .collect();
    if !missing.is_empty() {
        return Err(format!("missing shards: {}", missing.join(", ")));
    }
    let mut outcomes: Vec<SeedOutcome> = files
        .iter()
        .flat_map(|(_, f)| f.outcomes.iter().cloned())
        .collect();
    outcomes.sort_by_key(|o| o.seed);
    Ok(Merged {
        scenario: first.scenario.clone(),
        seeds: first.seeds,
        swarm: first.swarm,
        duration_s: first.duration_s,
        outcomes,
    })
}

fn options(f: &ShardFile) -> String {
    let swarm = if f.swarm { "--swarm" } else { "no --swarm" };
    let duration = match f.duration_s {
        Some(d) => format!("--duration {d}"),
        None => "the file's duration".to_string(),
    };
    let profile = match &f.broker_profile {
        Some(p) => format!("--broker-profile {p}"),
        None => "the file's broker profile".to_string(),
    };
    format!("{swarm}, {duration}, {profile}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(shard: Shard, seeds: (u64, u64), hash: &str) -> (String, ShardFile) {
        let outcomes = shard
            .seeds(seeds)
            .into_iter()
            .map(|seed| SeedOutcome {
                whole: Default::default(),
                seed,
                qos: [None, None, None],
                broken: false,
                failure: None,
            })
            .collect();
        (
            format!("shard-{}.json", shard.index),
            ShardFile {
                format: FORMAT.to_string(),
                scenario: ScenarioId {
                    file: "s.toml".into(),
                    hash: hash.into(),
                },
                seeds: [seeds.0, seeds.1],
                shard,
                swarm: false,
                duration_s: None,
                broker_profile: None,
                outcomes,
            },
        )
    }

    #[test]
    fn shard_specs_are_checked() {
        assert_eq!(Shard::parse("1/3"), Ok(Shard { index: 1, count: 3 }));
        assert!(Shard::parse("3/2").unwrap_err().contains("below the count"));
        assert!(Shard::parse("0/0").unwrap_err().contains("at least 1"));
        assert!(Shard::parse("2").unwrap_err().contains("INDEX/COUNT"));
        assert!(Shard::parse("a/2").unwrap_err().contains("not a number"));
    }

    #[test]
    fn shards_take_every_nth_seed_and_together_cover_the_range_once() {
        let s = |i| Shard::new(i, 3).unwrap();
        assert_eq!(s(0).seeds((10, 20)), [10, 13, 16, 19]);
        assert_eq!(s(2).seeds((10, 20)), [12, 15, 18]);
        let mut all: Vec<u64> = (0..3).flat_map(|i| s(i).seeds((10, 20))).collect();
        all.sort_unstable();
        assert_eq!(all, (10..20).collect::<Vec<_>>());
        assert_eq!(Shard::new(5, 9).unwrap().seeds((0, 3)), Vec::<u64>::new());
    }

    #[test]
    fn the_environment_of_an_indexed_job_gives_the_shard() {
        let env = |vars: &'static [(&'static str, &'static str)]| {
            move |k: &str| {
                vars.iter()
                    .find(|(n, _)| *n == k)
                    .map(|(_, v)| v.to_string())
            }
        };
        assert_eq!(Shard::from_env(None, env(&[])), Ok(None));
        assert_eq!(
            Shard::from_env(None, env(&[(INDEX_ENV, "2"), (COUNT_ENV, "4")])),
            Ok(Some(Shard { index: 2, count: 4 }))
        );
        assert_eq!(
            Shard::from_env(Some(3), env(&[(INDEX_ENV, "2"), (COUNT_ENV, "4")])),
            Ok(Some(Shard { index: 2, count: 3 }))
        );
        assert!(Shard::from_env(None, env(&[(INDEX_ENV, "2")]))
            .unwrap_err()
            .contains("--shard-count"));
        assert!(Shard::from_env(Some(2), env(&[(INDEX_ENV, "2")]))
            .unwrap_err()
            .contains("below the count"));
    }

    #[test]
    fn merge_puts_the_shards_back_in_seed_order() {
        let files: Vec<_> = [2, 0, 1]
            .map(|i| file(Shard::new(i, 3).unwrap(), (5, 15), "h"))
            .into();
        let m = merge(&files).unwrap();
        let seeds: Vec<u64> = m.outcomes.iter().map(|o| o.seed).collect();
        assert_eq!(seeds, (5..15).collect::<Vec<_>>());
    }

    #[test]
    fn merge_refuses_what_is_not_one_sweep_and_says_which() {
        let s = |i, n| Shard::new(i, n).unwrap();
        let ok = |i| file(s(i, 3), (0, 30), "h");
        let err = |files: Vec<(String, ShardFile)>| merge(&files).unwrap_err();
        let other = file(s(1, 3), (0, 30), "other");
        assert!(err(vec![ok(0), other, ok(2)]).contains("shard-1.json is of another scenario"));
        let range = file(s(1, 3), (0, 31), "h");
        assert!(err(vec![ok(0), range, ok(2)]).contains("different seed ranges"));
        assert!(err(vec![ok(0), ok(1), ok(1), ok(2)]).contains("shard 1/3 is in both"));
        assert_eq!(err(vec![ok(0), ok(2)]), "missing shards: 1/3");
        let count = file(s(1, 4), (0, 30), "h");
        assert!(err(vec![ok(0), count, ok(2)]).contains("different shard counts"));
        let mut short = ok(1);
        short.1.outcomes.pop();
        assert!(err(vec![ok(0), short, ok(2)]).contains("cut short"));
        let mut swarm = ok(1);
        swarm.1.swarm = true;
        assert!(err(vec![ok(0), swarm, ok(2)]).contains("different options"));
        let mut profile = ok(2);
        profile.1.broker_profile = Some("mosquitto-2.0".into());
        let e = err(vec![ok(0), ok(1), profile]);
        assert!(e.contains("--broker-profile mosquitto-2.0, shard-0.json with no --swarm, the file's duration, the file's broker profile"), "{e}");
        assert!(err(vec![]).contains("no shard files"));
    }
}
