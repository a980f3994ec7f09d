//! `lfw-baselines/baselines.png`: each descriptor's View 2 accuracy (mean over the ten folds with
//! its 95 % t interval, and every fold) and its ROC on View 2 with a log FAR axis.

use std::path::PathBuf;

use anyhow::Result;

use super::claims::view2_by_method;
use super::Method;
use crate::experiments::faces::fold_accuracy_chart;
use crate::plot::{save, LineChart, LineFigure, Series};
use crate::results::Store;

pub fn draw(store: &Store) -> Result<Vec<PathBuf>> {
    let runs = store.current_runs()?;
    let by_method = view2_by_method(&runs, &store.load("folds")?)?;
    let methods: Vec<Method> = Method::ALL.into_iter().filter(|m| by_method.contains_key(m.name())).collect();
    let columns: Vec<(String, Vec<f64>)> =
        methods.iter().map(|m| (m.name().to_string(), by_method[m.name()].iter().map(|v| v.1).collect())).collect();
    let accuracy = fold_accuracy_chart(&columns, "descriptor");
    let roc_table = store.load("roc")?;
    let mut roc_series = Vec::new();
    for (k, m) in methods.iter().enumerate() {
        let Some(run) = runs.records().find(|r| r.text("method").ok() == Some(m.name())) else { continue };
        let id = run.run_id()?;
        let mut points = Vec::new();
        for r in roc_table.records().filter(|r| r.run_id().ok() == Some(id)) {
            let (far, val) = (r.num("far")?, r.num("val")?);
            if far > 0.0 {
                points.push((far, val));
            }
        }
        roc_series.push(Series { name: m.name().into(), points, colour: k, ..Default::default() });
    }
    let roc = LineChart {
        title: "View 2 ROC (each fold's held-out pairs, pooled)".into(),
        x_label: "false accept rate (log)".into(),
        y_label: "validation rate".into(),
        x_log: true,
        series: roc_series,
        ..Default::default()
    };
    save(
        &store.dir().join("baselines"),
        &LineFigure {
            title: "LFW with nothing trained: raw pixels and uniform LBP".into(),
            charts: vec![accuracy, roc],
            cols: 2,
        },
    )
}
