//! What the leaderboard claims: a board of mean ± std over seeds per method, and the rule that
//! reads it.

use anyhow::Result;

use crate::metrics::mean_std;
use crate::results::{Row, Table};
use crate::verdict::{fmt_pct, or_na, Claim, Section, Verdict};

/// The five training signals compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    Softmax,
    Contrastive,
    Triplet,
    Center,
    Lsoftmax,
}

impl Method {
    pub const ALL: [Method; 5] =
        [Method::Softmax, Method::Contrastive, Method::Triplet, Method::Center, Method::Lsoftmax];

    pub fn name(&self) -> &'static str {
        match self {
            Method::Softmax => "softmax",
            Method::Contrastive => "contrastive",
            Method::Triplet => "triplet",
            Method::Center => "center",
            Method::Lsoftmax => "lsoftmax",
        }
    }

    pub fn label(&self) -> &'static str {
        match self {
            Method::Softmax => "softmax",
            Method::Contrastive => "softmax + contrastive (DeepID2)",
            Method::Triplet => "triplet, semi-hard (FaceNet)",
            Method::Center => "softmax + center loss",
            Method::Lsoftmax => "L-Softmax, m = 4",
        }
    }
}

const BOARD_METRICS: [&str; 11] = [
    "identification_accuracy",
    "held_out_balanced_verification_accuracy",
    "held_out_val_at_far_1e-3",
    "held_out_val_at_far_1e-2",
    "held_out_l2_balanced_verification_accuracy",
    "held_out_l2_val_at_far_1e-3",
    "r_ratio",
    "precision_at_1",
    "map_at_r",
    "train_seconds",
    "images_per_second",
];

const VAL_MEAN: &str = "held_out_val_at_far_1e-3_mean";

/// One row per method: mean and std over its finished runs of every board metric.
pub fn aggregate(runs: &Table) -> Result<Table> {
    let mut rows = Vec::new();
    for method in Method::ALL {
        let mut mine = Vec::new();
        for r in runs.records() {
            if r.str("method")? == Some(method.name()) {
                mine.push(r);
            }
        }
        if mine.is_empty() {
            continue;
        }
        let mut finished = Vec::new();
        for r in &mine {
            if r.finished()? {
                finished.push(*r);
            }
        }
        let mut row: Row = vec![
            ("method".into(), method.name().into()),
            ("description".into(), method.label().into()),
            ("runs".into(), mine.len().into()),
            ("finished_runs".into(), finished.len().into()),
        ];
        for metric in BOARD_METRICS {
            let mut values = Vec::new();
            for r in &finished {
                values.extend(r.f64(metric)?.filter(|v| v.is_finite()));
            }
            let (m, s) = mean_std(&values);
            row.push((format!("{metric}_mean"), m.into()));
            row.push((format!("{metric}_std"), s.into()));
        }
        rows.push(row);
    }
    Ok(Table::new(format!("the leaderboard of {}", runs.source), rows))
}

/// Adding a term or a margin to softmax helps: the method with the best mean held-out VAL@1e-3
/// is one of softmax's extensions (partly: the triplet loss, which is not one).
pub fn extra_terms_help(board: &Table) -> Result<Claim> {
    let mut best: Option<(String, f64)> = None;
    let mut softmax = None;
    for r in board.records() {
        let (method, val) = (r.text("method")?, r.f64(VAL_MEAN)?);
        if method == "softmax" {
            softmax = val;
        }
        if let Some(v) = val {
            if best.as_ref().is_none_or(|b| v > b.1) {
                best = Some((method.to_string(), v));
            }
        }
    }
    let verdict = match (&best, softmax) {
        (Some((name, _)), Some(_)) if name != "softmax" && name != "triplet" => Verdict::Reproduced,
        (Some((name, _)), Some(_)) if name == "triplet" => Verdict::Partly,
        _ => Verdict::NotReproduced,
    };
    Ok(Claim::new(
        "Adding an intra-class term (contrastive, center) or a margin (L-Softmax) to softmax improves verification on unseen identities",
        "the papers' shared claim, each against its own baseline",
        format!(
            "best held-out VAL@1e-3: {} ({}); softmax alone: {}",
            best.as_ref().map(|b| b.0.as_str()).unwrap_or("n/a"),
            best.as_ref().map(|b| fmt_pct(b.1)).unwrap_or_default(),
            or_na(softmax, fmt_pct)
        ),
        verdict,
    ))
}

