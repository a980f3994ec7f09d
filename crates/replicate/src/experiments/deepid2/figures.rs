//! `deepid2`'s figures: verification accuracy against λ (mean over seeds), and the PCA of six
//! identities' features at λ = 0, the best interior λ (by mean over seeds) and λ = ∞, from the
//! lowest seed's runs.

use std::path::PathBuf;

use anyhow::Result;

use super::claims::by_lambda;
use crate::experiments::seeds::Seeded;
use crate::experiments::setup::{lambda_axis, rows_of, TRAIN_DIGITS};
use crate::plot::{save, LineChart, LineFigure, ScatterFigure, ScatterPanel, Series};
use crate::results::{Record, Store, Table};
use crate::verdict::lambda_label;

pub fn draw(store: &Store) -> Result<Vec<PathBuf>> {
    let current = store.current_runs()?;
    let runs = by_lambda(&current)?;
    let (positions, ticks) = lambda_axis(&runs.iter().map(|(l, _)| *l).collect::<Vec<_>>());
    let at = |l: f64| runs.iter().position(|(x, _)| *x == l).map(|i| positions[i]);
    // Mean over seeds, with the 95 % t interval over seeds as the bar.
    let series = |name: &str, column: &str, colour: usize| -> Result<Series> {
        let (points, errors) = Seeded::from_table(&current, "lambda", column)?.mean_points(at, 100.0);
        Ok(Series { name: name.into(), points, errors, colour, markers: true, ..Default::default() })
    };
    let charts = vec![LineChart {
        title: "10-fold pair verification accuracy (L2 distance), mean over seeds, bars: 95 % t interval".into(),
        x_label: "λ, log scale (0: identification only, ∞: verification only, set apart at the ends)".into(),
        y_label: "accuracy (%)".into(),
        x_ticks: Some(ticks),
        series: vec![
            series("held-out digits 7-9", "held_out_verification_accuracy", 0)?,
            series("all digits", "all_digits_verification_accuracy", 1)?,
        ],
        ..Default::default()
    }];
    let mut files = save(
        &store.dir().join("lambda_sweep"),
        &LineFigure {
            title: "DeepID2: verification accuracy against the verification weight λ".into(),
            charts,
            cols: 1,
        },
    )?;
    let best = Seeded::from_table(&current, "lambda", "held_out_verification_accuracy")?.best_interior();
    let features = store.load("features")?;
    let mut panels = Vec::new();
    for (which, lambda) in
        [("identification only", Some(0.0)), ("best λ", best.map(|b| b.0)), ("verification only", Some(f64::INFINITY))]
    {
        let Some(lambda) = lambda else { continue };
        let Some((_, run)) = runs.iter().find(|(l, _)| *l == lambda) else { continue };
        panels.push(ScatterPanel {
            title: format!("λ = {} ({which}), seed {}", lambda_label(lambda), run.seed()?),
            points: principal_plane(&features, run)?,
            centers: Vec::new(),
        });
    }
    let names = (0..10)
        .map(|d| if TRAIN_DIGITS.contains(&(d as u8)) { format!("{d} (train)") } else { format!("{d} (held out)") })
        .collect();
    files.extend(save(
        &store.dir().join("pca"),
        &ScatterFigure {
            title: "DeepID2 features of six identities, first two principal components".into(),
            panels,
            cols: 3,
            class_names: names,
        },
    )?);
    Ok(files)
}

/// One run's recorded features projected on their first two principal components, with labels.
fn principal_plane(features: &Table, run: &Record) -> Result<Vec<(f32, f32, u8)>> {
    let rows: Vec<Record> = rows_of(features, run.run_id()?).collect();
    let dim = (0..).take_while(|d| rows.first().is_some_and(|r| r.cell(&format!("f{d}")).is_ok())).count();
    let mut flat = Vec::with_capacity(rows.len() * dim);
    let mut labels = Vec::with_capacity(rows.len());
    for r in &rows {
        for d in 0..dim {
            flat.push(r.num(&format!("f{d}"))? as f32);
        }
        labels.push(r.num("label")? as u8);
    }
    let projected = crate::metrics::pca_project(&flat, dim.max(1), 2);
    Ok(projected.iter().zip(&labels).map(|(p, &l)| (p[0] as f32, p.get(1).copied().unwrap_or(0.0) as f32, l)).collect())
}
