//! The leaderboard's figure (four metrics per method, mean and 95 % interval over seeds) and its table
//! results/leaderboard.parquet.

use std::path::PathBuf;

use anyhow::Result;

use super::claims::aggregate;
use crate::experiments::setup::percent_points;
use crate::plot::{save, LineChart, LineFigure, Series};
use crate::results::Store;

pub fn draw(store: &Store) -> Result<Vec<PathBuf>> {
    let board = aggregate(&store.current_runs()?)?;
    let results_dir = store.results_dir();
    let path = results_dir.join("leaderboard.parquet");
    let metadata = vec![("replicate.table".into(), "leaderboard".into())];
    crate::results::write_parquet(&path, &mut board.to_frame()?, metadata)?;
    let methods = board.records().map(|r| Ok(r.text("method")?.to_string())).collect::<Result<Vec<String>>>()?;
    // Bars: the 95 % t interval of the mean over seeds, t(n − 1) · std / √n (none for one seed).
    let mut halves = Vec::new();
    for r in board.records() {
        let n = r.num("finished_runs")?;
        halves.push(if n >= 2.0 { crate::stats::t_quantile(0.975, n - 1.0) / n.sqrt() } else { 0.0 });
    }
    let chart = |title: &str, metric: &str, colour: usize, from_zero: bool| -> Result<LineChart> {
        let (points, stds) =
            percent_points(board.records(), &format!("{metric}_mean"), Some(&format!("{metric}_std")))?;
        let errors = points.iter().zip(&stds).map(|(p, s)| s * halves[p.0 as usize]).collect();
        Ok(LineChart {
            title: title.into(),
            x_label: format!(
                "method (mean over seeds, bars: 95 % t interval){}",
                if from_zero { "" } else { "; the y axis does not start at 0" }
            ),
            y_label: "%".into(),
            y_from_zero: from_zero,
            x_categories: Some(methods.clone()),
            series: vec![Series { name: title.into(), points, errors, colour, markers: true, no_line: true }],
            ..Default::default()
        })
    };
    let charts = vec![
        chart("VAL at FAR = 1e-3, unseen digits 7-9", "held_out_val_at_far_1e-3", 0, true)?,
        chart("10-fold verification accuracy, digits 7-9", "held_out_balanced_verification_accuracy", 1, false)?,
        chart("precision@1, digits 7-9", "precision_at_1", 2, false)?,
        chart("identification accuracy, digits 0-6", "identification_accuracy", 3, false)?,
    ];
    let mut files = save(
        &store.dir().join("leaderboard"),
        // Stacked, not side by side: nine methods need the figure's whole width for their names.
        &LineFigure { title: "Every loss on the same 64-D LeNets++, data and budget".into(), charts, cols: 1 },
    )?;
    files.push(path);
    Ok(files)
}
