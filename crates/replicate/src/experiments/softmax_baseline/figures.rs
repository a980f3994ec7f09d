//! `softmax-baseline`'s Fig. 2: the train and test features of the first finished run.

use std::path::PathBuf;

use anyhow::Result;

use crate::experiments::setup::{digit_names, points_2d};
use crate::plot::{save, ScatterFigure, ScatterPanel};
use crate::results::Store;

pub fn draw(store: &Store) -> Result<Vec<PathBuf>> {
    let runs = store.current_runs()?;
    let features = store.load("features")?;
    let Some(run) = runs.records().find(|r| r.finished().unwrap_or(false)) else {
        return Ok(Vec::new());
    };
    let run_id = run.run_id()?;
    let mut panels = Vec::new();
    for (split, title, column) in
        [("train", "(a) training set", "train_accuracy"), ("test", "(b) test set", "test_accuracy")]
    {
        let acc = run.f64(column)?.unwrap_or(f64::NAN) * 100.0;
        panels.push(ScatterPanel {
            title: format!("{title}, accuracy {acc:.2}%"),
            points: points_2d(&features, run_id, split)?,
            centers: Vec::new(),
        });
    }
    let figure = ScatterFigure {
        title: "Softmax-only 2-D deep features of LeNets++ on MNIST (cf. center loss, Fig. 2)".into(),
        panels,
        cols: 2,
        class_names: digit_names(),
    };
    save(&store.dir().join("fig2"), &figure)
}
