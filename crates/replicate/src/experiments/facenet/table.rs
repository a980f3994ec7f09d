//! `facenet`'s table of runs in REPORT.md: one row per (mining, dimension), means over seeds.

use anyhow::Result;

use super::claims::{Runs, VAL};
use crate::losses::Mining;
use crate::results::{Record, Table, STATUS_COLLAPSED, STATUS_DIVERGED};
use crate::verdict::fmt_pct;

/// One row per (mining, dimension): the mining rules at the default dimension, then semi-hard at
/// each other dimension; means over the seeds that did not diverge, VAL's spread over seeds (sample std)
/// and over the ten folds of one run (mean over seeds) in columns of their own.
pub(super) fn runs_table(current: &Table) -> Result<String> {
    let mut groups: Vec<(String, f64, Vec<Record>)> = Vec::new();
    for r in current.records() {
        let (mining, dim) =
            (r.str("mining")?.unwrap_or_default().to_string(), r.f64("feature_dim")?.unwrap_or(f64::NAN));
        match groups.iter_mut().find(|g| g.0 == mining && g.1 == dim) {
            Some(g) => g.2.push(r),
            None => groups.push((mining, dim, vec![r])),
        }
    }
    let default_dim = Runs::of(current)?.default_dim.first().and_then(|r| r.f64("feature_dim").ok().flatten());
    let rank = |m: &str| Mining::ALL.iter().position(|x| x.name() == m).unwrap_or(usize::MAX);
    groups.sort_by(|a, b| {
        let key = |g: &(String, f64, Vec<Record>)| (Some(g.1) != default_dim, rank(&g.0), g.1);
        let (ka, kb) = (key(a), key(b));
        ka.0.cmp(&kb.0).then(ka.1.cmp(&kb.1)).then(ka.2.total_cmp(&kb.2))
    });
    let mut table = String::from(
        "| mining | dim | finished / collapsed / runs | held-out VAL@1e-3, mean over seeds | seed std (n − 1) | fold \
         std (10 folds) | VAL@1e-2 | 10-fold accuracy | precision@1 | MAP@R | final / min mean pairwise d² \
         |\n|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for (mining, dim, runs) in &groups {
        let values = |metric: &str| -> Result<Vec<f64>> {
            let mut v = Vec::new();
            // Collapsed runs still have an embedding to measure; diverged ones have none.
            for r in runs.iter().filter(|r| r.status().is_ok_and(|s| s != STATUS_DIVERGED)) {
                v.extend(r.f64(metric)?.filter(|x| x.is_finite()));
            }
            Ok(v)
        };
        let mean = |metric: &str, f: &dyn Fn(f64) -> String| -> Result<String> {
            let v = values(metric)?;
            Ok(if v.is_empty() { "—".into() } else { f(crate::stats::mean(&v)) })
        };
        let val = values(VAL)?;
        let collapsed = runs.iter().filter(|r| r.status().is_ok_and(|s| s == STATUS_COLLAPSED)).count();
        let finished = runs.iter().filter(|r| r.finished().unwrap_or(false)).count();
        let spread = if val.len() > 1 { fmt_pct(crate::stats::sample_std(&val)) } else { "—".into() };
        let d3 = |v: f64| format!("{v:.3}");
        table.push_str(&format!(
            "| {mining} | {dim} | {finished} / {collapsed} / {} | {} | {spread} | {} | {} | {} | {} | {} | {} / {} |\n",
            runs.len(),
            mean(VAL, &fmt_pct)?,
            mean("held_out_val_at_far_1e-3_std", &fmt_pct)?,
            mean("held_out_val_at_far_1e-2", &fmt_pct)?,
            mean("held_out_balanced_verification_accuracy", &fmt_pct)?,
            mean("precision_at_1", &fmt_pct)?,
            mean("map_at_r", &fmt_pct)?,
            mean("final_mean_pairwise_distance", &d3)?,
            mean("min_mean_pairwise_distance", &d3)?,
        ));
    }
    Ok(table)
}
