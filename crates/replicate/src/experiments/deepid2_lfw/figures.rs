//! `deepid2-lfw`'s figures: View 1 test accuracy against λ (log axis, mean over seeds with 95 %
//! t intervals, View 2's fold means beside it once recorded) with View 2's ROC per λ (log FAR),
//! and the PCA of the six most photographed training people's features at λ = 0, the best
//! interior λ and λ = ∞ (seed 1, View 1). Faces themselves are never drawn here.

use std::path::PathBuf;

use anyhow::Result;

use super::claims::{view1_accuracy, view2_accuracy};
use crate::experiments::faces::{view2_roc_chart, view_series};
use crate::experiments::setup::{lambda_axis, rows_of};
use crate::plot::{save, LineChart, LineFigure, ScatterFigure, ScatterPanel};
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
    let series = view_series(&view1, &view2, at, true);
    let mut charts = vec![LineChart {
        title: "verification accuracy (cosine of flip-averaged features)".into(),
        x_label: "λ, log scale (0: identification only, ∞: verification only, set apart at the ends)".into(),
        y_label: "accuracy (%), the axis does not start at 0".into(),
        x_ticks: Some(ticks),
        series,
        ..Default::default()
    }];
    let lambdas2: Vec<f64> = view2.settings.iter().map(|s| s.value).collect();
    let lambda_of = |r: &Record| r.f64("lambda").ok().flatten();
    let name = |l: f64| format!("λ = {}", lambda_label(l));
    charts.extend(view2_roc_chart(&runs, &store.load("roc")?, &lambdas2, lambda_of, name)?);
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