pub fn section(runs: &Table) -> Result<Option<Section>> {
    let board = aggregate(runs)?;
    let Some(first) = runs.records().next() else { return Ok(None) };
    if board.rows.is_empty() {
        return Ok(None);
    }
    let cols = [
        ("identification_accuracy", "identification (0-6)"),
        ("held_out_balanced_verification_accuracy", "verification (7-9, 10-fold)"),
        ("held_out_val_at_far_1e-3", "VAL@1e-3 (7-9)"),
        ("held_out_l2_val_at_far_1e-3", "VAL@1e-3, raw L2 (7-9)"),
        ("r_ratio", "R (0-6)"),
        ("precision_at_1", "precision@1 (7-9)"),
        ("map_at_r", "MAP@R (7-9)"),
        ("train_seconds", "train s"),
    ];
    let mut table = format!(
        "| method | runs |{}\n|---|---|{}\n",
        cols.iter().map(|c| format!(" {} |", c.1)).collect::<String>(),
        "---|".repeat(cols.len())
    );
    for r in board.records() {
        let mut cells = String::new();
        for (metric, _) in cols {
            let cell = match (r.f64(&format!("{metric}_mean"))?, r.f64(&format!("{metric}_std"))?) {
                (Some(m), Some(s)) if metric == "r_ratio" => format!("{m:.3} ± {s:.3}"),
                (Some(m), Some(s)) if metric == "train_seconds" => format!("{m:.0} ± {s:.0}"),
                (Some(m), Some(s)) => format!("{:.2} ± {:.2}", 100.0 * m, 100.0 * s),
                _ => "—".into(),
            };
            cells.push_str(&format!(" {cell} |"));
        }
        table.push_str(&format!("| {} | {} |{cells}\n", r.text("method")?, r.num("finished_runs")?));
    }
    Ok(Some(Section {
        title: "Leaderboard: every loss on the same network, data and budget".into(),
        claims: vec![extra_terms_help(&board)?],
        body: format!(
            "Mean ± std over seeds of the finished runs.\n\n{table}\n![leaderboard](leaderboard/leaderboard.png)\n\n\
             **Setup.** LeNets++ (width {w}) with a 64-D feature, {it} iterations of {k} digits × {per} images from digits \
             0-6 for every method, the same seeds and schedule. λ: {source}. Verification and retrieval use the unseen \
             digits 7-9 (balanced pairs for accuracy, all pairs of {n} images for VAL) and compare feature directions \
             (cosine similarity, the usual score for softmax-trained face features; FaceNet's embedding is unit-length \
             already); the raw-L2 column thresholds the squared distance of the unnormalised features instead. \
             Identification uses the classifier, or for the triplet embedding the nearest class mean of training \
             embeddings.\n",
            w = first.num("width")?,
            it = first.num("iterations")?,
            k = first.num("classes_per_batch")?,
            per = first.num("batch_size")? / first.num("classes_per_batch")?,
            source = first.str("lambda_source")?.unwrap_or_default(),
            n = first.num("val_images")?,
        ),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::Cell;

    /// Runs of each method with these held-out VAL@1e-3 values (one run per value).
    fn runs(per_method: &[(&str, &[f64])]) -> Table {
        let mut rows = Vec::new();
        for (method, vals) in per_method {
            for (seed, v) in vals.iter().enumerate() {
                let mut row: Row = vec![
                    ("run_id".into(), Cell::Str(format!("{method}-{seed}"))),
                    ("status".into(), "finished".into()),
                    ("method".into(), (*method).into()),
                    ("held_out_val_at_far_1e-3".into(), (*v).into()),
                ];
                row.extend(
                    BOARD_METRICS
                        .iter()
                        .filter(|m| **m != "held_out_val_at_far_1e-3")
                        .map(|m| (m.to_string(), 0.5.into())),
                );
                rows.push(row);
            }
        }
        Table::new("hand-made leaderboard runs", rows)
    }

    #[test]
    fn the_board_averages_finished_runs_per_method() {
        let board = aggregate(&runs(&[("softmax", &[0.1, 0.3]), ("center", &[0.4])])).unwrap();
        let softmax = board.records().next().unwrap();
        assert_eq!(softmax.text("method").unwrap(), "softmax");
        assert!((softmax.num(VAL_MEAN).unwrap() - 0.2).abs() < 1e-12);
        assert_eq!(softmax.num("finished_runs").unwrap(), 2.0);
    }

    #[test]
    fn an_extension_of_softmax_must_top_the_board() {
        let verdict = |t: &Table| extra_terms_help(&aggregate(t).unwrap()).unwrap().verdict;
        assert_eq!(
            verdict(&runs(&[("softmax", &[0.1]), ("center", &[0.4]), ("triplet", &[0.3])])),
            Verdict::Reproduced
        );
        assert_eq!(verdict(&runs(&[("softmax", &[0.1]), ("center", &[0.2]), ("triplet", &[0.3])])), Verdict::Partly);
        assert_eq!(verdict(&runs(&[("softmax", &[0.5]), ("center", &[0.2])])), Verdict::NotReproduced);
        assert_eq!(verdict(&runs(&[("center", &[0.2])])), Verdict::NotReproduced, "no softmax baseline");
    }
}
