//! `deepid2-lfw`'s figures: View 1 test accuracy against λ (log axis, mean over seeds with 95 %
//! t intervals, View 2's fold means beside it once recorded) with View 2's ROC per λ (log FAR),
//! and the PCA of the six most photographed training people's features at λ = 0, the best
//! interior λ and λ = ∞ (seed 1, View 1). Faces themselves are never drawn here.

use std::path::PathBuf;

use anyhow::Result;

use super::claims::{view1_accuracy, view2_accuracy};
use crate::experiments::setup::{lambda_axis, rows_of, series_of};
use crate::plot::{save, LineChart, LineFigure, ScatterFigure, ScatterPanel, Series};
use crate::results::{Record, Store};
use crate::verdict::lambda_label;

pub fn draw(store: &Store) -> Result<Vec<PathBuf>> {
    let runs = store.current_runs()?;
    let (view1, view2) = (view1_accuracy(&runs)?, view2_accuracy(&runs)?);
    let mut lambdas: Vec<f64> = view1.settings.iter().chain(&view2.settings).map(|s| s.value).collect();
    lambdas.sort_by(f64::total_cmp);
    lambdas.dedup();
    let (positions, ticks) = lambda_axis(&lambdas);
    let at = |l: f64| lambdas.iter().position(|x| *x == l).map(|i| positions[i]);
    let mut series = Vec::new();
    for (name, seeded, colour) in
        [("View 1, mean over seeds", &view1, 0), ("View 2, mean over the 10 folds", &view2, 1)]
    {
        let (points, errors) = seeded.mean_points(at, 100.0);
        if !points.is_empty() {
            series.push(Series {
                name: format!("{name}, 95 % t interval"),
                points,
                errors,
                colour,
                markers: true,
                ..Default::default()
            });
        }
    }
    let mut charts = vec![LineChart {
        title: "verification accuracy (cosine of flip-averaged features)".into(),
        x_label: "λ, log scale (0: identification only, ∞: verification only, set apart at the ends)".into(),
        y_label: "accuracy (%), the axis does not start at 0".into(),
        x_ticks: Some(ticks),
        series,
        ..Default::default()
    }];
    let roc_table = store.load("roc")?;
    let mut roc = Vec::new();
    for (k, setting) in view2.settings.iter().enumerate() {
        let mut folds = Vec::new();
        for r in runs.records().filter(|r| r.f64("lambda").ok().flatten() == Some(setting.value)) {
            if r.finished()? && r.text("split")? != "view1" {
                folds.push(series_of(&roc_table, r.run_id()?, "far", "val")?);
            }
        }
        if folds.is_empty() {
            continue;
        }
        let points = mean_roc(&folds);
        let name = format!("λ = {}, mean over {} folds", lambda_label(setting.value), folds.len());
        roc.push(Series { name, points, colour: k, ..Default::default() });
    }
    if !roc.is_empty() {
        charts.push(LineChart {
            title: "View 2 ROC, each fold's held-out pairs, averaged over folds".into(),
            x_label: "false accept rate (log)".into(),
            y_label: "validation rate".into(),
            x_log: true,
            series: roc,
            ..Default::default()
        });
    }
    let cols = charts.len();
    let mut files = save(
        &store.dir().join("lambda_sweep"),
        &LineFigure { title: "DeepID2 on LFW: verification against the verification weight λ".into(), charts, cols },
    )?;
    let pca = store.load("pca")?;
    let seed1 = |lambda: f64| -> Option<Record> {
        runs.records().find(|r| {
            r.text("split").ok() == Some("view1")
                && r.f64("lambda").ok().flatten() == Some(lambda)
                && r.seed().ok() == Some(1)
                && r.finished().unwrap_or(false)
        })
    };
    let mut names: Vec<String> = Vec::new();
    let mut panels = Vec::new();
    let best = view1.best_interior().map(|b| b.0);
    for (which, lambda) in
        [("identification only", Some(0.0)), ("best λ on View 1", best), ("verification only", Some(f64::INFINITY))]
    {
        let Some(run) = lambda.and_then(seed1) else { continue };
        let mut points = Vec::new();
        for r in rows_of(&pca, run.run_id()?) {
            let person = r.text("person")?.to_string();
            let label = match names.iter().position(|n| *n == person) {
                Some(i) => i,
                None => {
                    names.push(person);
                    names.len() - 1
                }
            };
            points.push((r.num("pc0")? as f32, r.num("pc1")? as f32, label as u8));
        }
        panels.push(ScatterPanel {
            title: format!("λ = {} ({which}), seed 1", lambda_label(lambda.unwrap_or(0.0))),
            points,
            centers: Vec::new(),
        });
    }
    if !panels.is_empty() {
        files.extend(save(
            &store.dir().join("pca"),
            &ScatterFigure {
                title: "DeepID2 on LFW: unit features of the six most photographed training people, first two principal components".into(),
                panels,
                cols: 3,
                class_names: names,
            },
        )?);
    }
    Ok(files)
}

/// The ROC averaged over folds at fixed false accept rates (vertical averaging): at each FAR of
/// a log grid from 10^-2.5 (a fold has 300 different pairs) to 1, each fold's VAL is its best
/// at a FAR no larger, and the points are the folds' means.
fn mean_roc(folds: &[Vec<(f64, f64)>]) -> Vec<(f64, f64)> {
    (0..=25)
        .map(|i| {
            let far = 10f64.powf(-2.5 + 2.5 * i as f64 / 25.0);
            let val =
                |roc: &Vec<(f64, f64)>| roc.iter().filter(|p| p.0 <= far + 1e-12).map(|p| p.1).fold(0.0, f64::max);
            (far, folds.iter().map(val).sum::<f64>() / folds.len() as f64)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_mean_roc_averages_each_folds_best_val_at_or_below_each_far() {
        let folds = vec![vec![(0.0, 0.2), (0.01, 0.5), (1.0, 1.0)], vec![(0.0, 0.4), (0.1, 0.9), (1.0, 1.0)]];
        let roc = super::mean_roc(&folds);
        assert_eq!(roc.len(), 26);
        assert!((roc[0].1 - 0.3).abs() < 1e-12, "both folds at FAR 0: {:?}", roc[0]);
        let at_001 = roc.iter().find(|p| (p.0 - 0.01).abs() < 1e-9).unwrap();
        assert!((at_001.1 - 0.45).abs() < 1e-12, "{at_001:?}");
        assert!((roc[25].1 - 1.0).abs() < 1e-12);
    }
}
