//! `facenet`'s figures: the ROC of each mining rule (Fig. 5), the collapse of the embedding
//! during training, and VAL against the embedding dimension (Table 5).

use std::path::PathBuf;

use anyhow::Result;

use super::claims::Runs;
use crate::experiments::setup::series_of;
use crate::plot::{save, LineChart, LineFigure, Series};
use crate::results::Store;

pub fn draw(store: &Store) -> Result<Vec<PathBuf>> {
    let current = store.current_runs()?;
    let runs = Runs::of(&current)?;
    let roc = store.load("roc")?;
    let curves = store.load("curves")?;
    let mut roc_series = Vec::new();
    let mut spread = Vec::new();
    for (i, r) in runs.by_mining.iter().enumerate() {
        let name = format!("{} ({})", r.str("mining")?.unwrap_or("?"), r.status()?);
        let points = series_of(&roc, r.run_id()?, "far", "val")?;
        roc_series.push(Series {
            name: name.clone(),
            points: points.into_iter().filter(|p| p.0 > 0.0).map(|(x, y)| (x, 100.0 * y)).collect(),
            colour: i,
            markers: false,
            ..Default::default()
        });
        spread.push(Series {
            name,
            points: series_of(&curves, r.run_id()?, "step", "mean_pairwise_distance")?,
            colour: i,
            markers: false,
            ..Default::default()
        });
    }
    let mut files = save(
        &store.dir().join("roc"),
        &LineFigure {
            title: "FaceNet-style ROC on unseen digits 7-9 (cf. FaceNet, Fig. 5)".into(),
            charts: vec![LineChart {
                title: "VAL against FAR, all pairs of held-out test images (each rule's lowest-seed run)".into(),
                x_label: "FAR".into(),
                y_label: "VAL (%)".into(),
                x_log: true,
                series: roc_series,
                ..Default::default()
            }],
            cols: 1,
        },
    )?;
    files.extend(save(
        &store.dir().join("collapse"),
        &LineFigure {
            title: "Collapse: mean pairwise squared distance of a batch's embeddings during training".into(),
            charts: vec![LineChart {
                title: "2 = spread over the sphere, 0 = f(x) constant (each rule's lowest-seed run)".into(),
                x_label: "iteration".into(),
                y_label: "mean ‖f(x_i) − f(x_j)‖²".into(),
                series: spread,
                ..Default::default()
            }],
            cols: 1,
        },
    )?);
    // Only our numbers on the axes: the paper's Table 5 measured faces, not digits, and stands
    // beside ours in `dimension_table` (the notebook and REPORT.md).
    let val = runs.val_seeded()?;
    // Dimensions are powers of two: one labelled tick per recorded dimension, at log2 d.
    let ticks: Vec<(f64, String)> =
        val.settings.iter().map(|s| (s.value.log2().round(), format!("{}", s.value))).collect();
    let (points, errors) = val.mean_points(|d| Some(d.log2()), 100.0);
    let dims = vec![Series {
        name: "ours: MNIST digits 7-9, semi-hard, mean over seeds (bars: 95 % t interval)".into(),
        points,
        errors,
        colour: 0,
        markers: true,
        ..Default::default()
    }];
    files.extend(save(
        &store.dir().join("dimension"),
        &LineFigure {
            title: "VAL at FAR = 1e-3 against embedding dimension (cf. FaceNet, Table 5: faces, in the table beside)"
                .into(),
            charts: vec![LineChart {
                // One series draws no legend box: the subtitle says what the line and bars are.
                title: "ours: MNIST digits 7-9, semi-hard, mean over seeds; bars: 95 % t interval over seeds".into(),
                x_label: "embedding dimension (log scale)".into(),
                y_label: "VAL@1e-3 (%)".into(),
                x_ticks: Some(ticks),
                y_from_zero: true,
                series: dims,
                ..Default::default()
            }],
            cols: 1,
        },
    )?);
    Ok(files)
}
