//! Plans split over batch schedulers: which shard a process is (`--shard i/n`, `--shard slurm`
//! from a Slurm array task, `--shard k8s/N` from a Kubernetes Indexed Job), and the sbatch script
//! `replicate plan EXPERIMENT --slurm` prints: an array job whose tasks run the shards into
//! their own directories, and a job that merges them once every task has succeeded.

use std::path::Path;

use anyhow::{bail, Context, Result};

/// Shard `(i, n)` from `--shard`'s value; `env` reads the scheduler's variables.
pub fn parse_shard(spec: &str, env: impl Fn(&str) -> Option<String>) -> Result<(usize, usize)> {
    let var = |name: &str, why: &str| -> Result<usize> {
        let raw = env(name)
            .filter(|v| !v.trim().is_empty())
            .with_context(|| format!("--shard {spec} needs {name} ({why})"))?;
        raw.trim().parse().with_context(|| format!("{name} must be a whole number, got {raw:?}"))
    };
    let (i, n) = if spec == "slurm" {
        let inside = "set by Slurm inside an `sbatch --array` job";
        let (id, min, count) = (
            var("SLURM_ARRAY_TASK_ID", inside)?,
            var("SLURM_ARRAY_TASK_MIN", inside)?,
            var("SLURM_ARRAY_TASK_COUNT", inside)?,
        );
        // Arrays need not start at 0 (--array=1-8) and may step (--array=0-14:2).
        let step =
            env("SLURM_ARRAY_TASK_STEP").and_then(|s| s.trim().parse::<usize>().ok()).filter(|&s| s > 0).unwrap_or(1);
        if id < min || (id - min) % step != 0 {
            bail!(
                "SLURM_ARRAY_TASK_ID={id} is not in the array starting at SLURM_ARRAY_TASK_MIN={min} with step {step}"
            );
        }
        ((id - min) / step, count)
    } else if let Some(count) = spec.strip_prefix("k8s/") {
        let count =
            count.parse().with_context(|| format!("--shard k8s/N takes the Job's completions N, got {count:?}"))?;
        (var("JOB_COMPLETION_INDEX", "set by Kubernetes in each pod of an Indexed Job")?, count)
    } else {
        let parsed = spec.split_once('/').and_then(|(i, n)| Some((i.parse::<usize>().ok()?, n.parse::<usize>().ok()?)));
        parsed.with_context(|| format!("--shard takes i/n (0 ≤ i < n), slurm or k8s/N, got {spec:?}"))?
    };
    if n == 0 || i >= n {
        bail!("--shard {spec} gives shard {i} of {n}: it must be 0 ≤ i < n");
    }
    Ok((i, n))
}

/// What the printed sbatch script runs.
pub struct SlurmJob<'a> {
    pub binary: &'a Path,
    pub experiment: &'a str,
    /// `--profile …`, `--set …` as given to `plan`.
    pub run_args: &'a [String],
    pub results_dir: &'a Path,
    pub data_dir: &'a Path,
    pub tasks: usize,
    pub minutes_per_task: u64,
    pub cpus_per_task: usize,
}

