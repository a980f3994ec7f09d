//! The `replicate` command line: parses arguments, then calls the library. No logic of its own.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use replicate::experiments::{self, PlanOptions, Profile, RunOptions};
use replicate::util;

#[derive(Parser)]
#[command(name = "replicate", version, about = "Reproduce DeepID2, FaceNet, center loss and L-Softmax on MNIST")]
struct Cli {
    /// MNIST directory (default: data/mnist under the project root, or REPLICATE_DATA_DIR).
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// Results directory (default: results/ under the project root, or REPLICATE_RESULTS_DIR).
    #[arg(long, global = true)]
    results_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Fill data/mnist: files already there, then MNIST_MIRROR, then the Hugging Face hub.
    Data,
    /// Run one experiment's sweep (finished runs are skipped), then redraw its figures.
    Run {
        /// Experiment name (`replicate list` shows them).
        experiment: String,
        #[command(flatten)]
        args: RunArgs,
    },
    /// Run every experiment, then regenerate every figure.
    ReproduceAll {
        #[command(flatten)]
        args: RunArgs,
        /// Print the plan and its time estimate, then stop.
        #[arg(long)]
        plan_only: bool,
    },
    /// Merge the results directories of shards (`--shard i/n` runs) into --results-dir, by run_id.
    Merge {
        /// Results directories to merge in.
        #[arg(required = true)]
        from: Vec<PathBuf>,
    },
    /// List the experiments and their run counts per profile.
    List,
    /// Training/inference speed of LeNets++ (candle's ops vs the fast kernels) and mining times.
    Bench {
        /// Fewer repetitions.
        #[arg(long)]
        quick: bool,
        /// Only time each convolution layer of the fast kernels.
        #[arg(long)]
        layers: bool,
        /// Only time the fast kernels at this width, printing `train img/s` and `inference img/s`.
        #[arg(long, value_name = "WIDTH")]
        speed: Option<f64>,
    },
    /// Print the runs an experiment would execute and which are already recorded.
    Plan {
        experiment: String,
        #[command(flatten)]
        args: RunArgs,
    },
}

#[derive(clap::Args, Clone)]
struct RunArgs {
    /// smoke (seconds, CI), quick (2-core CPU, default) or paper (the papers' schedules).
    #[arg(long, default_value = "quick")]
    profile: String,
    /// Override a config key in every run: key=value, or key=v1,v2 to sweep it.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
    /// Recompute runs that are already recorded.
    #[arg(long)]
    force: bool,
    /// cpu (default) or cuda (needs the `cuda` feature).
    #[arg(long, default_value = "cpu")]
    device: String,
    /// Run only shard i of n of the planned runs (e.g. 0/4), for batch schedulers.
    #[arg(long)]
    shard: Option<String>,
}

impl RunArgs {
    fn options(&self, cli: &Cli) -> Result<RunOptions> {
        let overrides = self
            .set
            .iter()
            .map(|kv| {
                kv.split_once('=')
                    .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
                    .with_context(|| format!("--set takes key=value, got {kv:?}"))
            })
            .collect::<Result<Vec<_>>>()?;
        let device = match self.device.as_str() {
            "cpu" => candle_core::Device::Cpu,
            "cuda" => candle_core::Device::new_cuda(0)
                .context("cannot open CUDA device 0 (is the binary built with `--features cuda`?)")?,
            other => anyhow::bail!("unknown device {other:?}; valid devices: cpu, cuda"),
        };
        let shard = match &self.shard {
            None => None,
            Some(s) => {
                let parsed =
                    s.split_once('/').and_then(|(i, n)| Some((i.parse::<usize>().ok()?, n.parse::<usize>().ok()?)));
                match parsed {
                    Some((i, n)) if n > 0 && i < n => Some((i, n)),
                    _ => anyhow::bail!("--shard takes i/n with 0 ≤ i < n, got {s:?}"),
                }
            }
        };
        Ok(RunOptions {
            plan: PlanOptions {
                profile: Profile::parse(&self.profile)?,
                overrides,
                force: self.force,
                results_dir: cli.results_dir.clone().unwrap_or_else(util::default_results_dir),
                shard,
            },
            data_dir: cli.data_dir.clone().unwrap_or_else(util::default_data_dir),
            device,
        })
    }
}

