//! The `replicate` command line: parses arguments, then calls the library. No logic of its own.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use replicate::experiments::{self, Profile};
use replicate::runner::{self, PlanOptions, RunOptions};
use replicate::{say, util};

#[derive(Parser)]
#[command(
    name = "replicate",
    version,
    about = "Reproduce DeepID2, FaceNet, center loss and L-Softmax on MNIST and LFW"
)]
struct Cli {
    /// MNIST directory (default: data/mnist under the project root, or REPLICATE_DATA_DIR).
    #[arg(long, global = true)]
    data_dir: Option<PathBuf>,
    /// LFW directory (default: data/lfw under the project root, or REPLICATE_LFW_DIR).
    #[arg(long, global = true)]
    lfw_dir: Option<PathBuf>,
    /// Results directory (default: results/ under the project root, or REPLICATE_RESULTS_DIR).
    #[arg(long, global = true)]
    results_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

impl Cli {
    /// `--results-dir`, else `REPLICATE_RESULTS_DIR`, else the project's `results/`.
    fn results_dir(&self) -> Result<PathBuf> {
        self.results_dir.clone().map_or_else(|| Ok(util::default_results_dir()?), Ok)
    }

    /// `--data-dir`, else `REPLICATE_DATA_DIR`, else the project's `data/mnist`.
    fn data_dir(&self) -> Result<PathBuf> {
        self.data_dir.clone().map_or_else(|| Ok(util::default_data_dir()?), Ok)
    }

