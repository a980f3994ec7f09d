//! The leaderboard-lfw section's tables: the board (each method's and baseline's View 2 folds,
//! mean ± sample std (n − 1) and standard error, as LFW's results page prints them), each
//! method's setting and batches in words, and the View 1 sweeps that chose the settings.

use anyhow::Result;

use super::claims::{method_key, method_of, view1_of, view2_by_method, Baselines};
use crate::experiments::faces::{fold_number, on_view1, view2_cells};
use crate::experiments::leaderboard::Method;
use crate::experiments::lfw_baselines;
use crate::experiments::seeds::Seeded;
use crate::results::Table;
use crate::verdict::{fmt_pct, or_na};

fn view2_metric(runs: &Table, metric: &str) -> Result<Seeded> {
    let view2 = runs.records().filter(|r| !on_view1(r));
    Seeded::collect_by(view2, |r| Ok(method_of(r).map(method_key)), fold_number, |r| r.f64(metric))
}

/// A method's setting as its View 2 runs hold it, in words.
fn setting(runs: &Table, m: Method) -> String {
    let Some(r) = runs.records().find(|r| !on_view1(r) && method_of(r) == Some(m)) else { return "—".into() };
    let num = |key: &str| r.f64(key).ok().flatten();
    match m {
        Method::Softmax => "—".into(),
        Method::Contrastive => num("lambda").map_or("—".into(), |l| format!("λ = {l} (deepid2-lfw View 1)")),
        Method::Triplet => {
            format!("{}, α = {}", r.text("mining").unwrap_or("?"), num("margin").unwrap_or(f64::NAN))
        }
        Method::Center => num("center_lambda").map_or("—".into(), |l| format!("λ = {l} (View 1)")),
        Method::Lsoftmax => num("lsoftmax_m").map_or("—".into(), |v| format!("m = {v} (View 1)")),
        Method::NormFace => format!("s = {}", num("scale").unwrap_or(f64::NAN)),
        Method::SphereFace => num("sphere_m").map_or("—".into(), |v| format!("m = {v} (View 1), λ_min = 5")),
        Method::CosFace => format!(
            "s = {}, m = {} (View 1)",
            num("scale").unwrap_or(f64::NAN),
            num("additive_margin").unwrap_or(f64::NAN)
        ),
        Method::ArcFace => format!(
            "s = {}, m = {} rad (View 1)",
            num("scale").unwrap_or(f64::NAN),
            num("additive_margin").unwrap_or(f64::NAN)
        ),
    }
}

/// Each method's batches as its runs hold them, in words (the triplet loss trains on P × K
/// batches of people with K or more images, as facenet-lfw does).
pub fn batches(runs: &Table) -> String {
    let mut words = Vec::new();
    for m in Method::ALL {
        let Some(r) = runs.records().find(|r| method_of(r) == Some(m)) else { continue };
        let num = |key: &str| r.num(key).unwrap_or(f64::NAN);
        let (people, batch) = (num("classes_per_batch"), num("batch_size"));
        words.push(format!(
            "{} {people} people × {} images (people with {} or more)",
            m.name(),
            batch / people,
            num("min_images")
        ));
    }
    if words.is_empty() {
        return String::new();
    }
    format!("Batches: {}.", words.join("; "))
}

/// The board: each method's View 2 folds, mean ± std, standard error and VAL@FAR=1e-2, then the
/// baselines of the same folds.
pub fn board(runs: &Table, baselines: &Baselines) -> Result<String> {
    let acc = view2_by_method(runs)?;
    let val = view2_metric(runs, "val_at_far_1e-2")?;
    let mut table = String::from(
        "| method | setting | View 2 folds | mean ± std | standard error | VAL@FAR=1e-2 |\n|---|---|---|---|---|---|\n",
    );
    for m in Method::ALL {
        let folds: Vec<f64> = acc.seeds(method_key(m)).iter().map(|s| s.1).collect();
        table.push_str(&format!(
            "| {} | {} | {} | {} |\n",
            m.label(),
            setting(runs, m),
            view2_cells(&folds),
            or_na(val.mean(method_key(m)), fmt_pct)
        ));
    }
    for b in lfw_baselines::Method::ALL {
        let folds: Vec<f64> = baselines.get(b.name()).map(|v| v.iter().map(|f| f.1).collect()).unwrap_or_default();
        table.push_str(&format!("| {} (lfw-baselines) | nothing trained | {} | — |\n", b.name(), view2_cells(&folds)));
    }
    Ok(table)
}

/// The View 1 sweeps that chose the center-loss λ, L-Softmax's m and the successors' margins.
pub fn view1_table(runs: &Table) -> Result<String> {
    let mut table = String::from(
        "| method | setting | View 1 runs | test accuracy, mean over seeds | seed std (n − 1) |\n|---|---|---|---|---|\n",
    );
    for (m, key, _) in super::CHOSEN {
        let name = if m == Method::Center { "λ" } else { "m" };
        let view1 = view1_of(runs, m, key)?;
        for s in &view1.settings {
            let values: Vec<f64> = s.seeds.iter().map(|v| v.1).collect();
            let std = if values.len() > 1 { fmt_pct(crate::stats::sample_std(&values)) } else { "—".into() };
            table.push_str(&format!(
                "| {} | {name} = {} | {} | {} | {std} |\n",
                m.name(),
                s.value,
                s.runs,
                or_na(view1.mean(s.value), fmt_pct)
            ));
        }
    }
    Ok(table)
}