fn main() -> ExitCode {
    util::reuse_freed_memory();
    let cli = Cli::parse();
    match run(&cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// Exit status of `replicate data` when no source had the data (so `just data` can try the hub build).
const EXIT_NOT_FOUND: u8 = 3;

fn run(cli: &Cli) -> Result<ExitCode> {
    match &cli.command {
        Command::Data => {
            let dir = cli.data_dir.clone().unwrap_or_else(util::default_data_dir);
            let mirror = std::env::var_os("MNIST_MIRROR").map(PathBuf::from);
            match replicate::data::fetch(&dir, mirror.as_deref()) {
                Ok(source) => {
                    let how = match source {
                        replicate::data::Source::AlreadyPresent => "already present and valid".to_string(),
                        replicate::data::Source::Mirror(m) => format!("copied from {}", m.display()),
                        replicate::data::Source::Hub => "downloaded from the Hugging Face hub".to_string(),
                    };
                    println!("MNIST in {}: {how}", dir.display());
                    Ok(ExitCode::SUCCESS)
                }
                Err(e @ replicate::data::DataError::NotFound { .. }) => {
                    eprintln!("error: {e}");
                    Ok(ExitCode::from(EXIT_NOT_FOUND))
                }
                Err(e) => Err(e.into()),
            }
        }
        Command::Run { experiment, args } => {
            let opts = args.options(cli)?;
            let exp = experiments::find(experiment)?;
            let report = experiments::run_experiment(exp, &opts, None)?;
            print_report(exp.name(), &report);
            Ok(ExitCode::SUCCESS)
        }
        Command::ReproduceAll { args, plan_only } => {
            let opts = args.options(cli)?;
            // The plan, from what is recorded now (the leaderboard's λ follow the sweeps run before it).
            let mut total = (0usize, 0usize, 0.0f64);
            println!(
                "reproduce-all on the {} profile{}:",
                opts.plan.profile.name(),
                opts.plan.shard.map(|(i, n)| format!(", shard {i}/{n}")).unwrap_or_default()
            );
            for exp in experiments::registry() {
                let planned = experiments::plan(exp, &opts.plan)?;
                let todo: Vec<_> = planned.iter().filter(|r| r.done.is_none()).collect();
                let estimate: f64 = todo.iter().map(|r| experiments::estimated_seconds(&r.config)).sum();
                println!(
                    "  {:<18} {:>3} runs to do, {:>3} recorded, about {}",
                    exp.name(),
                    todo.len(),
                    planned.len() - todo.len(),
                    replicate::train::fmt_secs(estimate)
                );
                total = (total.0 + todo.len(), total.1 + planned.len() - todo.len(), total.2 + estimate);
            }
            println!(
                "  {:<18} {:>3} runs to do, {:>3} recorded, about {} (estimated at ~60 GFLOP/s, a 2-core CPU)",
                "total",
                total.0,
                total.1,
                replicate::train::fmt_secs(total.2)
            );
            if *plan_only {
                return Ok(ExitCode::SUCCESS);
            }
            let mut progress = experiments::PlanProgress::new(total.0, total.2);
            let mut data = None;
            for exp in experiments::registry() {
                let todo = experiments::plan(exp, &opts.plan)?.iter().filter(|r| r.done.is_none()).count();
                if todo > 0 && data.is_none() {
                    data = Some(experiments::load_data(&opts.data_dir)?);
                }
                let mut report = experiments::run_experiment_with(exp, &opts, data.as_ref(), Some(&mut progress))?;
                // After an experiment that trained, so that an interrupted plan leaves REPORT.md current.
                if !report.executed.is_empty() {
                    report.figures.push(replicate::report::write(&opts.plan.results_dir)?);
                }
                print_report(exp.name(), &report);
            }
            progress.finish();
            println!("wrote {}", replicate::report::write(&opts.plan.results_dir)?.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Merge { from } => {
            let results_dir = cli.results_dir.clone().unwrap_or_else(util::default_results_dir);
            for source in from {
                for exp in experiments::registry() {
                    let theirs = replicate::results::Store::new(source, exp.name());
                    if theirs.path("runs").exists() {
                        let n = replicate::results::Store::new(&results_dir, exp.name()).merge_from(&theirs)?;
                        println!("{}: merged {n} runs from {}", exp.name(), source.display());
                        let store = replicate::results::Store::new(&results_dir, exp.name());
                        exp.figures(&store)?;
                    }
                }
            }
            replicate::report::write(&results_dir)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::List => {
            for exp in experiments::registry() {
                let counts: Vec<String> = [Profile::Smoke, Profile::Quick, Profile::Paper]
                    .iter()
                    .map(|p| {
                        let runs: std::collections::BTreeSet<String> = exp
                            .sweeps(*p, &cli.results_dir.clone().unwrap_or_else(util::default_results_dir))
                            .iter()
                            .flat_map(|s| s.runs())
                            .map(|(_, c)| experiments::config_hash(exp.name(), &c))
                            .collect();
                        format!("{} {}", p.name(), runs.len())
                    })
                    .collect();
                println!("{:<18} {} (runs: {})", exp.name(), exp.about(), counts.join(", "));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench { quick, layers, speed } => {
            if *layers {
                replicate::bench::layer_breakdown(1.0)?;
            } else if let Some(width) = speed {
                let r = replicate::bench::lenetspp_speed(*width, replicate::nn::Kernels::Fast, 128, 7)?;
                println!(
                    "train img/s: {:.1}\ninference img/s: {:.1}",
                    r.train_images_per_second, r.inference_images_per_second
                );
            } else {
                replicate::bench::run(*quick)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Plan { experiment, args } => {
            let opts = args.options(cli)?;
            let exp = experiments::find(experiment)?;
            for run in experiments::plan(exp, &opts.plan)? {
                println!("{:<50} {}", run.run_id, run.done.as_deref().unwrap_or("to do"));
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn print_report(name: &str, r: &experiments::Report) {
    println!("{name}: {} runs executed, {} already recorded, {:.1}s", r.executed.len(), r.cached.len(), r.seconds);
    for (id, status) in &r.not_finished {
        println!("  {id}: {status}");
    }
    for f in &r.figures {
        println!("  wrote {}", f.display());
    }
}