    /// `--lfw-dir`, else `REPLICATE_LFW_DIR`, else the project's `data/lfw`.
    fn lfw_dir(&self) -> Result<PathBuf> {
        self.lfw_dir.clone().map_or_else(|| Ok(util::default_lfw_dir()?), Ok)
    }
}

#[derive(Subcommand)]
enum DataOnly {
    /// LFW only: fill data/lfw as `replicate data` does, or with --from build it from LFW's JPEGs.
    Lfw {
        /// A tree of LFW JPEGs (DIR/Name/Name_0001.jpg or DIR/lfw/Name/…) with LFW's six official
        /// lists in DIR (pairs.txt, people.txt, pairsDevTrain.txt, pairsDevTest.txt,
        /// peopleDevTrain.txt, peopleDevTest.txt).
        #[arg(long, value_name = "DIR")]
        from: Option<PathBuf>,
    },
}

#[derive(Subcommand)]
enum Command {
    /// Fill data/mnist (files already there, then MNIST_MIRROR, then the Hugging Face hub) and
    /// data/lfw (files already there, then LFW_MIRROR), each checked in full.
    Data {
        #[command(subcommand)]
        only: Option<DataOnly>,
    },
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
    /// Retrain a sample of recorded runs from their stored configs and compare them with the record.
    Verify {
        /// One experiment (default: every experiment with recorded runs).
        experiment: Option<String>,
        /// How many runs of each experiment to retrain (spread over its sweep).
        #[arg(long, default_value_t = 3)]
        sample: usize,
    },
    /// Score recorded runs again from their kept final weights with this build's evaluation, without
    /// training (new or fixed metrics); replaces the measurements that changed, then redraws.
    Rescore {
        /// One experiment (default: every experiment with recorded runs that can).
        experiment: Option<String>,
    },
    /// Merge the results directories of shards (`--shard i/n` runs) into --results-dir, by run_id.
    Merge {
        /// Results directories to merge in.
        #[arg(required = true)]
        from: Vec<PathBuf>,
    },
    /// List the experiments and their run counts per profile.
    List,
    /// Redraw the figures of every experiment with recorded runs (or of one) and REPORT.md, from
    /// the tables alone: trains nothing (for a sweep still under way elsewhere, or after a merge).
    Redraw {
        /// Only this experiment's figures (REPORT.md is always rewritten whole).
        experiment: Option<String>,
    },
    /// Training/inference speed of LeNets++ and the face backbone (candle's ops vs the fast kernels) and mining times.
    Bench {
        /// Fewer repetitions.
        #[arg(long)]
        quick: bool,
        /// Only time each convolution layer of the fast kernels (LeNets++ at --speed's width, else 1.0).
        #[arg(long)]
        layers: bool,
        /// Only time the fast kernels at this width, printing `train img/s` and `inference img/s`
        /// (with --layers: the width whose layers are timed).
        #[arg(long, value_name = "WIDTH")]
        speed: Option<f64>,
        /// With --speed: the face backbone (32×32 faces, 128-D feature, 1,184 classes) instead of LeNets++.
        #[arg(long, requires = "speed")]
        face: bool,
    },
    /// Print the runs an experiment would execute and which are already recorded.
    Plan {
        experiment: String,
        #[command(flatten)]
        args: RunArgs,
        /// Print an sbatch script instead: an array job of TASKS shards (default: one per run
        /// to do) and a job that merges them.
        #[arg(long, value_name = "TASKS", num_args = 0..=1, default_missing_value = "0")]
        slurm: Option<usize>,
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
    /// Run only shard i of n of the planned runs: i/n (e.g. 0/4), slurm (from the array task's
    /// SLURM_ARRAY_TASK_* variables) or k8s/N (from a Kubernetes Indexed Job's JOB_COMPLETION_INDEX).
    #[arg(long)]
    shard: Option<String>,
    /// Minutes between a run's checkpoints (a stopped run resumes from its last one; 0: at every
    /// logged step).
    #[arg(long, default_value_t = 5.0, value_name = "MINUTES")]
    checkpoint_minutes: f64,
    /// Runs trained at once, the threads split between them (default: 2 where there are 2
    /// threads or more, measured faster than 1 on 2 cores).
    #[arg(long, value_name = "N")]
    jobs: Option<usize>,
}

impl RunArgs {
    /// The arguments a shard of this plan is run with (`--profile`, `--set`, `--force`).
    fn forwarded(&self) -> Vec<String> {
        let mut args = vec!["--profile".to_string(), self.profile.clone()];
        for kv in &self.set {
            args.extend(["--set".to_string(), kv.clone()]);
        }
        if self.force {
            args.push("--force".into());
        }
        args
    }

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
            Some(spec) => Some(runner::cluster::parse_shard(spec, |name| std::env::var(name).ok())?),
        };
        let checkpoint_every = std::time::Duration::try_from_secs_f64(self.checkpoint_minutes * 60.0)
            .ok()
            .with_context(|| format!("--checkpoint-minutes takes minutes ≥ 0, got {}", self.checkpoint_minutes))?;
        Ok(RunOptions {
            plan: PlanOptions {
                profile: Profile::parse(&self.profile)?,
                overrides,
                force: self.force,
                results_dir: cli.results_dir()?,
                shard,
            },
            data_dir: cli.data_dir()?,
            lfw_dir: cli.lfw_dir().ok(),
            device,
            checkpoint_every,
            jobs: match self.jobs {
                Some(0) => anyhow::bail!("--jobs takes a number of runs ≥ 1, got 0"),
                Some(n) => n,
                None => runner::default_jobs(),
            },
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

/// MNIST's part of `replicate data`; Some(exit code) when no source had it.
fn fetch_mnist(cli: &Cli) -> Result<Option<ExitCode>> {
    let dir = cli.data_dir()?;
    let mirror = std::env::var_os("MNIST_MIRROR").map(PathBuf::from);
    match replicate::data::fetch(&dir, mirror.as_deref()) {
        Ok(source) => {
            let how = match source {
                replicate::data::Source::AlreadyPresent => "already present and valid".to_string(),
                replicate::data::Source::Mirror(m) => format!("copied from {}", m.display()),
                replicate::data::Source::Hub => "downloaded from the Hugging Face hub".to_string(),
            };
            say!("MNIST in {}: {how}", dir.display());
        }
        Err(e @ replicate::data::DataError::NotFound { .. }) => {
            eprintln!("error: {e}");
            return Ok(Some(ExitCode::from(EXIT_NOT_FOUND)));
        }
        Err(e) => return Err(e.into()),
    }
    Ok(None)
}

/// LFW's part of `replicate data`.
fn fetch_lfw(cli: &Cli) -> Result<()> {
    let lfw_dir = cli.lfw_dir()?;
    let mirror = std::env::var_os("LFW_MIRROR").filter(|m| !m.is_empty()).map(PathBuf::from);
    match replicate::data::lfw::fetch(&lfw_dir, mirror.as_deref()) {
        Ok(source) => {
            let how = match source {
                replicate::data::LfwSource::AlreadyPresent => "already present and valid".to_string(),
                replicate::data::LfwSource::Mirror(m) => format!("copied from {} and checked", m.display()),
            };
            say!("LFW in {}: {how}", lfw_dir.display());
        }
        // Only the face experiments need LFW: without any copy of it, say so and go on.
        Err(replicate::data::LfwError::NotFound { .. }) if mirror.is_none() && !lfw_dir.exists() => {
            eprintln!(
                "note: LFW is not in {} and LFW_MIRROR is not set; the MNIST experiments do not need it (set \
                 LFW_MIRROR to a copy of the files and run `replicate data` again for the face experiments)",
                lfw_dir.display()
            );
        }
        Err(e) => return Err(e.into()),
    }
    Ok(())
}

/// Exit status of `replicate data` when no source had the data (so `just data` can try the hub build).
const EXIT_NOT_FOUND: u8 = 3;

fn run(cli: &Cli) -> Result<ExitCode> {
    replicate::nn::kernels::isa::Isa::from_env().map_err(anyhow::Error::msg)?;
    match &cli.command {
        Command::Data { only: None } => {
            if let Some(code) = fetch_mnist(cli)? {
                return Ok(code);
            }
            fetch_lfw(cli)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Data { only: Some(DataOnly::Lfw { from: None }) } => {
            fetch_lfw(cli)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Data { only: Some(DataOnly::Lfw { from: Some(source) }) } => {
            let dir = cli.lfw_dir()?;
            anyhow::ensure!(source.is_dir(), "--from {}: no such directory", source.display());
            say!("building {} from the LFW JPEGs in {}", dir.display(), source.display());
            let mut bar: Option<replicate::progress::Progress> = None;
            let built = replicate::data::lfw_build::build(source, &dir, |done, total| {
                bar.get_or_insert_with(|| replicate::progress::Progress::new("people decoded", total as u64))
                    .update(done as u64, "")
            })?;
            if let Some(bar) = bar {
                bar.finish();
            }
            say!(
                "LFW in {}: built from {} {} JPEGs of {} people and checked; its SHA256SUMS are this build's own \
                 (SOURCE.txt says what it read)",
                dir.display(),
                built.images,
                built.variant,
                built.identities
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Run { experiment, args } => {
            let opts = args.options(cli)?;
            let exp = experiments::find(experiment)?;
            runner::run_experiment(exp, &opts, None)?.print(exp.name());
            Ok(ExitCode::SUCCESS)
        }
        Command::ReproduceAll { args, plan_only } => {
            let opts = args.options(cli)?;
            let lines = runner::plan_all(&opts.plan)?;
            runner::print_plan(&opts.plan, &lines);
            if !*plan_only {
                say!("wrote {}", runner::reproduce_all(&opts, &lines)?.display());
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Verify { experiment, sample } => {
            let (results_dir, data_dir) = (cli.results_dir()?, cli.data_dir()?);
            let lfw_dir = cli.lfw_dir().ok();
            let chosen = named_or_recorded(experiment.as_deref(), &results_dir)?;
            let mut all_identical = true;
            for exp in chosen {
                let scratch = runner::verify::scratch_dir(exp.name());
                let data = (data_dir.as_path(), lfw_dir.as_deref());
                let verified = runner::verify::verify(exp, &results_dir, data, *sample, &scratch);
                let _ = std::fs::remove_dir_all(&scratch);
                for v in verified? {
                    all_identical &= v.identical() || !v.same_machine;
                    say!("{}: {}", exp.name(), v.describe());
                }
            }
            Ok(if all_identical { ExitCode::SUCCESS } else { ExitCode::FAILURE })
        }
        Command::Rescore { experiment } => {
            let results_dir = cli.results_dir()?;
            let data = replicate::data::Datasets::new(&cli.data_dir()?, cli.lfw_dir().ok().as_deref());
            let chosen = named_or_recorded(experiment.as_deref(), &results_dir)?;
            for exp in chosen {
                let report = match runner::rescore::rescore(exp, &results_dir, &data) {
                    Ok(report) => report,
                    // Without a named experiment, one that cannot score again is a line, not a failure.
                    Err(e) if experiment.is_none() => {
                        say!("{}: {e:#}", exp.name());
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                for r in &report.rescored {
                    say!("{}: {}", exp.name(), r.describe());
                }
                if !report.without_weights.is_empty() {
                    say!(
                        "{}: {} finished runs have no kept weights (recorded before runs kept them, or copied from a store without them): only retraining scores them again",
                        exp.name(),
                        report.without_weights.len()
                    );
                }
                if !report.not_separate.is_empty() {
                    say!(
                        "{}: {} runs cannot be scored again without training (their evaluation is part of their run)",
                        exp.name(),
                        report.not_separate.len()
                    );
                }
                if report.rescored.iter().any(|r| !r.changes.is_empty()) {
                    let store = replicate::results::Store::new(&results_dir, exp.name());
                    exp.figures(&store).with_context(|| format!("drawing the figures of {}", exp.name()))?;
                }
            }
            say!("wrote {}", runner::report::write(&results_dir)?.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Merge { from } => {
            let results_dir = cli.results_dir()?;
            for (what, n) in runner::merge(&results_dir, from)? {
                say!("{what}: merged {n} runs");
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Redraw { experiment } => {
            let results_dir = cli.results_dir()?;
            let chosen: Vec<&'static dyn experiments::Experiment> = match experiment {
                Some(name) => vec![experiments::find(name)?],
                None => experiments::registry().into_iter().collect(),
            };
            for exp in chosen {
                let store = replicate::results::Store::new(&results_dir, exp.name());
                if store.path("runs").exists() {
                    let files =
                        exp.figures(&store).with_context(|| format!("drawing the figures of {}", exp.name()))?;
                    say!("{}: {} figure files redrawn", exp.name(), files.len());
                }
            }
            say!("wrote {}", runner::report::write(&results_dir)?.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::List => {
            let results_dir = cli.results_dir()?;
            for exp in experiments::registry() {
                let counts: Vec<String> = runner::runs_per_profile(exp, &results_dir)
                    .iter()
                    .map(|(p, n)| match n {
                        Some(n) => format!("{} {n}", p.name()),
                        None => format!("{} after its selection", p.name()),
                    })
                    .collect();
                say!("{:<18} {} (runs: {})", exp.name(), exp.about(), counts.join(", "));
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Bench { quick, layers, speed, face } => {
            say!("{}", replicate::bench::machine());
            if *layers {
                replicate::bench::layer_breakdown(speed.unwrap_or(1.0))?;
            } else if let Some(width) = speed {
                let fast = replicate::nn::Kernels::Fast;
                let r = if *face {
                    let (config, classes) = replicate::bench::face_config();
                    let config = replicate::nn::BackboneConfig { width: *width, ..config };
                    replicate::bench::backbone_speed(config, classes, fast, 128, 7)?
                } else {
                    replicate::bench::lenetspp_speed(*width, fast, 128, 7)?
                };
                say!(
                    "train img/s: {:.1}\ninference img/s: {:.1}",
                    r.train_images_per_second,
                    r.inference_images_per_second
                );
            } else {
                replicate::bench::run(*quick)?;
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Plan { experiment, args, slurm } => {
            let opts = args.options(cli)?;
            let exp = experiments::find(experiment)?;
            let planned = runner::plan(exp, &opts.plan)?;
            let todo: Vec<_> = planned.iter().filter(|r| r.done.is_none()).collect();
            if !todo.is_empty() {
                // What `run` would refuse before training, `plan` refuses too.
                replicate::results::Store::new(&opts.plan.results_dir, exp.name()).check_writable_and_readable()?;
            }
            let Some(tasks) = slurm else {
                for run in planned {
                    say!("{:<50} {}", run.run_id, run.done.as_deref().unwrap_or("to do"));
                }
                return Ok(ExitCode::SUCCESS);
            };
            anyhow::ensure!(opts.plan.shard.is_none(), "--slurm splits the whole plan itself: leave out --shard");
            let tasks = if *tasks == 0 { todo.len().max(1) } else { (*tasks).min(planned.len().max(1)) };
            // Shards take every tasks-th run, so a task trains at most ceil(runs / tasks) of them.
            let longest = todo.iter().map(|r| runner::estimated_seconds(&r.config)).fold(0.0, f64::max);
            let per_task = planned.len().div_ceil(tasks) as f64 * longest;
            let run_args = args.forwarded();
            let binary = std::env::current_exe().context("cannot find this binary's path")?;
            let absolute = |p: &std::path::Path| std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf());
            say!(
                "{}",
                runner::cluster::slurm_script(&runner::cluster::SlurmJob {
                    binary: &binary,
                    experiment: exp.name(),
                    run_args: &run_args,
                    results_dir: &absolute(&opts.plan.results_dir),
                    data_dir: &absolute(&opts.data_dir),
                    tasks,
                    // Twice the estimate and 10 minutes more: the estimate is for this kind of CPU.
                    minutes_per_task: (2.0 * per_task / 60.0).ceil() as u64 + 10,
                    cpus_per_task: rayon::current_num_threads(),
                })
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// The experiment named, or every experiment with recorded runs under `results_dir`.
fn named_or_recorded(
    experiment: Option<&str>,
    results_dir: &std::path::Path,
) -> Result<Vec<&'static dyn experiments::Experiment>> {
    Ok(match experiment {
        Some(name) => vec![experiments::find(name)?],
        None => experiments::registry()
            .into_iter()
            .filter(|e| replicate::results::Store::new(results_dir, e.name()).path("runs").exists())
            .collect(),
    })
}
