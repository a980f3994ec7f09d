//! `center-loss`'s figures: Fig. 3 (test features and centers per λ) and R and accuracy against λ.

use std::path::PathBuf;

use anyhow::Result;

use super::claims::by_lambda;
use crate::experiments::setup::{digit_names, points_2d, rows_of};
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
    let categories: Vec<String> = runs.iter().map(|(l, _)| lambda_label(*l)).collect();
    let series = |name: &str, column: &str, colour: usize, scale: f64| -> Result<Series> {
        let mut points = Vec::new();
        for (i, (_, r)) in runs.iter().enumerate() {
            if let Some(v) = r.f64(column)? {
                points.push((i as f64, v * scale));
            }
        }
        Ok(Series { name: name.into(), points, colour, markers: true, ..Default::default() })
    };
    let charts = vec![
        LineChart {
            title: "Compactness R = intra / inter (test)".into(),
            x_label: "λ".into(),
            y_label: "R".into(),
            x_categories: Some(categories.clone()),
            series: vec![series("R", "r_ratio", 0, 1.0)?],
            ..Default::default()
        },
        LineChart {
            title: "Test accuracy".into(),
            x_label: "λ".into(),
            y_label: "accuracy (%)".into(),
            x_categories: Some(categories),
            series: vec![
                series("softmax head", "test_accuracy", 1, 100.0)?,
                series("nearest center", "nearest_center_accuracy", 2, 100.0)?,
            ],
            ..Default::default()
        },
    ];
    files.extend(save(
        &store.dir().join("r_vs_lambda"),
        &LineFigure { title: "Center loss: compactness and accuracy against λ".into(), charts, cols: 2 },
    )?);
    Ok(files)
}
