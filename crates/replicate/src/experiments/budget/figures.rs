//! The budget study's figure: each paper's main metric against iterations, as the training
//! curves log it, for the quick runs and the runs at twice the budget.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::Result;

use super::study::{compare, PAPERS};
use crate::experiments::setup::series_of;
use crate::plot::{save, LineChart, LineFigure, Series};
use crate::results::{Store, Table};
use crate::stats;

/// A series' points and error bars.
type Curve = (Vec<(f64, f64)>, Vec<f64>);

/// Mean over runs at every step that at least two runs logged (one run: its own values), with
/// the half-width of the 95 % t interval over runs.
fn mean_curve(curves: &Table, run_ids: &[String], column: &str) -> Result<Curve> {
    let mut by_step: BTreeMap<u64, Vec<f64>> = BTreeMap::new();
    for id in run_ids {
        for (step, y) in series_of(curves, id, "step", column)? {
            if y.is_finite() {
                by_step.entry(step as u64).or_default().push(y);
            }
        }
    }
    let most = by_step.values().map(Vec::len).max().unwrap_or(0);
    let (mut points, mut errors) = (Vec::new(), Vec::new());
    for (step, ys) in by_step.into_iter().filter(|(_, ys)| ys.len() == most) {
        points.push((step as f64, 100.0 * stats::mean(&ys)));
        errors.push(stats::t_interval(&ys).map_or(0.0, |i| 100.0 * (i.high - i.estimate)));
    }
    Ok((points, errors))
}

pub fn draw(store: &Store) -> Result<Vec<PathBuf>> {
    let results_dir = store.results_dir();
    let budget_runs = store.current_runs()?;
    let budget_curves = store.load("curves")?;
    let mut charts = Vec::new();
    for paper in &PAPERS {
        let own = Store::new(results_dir, paper.experiment);
        let compared = compare(paper, &own.load("runs")?, &budget_runs)?;
        let mut series = Vec::new();
        for (name, ids, curves, colour) in [
            ("quick budget", &compared.quick.finished, &own.load("curves")?, 0),
            ("twice the budget", &compared.longer.finished, &budget_curves, 1),
        ] {
            let (points, errors) = mean_curve(curves, ids, paper.curve)?;
            if !points.is_empty() {
                let name = format!("{name} ({} seed{})", ids.len(), if ids.len() == 1 { "" } else { "s" });
                series.push(Series { name, points, errors, colour, markers: true, ..Default::default() });
            }
        }
        charts.push(LineChart {
            title: format!("{} ({})", paper.experiment, paper.setting_text()),
            x_label: "iteration".into(),
            y_label: format!("{} (%)", paper.metric_name),
            series,
            ..Default::default()
        });
    }
    save(
        &store.dir().join("budget"),
        &LineFigure {
            title: "Budget study: main metric during training, quick schedule and twice its length (mean over seeds, \
                    bars: 95 % t interval)"
                .into(),
            charts,
            cols: 3,
        },
    )
}
