//! `facenet-lfw/mining.png`: each mining rule's test accuracy (View 1: every seed and the mean
//! with its 95 % t interval; View 2: the mean over folds), the embeddings' mean pairwise squared
//! distance during training (seed 1, View 1: a collapse falls to 0), and View 2's ROC per rule
//! averaged over folds (log FAR). Faces themselves are never drawn here.

use std::path::PathBuf;

use anyhow::Result;

use super::claims::{rule_key, view1_by_rule, view2_by_rule};
use crate::experiments::faces::{view2_roc_chart, view_series};
use crate::experiments::setup::series_of;
use crate::losses::Mining;
use crate::plot::{save, LineChart, LineFigure, Series};
use crate::results::{Record, Store};

pub fn draw(store: &Store) -> Result<Vec<PathBuf>> {
    let runs = store.current_runs()?;
    let (view1, view2) = (view1_by_rule(&runs)?, view2_by_rule(&runs)?);
    let rules: Vec<Mining> = Mining::ALL.into_iter().filter(|m| view1.at(rule_key(*m)).is_some()).collect();
    let at = |key: f64| rules.iter().position(|m| rule_key(*m) == key).map(|i| i as f64);
    let each: Vec<(f64, f64)> = rules
        .iter()
        .enumerate()
        .flat_map(|(x, m)| view1.seeds(rule_key(*m)).iter().map(move |s| (x as f64, 100.0 * s.1)))
        .collect();
    let mut series =
        vec![Series { name: "View 1, each seed".into(), points: each, colour: 7, no_line: true, ..Default::default() }];
    series.extend(view_series(&view1, &view2, at, false));
    let accuracy = LineChart {
        title: "accuracy by mining rule (cosine, flip-averaged)".into(),
        x_label: "mining rule".into(),
        y_label: "accuracy (%), the axis does not start at 0".into(),
        x_categories: Some(rules.iter().map(|m| m.name().to_string()).collect()),
        series,
        ..Default::default()
    };
    let curves = store.load("curves")?;
    let mut spread = Vec::new();
    for (k, m) in rules.iter().enumerate() {
        let seed1 = runs.records().find(|r| {
            r.text("split").ok() == Some("view1")
                && r.str("mining").ok().flatten() == Some(m.name())
                && r.seed().ok() == Some(1)
        });
        if let Some(run) = seed1 {
            let points = series_of(&curves, run.run_id()?, "step", "mean_pairwise_distance")?;
            spread.push(Series { name: m.name().into(), points, colour: k, ..Default::default() });
        }
    }
    let mut charts = vec![
        accuracy,
        LineChart {
            title: "spread of the embeddings in training (View 1, seed 1)".into(),
            x_label: "step".into(),
            y_label: "mean pairwise d² (2: spread out, 0: collapsed)".into(),
            y_from_zero: true,
            series: spread,
            ..Default::default()
        },
    ];
    let rules2: Vec<f64> = view2.settings.iter().map(|s| s.value).collect();
    let rule_of = |r: &Record| {
        r.str("mining").ok().flatten().and_then(|n| Mining::ALL.iter().position(|m| m.name() == n)).map(|i| i as f64)
    };
    let name = |key: f64| Mining::ALL[key as usize].name().to_string();
    charts.extend(view2_roc_chart(&runs, &store.load("roc")?, &rules2, rule_of, name)?);
    let cols = charts.len();
    save(
        &store.dir().join("mining"),
        &LineFigure { title: "FaceNet on LFW: triplet loss by mining rule".into(), charts, cols },
    )
}
