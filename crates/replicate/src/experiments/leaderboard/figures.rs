//! The leaderboard's figure (four metrics per method, mean ± std over seeds) and its table
//! results/leaderboard.parquet.

use std::path::{Path, PathBuf};

use anyhow::Result;

use super::claims::aggregate;
use crate::experiments::setup::percent_points;
use crate::plot::{save, LineChart, LineFigure, Series};
use crate::results::Store;

pub fn draw(store: &Store) -> Result<Vec<PathBuf>> {
    let board = aggregate(&store.current_runs()?)?;
    let results_dir = store.dir().parent().unwrap_or(Path::new("."));
    let path = results_dir.join("leaderboard.parquet");
    let metadata = vec![("replicate.table".into(), "leaderboard".into())];
    crate::results::write_parquet(&path, &mut board.to_frame()?, metadata)?;
    let methods = board.records().map(|r| Ok(r.text("method")?.to_string())).collect::<Result<Vec<String>>>()?;
    let chart = |title: &str, metric: &str, colour: usize| -> Result<LineChart> {
        let (points, errors) =
            percent_points(board.records(), &format!("{metric}_mean"), Some(&format!("{metric}_std")))?;
        Ok(LineChart {
            title: title.into(),
            x_label: "method (mean ± std over seeds)".into(),
            y_label: "%".into(),
            x_categories: Some(methods.clone()),
            series: vec![Series { name: title.into(), points, errors, colour, markers: true, no_line: true }],
            ..Default::default()
        })
    };
    let charts = vec![
        chart("VAL at FAR = 1e-3, unseen digits 7-9", "held_out_val_at_far_1e-3", 0)?,
        chart("10-fold verification accuracy, digits 7-9", "held_out_balanced_verification_accuracy", 1)?,
        chart("precision@1, digits 7-9", "precision_at_1", 2)?,
        chart("identification accuracy, digits 0-6", "identification_accuracy", 3)?,
    ];
    let mut files = save(
        &store.dir().join("leaderboard"),
        &LineFigure { title: "Every loss on the same 64-D LeNets++, data and budget".into(), charts, cols: 2 },
    )?;
    files.push(path);
    Ok(files)
}
