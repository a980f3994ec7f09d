//! `leaderboard-lfw/board.png`: every method's and baseline's View 2 accuracy (each fold, and the
//! mean over the ten folds with its 95 % t interval), and View 2's ROC per method averaged over
//! the folds on a log FAR axis.

use std::path::PathBuf;

use anyhow::Result;

use super::claims::{baselines, method_key, view2_by_method};
use crate::experiments::faces::{fold_accuracy_chart, view2_roc_chart};
use crate::experiments::leaderboard::Method;
use crate::experiments::lfw_baselines;
use crate::plot::{save, LineFigure};
use crate::results::{Record, Store};

pub fn draw(store: &Store) -> Result<Vec<PathBuf>> {
    let runs = store.current_runs()?;
    let acc = view2_by_method(&runs)?;
    let baselines = baselines(store)?;
    let mut columns: Vec<(String, Vec<f64>)> = Method::ALL
        .iter()
        .map(|&m| (m.name().to_string(), acc.seeds(method_key(m)).iter().map(|s| s.1).collect()))
        .collect();
    for b in lfw_baselines::Method::ALL {
        let folds = baselines.get(b.name()).map(|v| v.iter().map(|f| f.1).collect()).unwrap_or_default();
        columns.push((b.name().replace("centred_pixels", "centred px"), folds));
    }
    columns.retain(|(_, folds)| !folds.is_empty());
    let accuracy = fold_accuracy_chart(&columns, "method; pixels, centred px, lbp: nothing trained (lfw-baselines)");
    let keys: Vec<f64> = Method::ALL.iter().map(|&m| method_key(m)).collect();
    let key_of = |r: &Record| {
        let name = r.str("method").ok().flatten()?;
        Method::ALL.iter().find(|m| m.name() == name).map(|&m| method_key(m))
    };
    let name = |k: f64| Method::ALL[k as usize].label().to_string();
    let mut charts = vec![accuracy];
    charts.extend(view2_roc_chart(&runs, &store.load("roc")?, &keys, key_of, name)?);
    // Stacked, not side by side: twelve columns need the figure's whole width for their names.
    let cols = 1;
    save(
        &store.dir().join("board"),
        &LineFigure {
            title: "LFW View 2: every loss on one face backbone and budget, beside raw pixels and LBP".into(),
            charts,
            cols,
        },
    )
}
