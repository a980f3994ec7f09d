//! `center-loss`'s figures: Fig. 3 (test features and centers per λ) and R and accuracy against λ.

use std::path::PathBuf;

use anyhow::Result;

use super::claims::by_lambda;
use crate::experiments::seeds::Seeded;
use crate::experiments::setup::{digit_names, lambda_axis, points_2d, rows_of};
use crate::plot::{save, LineChart, LineFigure, ScatterFigure, ScatterPanel, Series};
use crate::results::Store;
use crate::verdict::{fmt_pct, lambda_label};

pub fn draw(store: &Store) -> Result<Vec<PathBuf>> {
    let current = store.current_runs()?;
    let runs = by_lambda(&current)?;
    let features = store.load("features")?;
    let centers = store.load("centers")?;
    let mut panels = Vec::new();
    for (lambda, run) in &runs {
        let run_id = run.run_id()?;
        let centres =
            rows_of(&centers, run_id).map(|r| Ok((r.num("c0")? as f32, r.num("c1")? as f32))).collect::<Result<_>>()?;
        let title = match run.f64("test_accuracy")? {
            Some(a) => format!("λ = {}, test accuracy {}", lambda_label(*lambda), fmt_pct(a)),
            None => format!("λ = {} ({})", lambda_label(*lambda), run.status()?),
        };
        panels.push(ScatterPanel { title, points: points_2d(&features, run_id, "test")?, centers: centres });
    }
    let mut files = save(
        &store.dir().join("fig3"),
        &ScatterFigure {
            title: "Softmax + λ·center loss: 2-D test features and centers (cf. center loss, Fig. 3)".into(),
            panels,
            cols: 3,
            class_names: digit_names(),
        },
    )?;
    let (positions, ticks) = lambda_axis(&runs.iter().map(|(l, _)| *l).collect::<Vec<_>>());
    let at = |l: f64| runs.iter().position(|(x, _)| *x == l).map(|i| positions[i]);
    // Mean over seeds, with the 95 % t interval over seeds as the bar (none for one seed).
    let series = |name: &str, column: &str, colour: usize, scale: f64| -> Result<Series> {
        let (points, errors) = Seeded::from_table(&current, "lambda", column)?.mean_points(at, scale);
        Ok(Series { name: name.into(), points, errors, colour, markers: true, ..Default::default() })
    };
    let charts = vec![
        LineChart {
            title: "Compactness R = intra / inter (test)".into(),
            x_label: "λ, log scale (0 set apart)".into(),
            y_label: "R".into(),
            x_ticks: Some(ticks.clone()),
            series: vec![series("R", "r_ratio", 0, 1.0)?],
            ..Default::default()
        },
        LineChart {
            title: "Test accuracy".into(),
            x_label: "λ, log scale (0 set apart)".into(),
            y_label: "accuracy (%)".into(),
            x_ticks: Some(ticks),
            series: vec![
                series("softmax head", "test_accuracy", 1, 100.0)?,
                series("nearest center", "nearest_center_accuracy", 2, 100.0)?,
            ],
            ..Default::default()
        },
    ];
    files.extend(save(
        &store.dir().join("r_vs_lambda"),
        &LineFigure {
            title: "Center loss: compactness and accuracy against λ (mean over seeds, bars: 95 % t interval)".into(),
            charts,
            cols: 2,
        },
    )?);
    Ok(files)
}
