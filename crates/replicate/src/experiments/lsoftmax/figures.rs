//! `lsoftmax`'s figures: Fig. 2 (train and test features per m) and the λ schedule.

use std::path::PathBuf;

use anyhow::Result;

use super::claims::fig2_runs;
use crate::experiments::setup::{digit_names, points_2d, series_of};
use crate::plot::{save, LineChart, LineFigure, ScatterFigure, ScatterPanel, Series};
use crate::results::Store;
use crate::verdict::fmt_pct;

pub fn draw(store: &Store) -> Result<Vec<PathBuf>> {
    let current = store.current_runs()?;
    let runs = fig2_runs(&current)?;
    let features = store.load("features")?;
    let mut panels = Vec::new();
    for split in ["train", "test"] {
        for (m, run) in &runs {
            let title = match run.f64(&format!("{split}_accuracy"))? {
                Some(a) => format!("m = {m}, {split} accuracy {}", fmt_pct(a)),
                None => format!("m = {m} ({split}): {}", run.status()?),
            };
            panels.push(ScatterPanel {
                title,
                points: points_2d(&features, run.run_id()?, split)?,
                centers: Vec::new(),
            });
        }
    }
    let mut files = save(
        &store.dir().join("fig2"),
        &ScatterFigure {
            title: "L-Softmax 2-D features, training (top) and test (bottom) rows (cf. L-Softmax, Fig. 2)".into(),
            panels,
            cols: runs.len().max(1),
            class_names: digit_names(),
        },
    )?;
    let curves = store.load("curves")?;
    let mut series = Vec::new();
    for (i, (m, run)) in runs.iter().enumerate() {
        let points = series_of(&curves, run.run_id()?, "step", "lambda")?;
        series.push(Series { name: format!("m = {m}"), points, colour: i, markers: false, ..Default::default() });
    }
    let chart = LineChart {
        title: "λ used at each logged step (logged means)".into(),
        x_label: "iteration".into(),
        y_label: "λ".into(),
        y_log: true,
        series,
        ..Default::default()
    };
    files.extend(save(
        &store.dir().join("lambda_schedule"),
        &LineFigure {
            title: "L-Softmax λ annealing, λ = max(λ_min, base·(1 + γ·iter)^−power)".into(),
            charts: vec![chart],
            cols: 1,
        },
    )?);
    Ok(files)
}
