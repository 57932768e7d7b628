//! `mqsim sim merge FILES...`: the shard files of one sweep (`--seeds A..B --shard I/N --out F`)
//! put back together into the table one machine would have printed. Files of different
//! scenarios, seed ranges or options, or shards twice or missing, are refused (exit 2), saying
//! which.

use std::path::PathBuf;
use std::process::ExitCode;

use mqsim_sim::sweep::shard::{merge, ShardFile};
use mqsim_sim::sweep::table::Table;

#[derive(clap::Subcommand, Debug, Clone)]
pub enum SimCommand {
    /// Combine the shard files of one sweep (`--seeds A..B --shard I/N --out FILE`) into its
    /// table.
    Merge(MergeArgs),
}

#[derive(clap::Args, Debug, Clone)]
pub struct MergeArgs {
    /// The shard files, one per shard.
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// Print the table as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn main(args: &MergeArgs) -> ExitCode {
    let mut files = Vec::new();
    for path in &args.files {
        let name = path.display().to_string();
        let file = std::fs::read_to_string(path)
            .map_err(|e| format!("cannot read: {e}"))
            .and_then(|t| {
                serde_json::from_str::<ShardFile>(&t).map_err(|e| {
                    format!("not a shard file (mqsim sim --seeds A..B --out FILE): {e}")
                })
            });
        match file {
            Ok(f) => files.push((name, f)),
            Err(e) => {
                eprintln!("mqsim sim merge: {name}: {e}");
                return ExitCode::from(2);
            }
        }
    }
    let merged = match merge(&files) {
        Ok(m) => m,
        Err(e) => {
            eprintln!("mqsim sim merge: {e}");
            return ExitCode::from(2);
        }
    };
    let seeds = (merged.seeds[0], merged.seeds[1]);
    super::sweep::print_table(
        &merged.scenario,
        seeds,
        None,
        merged.swarm,
        &Table::of(&merged.outcomes),
        args.json,
    )
}