/// A word for a POSIX shell, quoted only when it needs to be.
fn shell_word(word: &str) -> String {
    if !word.is_empty() && word.chars().all(|c| c.is_ascii_alphanumeric() || "-_./=:,+@%".contains(c)) {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// The bash script that submits the array job and the dependent merge.
pub fn slurm_script(job: &SlurmJob) -> String {
    let bin = shell_word(&job.binary.display().to_string());
    let results = shell_word(&job.results_dir.display().to_string());
    let data = shell_word(&job.data_dir.display().to_string());
    // Beside the results directory, not in it: shards are scratch space, the merge is the result.
    let scratch = format!("{}-shards", job.results_dir.display());
    let shards = shell_word(&format!("{scratch}/{}", job.experiment));
    let logs = shell_word(&format!("{scratch}/logs"));
    let args: Vec<String> = job.run_args.iter().map(|a| shell_word(a)).collect();
    let args = args.join(" ");
    let name = format!("replicate-{}", job.experiment);
    format!(
        r#"#!/usr/bin/env bash
# {experiment}: {tasks} array tasks (one shard each), then a job that merges them into {results}.
# Written by `replicate plan {experiment} {args} --slurm`; submit it with `bash <this file>`.
# Each task trains its shard into {shards}/<task>; a task that is stopped (time limit,
# preemption) resumes from its checkpoints when resubmitted (`scontrol requeue` or sbatch again).
set -euo pipefail
mkdir -p {shards} {logs}
array=$(sbatch --parsable --job-name={name} --array=0-{last} --cpus-per-task={cpus} \
  --time={hh}:{mm:02}:00 --output={logs}/{name}-%A_%a.out \
  --export=ALL,RAYON_NUM_THREADS={cpus} \
  --wrap="{bin} --data-dir {data} --results-dir {shards}/\$SLURM_ARRAY_TASK_ID run {experiment} {args} --shard slurm")
sbatch --parsable --job-name={name}-merge --dependency=afterok:"$array" \
  --output={logs}/{name}-merge-%j.out \
  --wrap="{bin} --data-dir {data} --results-dir {results} merge {shards}/* \
    && {bin} --data-dir {data} --results-dir {results} run {experiment} {args}"
echo "submitted array job $array ({tasks} tasks) and its merge"
"#,
        experiment = job.experiment,
        tasks = job.tasks,
        last = job.tasks.saturating_sub(1),
        cpus = job.cpus_per_task,
        hh = job.minutes_per_task / 60,
        mm = job.minutes_per_task % 60,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of<'a>(vars: &'a [(&'a str, &'a str)]) -> impl Fn(&str) -> Option<String> + 'a {
        move |name| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string())
    }

    #[test]
    fn shards_come_from_the_flag_slurm_or_kubernetes() {
        let none = env_of(&[]);
        assert_eq!(parse_shard("2/5", &none).unwrap(), (2, 5));
        assert!(parse_shard("5/5", &none).unwrap_err().to_string().contains("0 ≤ i < n"));
        assert!(parse_shard("x", &none).unwrap_err().to_string().contains("slurm or k8s/N"));
        // An array --array=3-5 has tasks 3, 4, 5: shards 0, 1, 2 of 3.
        let slurm = [("SLURM_ARRAY_TASK_ID", "4"), ("SLURM_ARRAY_TASK_MIN", "3"), ("SLURM_ARRAY_TASK_COUNT", "3")];
        assert_eq!(parse_shard("slurm", env_of(&slurm)).unwrap(), (1, 3));
        let stepped = [
            ("SLURM_ARRAY_TASK_ID", "6"),
            ("SLURM_ARRAY_TASK_MIN", "2"),
            ("SLURM_ARRAY_TASK_COUNT", "4"),
            ("SLURM_ARRAY_TASK_STEP", "2"),
        ];
        assert_eq!(parse_shard("slurm", env_of(&stepped)).unwrap(), (2, 4));
        let err = parse_shard("slurm", &none).unwrap_err().to_string();
        assert!(err.contains("SLURM_ARRAY_TASK_ID") && err.contains("sbatch --array"), "{err}");
        assert_eq!(parse_shard("k8s/4", env_of(&[("JOB_COMPLETION_INDEX", "3")])).unwrap(), (3, 4));
        assert!(parse_shard("k8s/4", env_of(&[("JOB_COMPLETION_INDEX", "4")])).is_err());
        assert!(parse_shard("k8s/4", &none).unwrap_err().to_string().contains("JOB_COMPLETION_INDEX"));
    }

    #[test]
    fn the_slurm_script_runs_every_shard_then_merges_them() {
        let args = ["--profile".to_string(), "smoke".to_string(), "--set".to_string(), "seed=1,2".to_string()];
        let script = slurm_script(&SlurmJob {
            binary: Path::new("/opt/replicate/bin/replicate"),
            experiment: "center-loss",
            run_args: &args,
            results_dir: Path::new("/scratch/my results"),
            data_dir: Path::new("/data/mnist"),
            tasks: 3,
            minutes_per_task: 90,
            cpus_per_task: 2,
        });
        assert!(script.contains("--array=0-2 --cpus-per-task=2"), "{script}");
        assert!(script.contains("--time=1:30:00"), "{script}");
        let task = concat!(
            "--results-dir '/scratch/my results-shards/center-loss'/\\$SLURM_ARRAY_TASK_ID ",
            "run center-loss --profile smoke --set seed=1,2 --shard slurm"
        );
        assert!(script.contains(task), "{script}");
        assert!(script.contains("--dependency=afterok:\"$array\""), "{script}");
        assert!(script.contains("merge '/scratch/my results-shards/center-loss'/*"), "{script}");
    }
}
