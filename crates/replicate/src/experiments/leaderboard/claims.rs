//! What the leaderboard claims: a board of mean ± sample std over seeds per method, and one rule
//! per extension of softmax, paired with softmax over seeds.

use anyhow::Result;

use crate::experiments::hypersphere::MarginLoss;
use crate::experiments::published;
use crate::experiments::seeds::{Seeded, PAIRED};
use crate::results::{Cell, Record, Row, Table};
use crate::stats;
use crate::verdict::{fmt_pct, or_na, Claim, Direction, Scale, Section, Verdict};

/// The training signals compared: the four papers' (and softmax), then L-Softmax's successors
/// on normalised class weights.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Method {
    Softmax,
    Contrastive,
    Triplet,
    Center,
    Lsoftmax,
    #[serde(rename = "normface")]
    NormFace,
    #[serde(rename = "sphereface")]
    SphereFace,
    #[serde(rename = "cosface")]
    CosFace,
    #[serde(rename = "arcface")]
    ArcFace,
}

impl Method {
    /// Softmax and the four papers' signals.
    pub const CLASSIC: [Method; 5] =
        [Method::Softmax, Method::Contrastive, Method::Triplet, Method::Center, Method::Lsoftmax];

    /// Every method, [`Method::CLASSIC`] first (a method's place here keys its tables).
    pub const ALL: [Method; 9] = [
        Method::Softmax,
        Method::Contrastive,
        Method::Triplet,
        Method::Center,
        Method::Lsoftmax,
        Method::NormFace,
        Method::SphereFace,
        Method::CosFace,
        Method::ArcFace,
    ];

    pub fn name(&self) -> &'static str {
        match self {
            Method::Softmax => "softmax",
            Method::Contrastive => "contrastive",
            Method::Triplet => "triplet",
            Method::Center => "center",
            Method::Lsoftmax => "lsoftmax",
            Method::NormFace => "normface",
            Method::SphereFace => "sphereface",
            Method::CosFace => "cosface",
            Method::ArcFace => "arcface",
        }
    }

    /// The normalised-softmax loss the method trains with (None outside that family).
    pub fn margin_loss(self) -> Option<MarginLoss> {
        match self {
            Method::NormFace => Some(MarginLoss::NormFace),
            Method::SphereFace => Some(MarginLoss::SphereFace),
            Method::CosFace => Some(MarginLoss::CosFace),
            Method::ArcFace => Some(MarginLoss::ArcFace),
            _ => None,
        }
    }

    /// What the method adds to softmax, for a claim row.
    pub fn addition(&self) -> &'static str {
        match self {
            Method::Softmax => "nothing",
            Method::Contrastive => "a contrastive verification term (DeepID2)",
            Method::Triplet => "a triplet loss in place of it (FaceNet)",
            Method::Center => "a center-loss term",
            Method::Lsoftmax => "an angular margin (L-Softmax, m = 4)",
            Method::NormFace => "normalised features and class weights (NormFace)",
            Method::SphereFace => "normalised class weights and a multiplicative angular margin (SphereFace)",
            Method::CosFace => "normalised features and weights with a cosine margin (CosFace)",
            Method::ArcFace => "normalised features and weights with an additive angular margin (ArcFace)",
        }
    }

    pub fn label(&self) -> &'static str {
        match self {
            Method::Softmax => "softmax",
            Method::Contrastive => "softmax + contrastive (DeepID2)",
            Method::Triplet => "triplet, semi-hard (FaceNet)",
            Method::Center => "softmax + center loss",
            Method::Lsoftmax => "L-Softmax",
            Method::NormFace => "NormFace",
            Method::SphereFace => "SphereFace (A-Softmax)",
            Method::CosFace => "CosFace (LMCL)",
            Method::ArcFace => "ArcFace",
        }
    }

    /// The loss's own name, for a claim about it.
    pub fn loss_name(&self) -> &'static str {
        match self {
            Method::Softmax => "softmax",
            Method::Contrastive => "DeepID2",
            Method::Triplet => "FaceNet",
            Method::Center => "center loss",
            Method::Lsoftmax => "L-Softmax",
            Method::NormFace => "NormFace",
            Method::SphereFace => "SphereFace",
            Method::CosFace => "CosFace",
            Method::ArcFace => "ArcFace",
        }
    }
}

/// The board's metrics; `held_out_val_at_far_1e-3_std` is a run's spread of VAL over its ten
/// folds, so the board's `…_std_mean` is the fold spread and `held_out_val_at_far_1e-3_std` the
/// seed spread.
const BOARD_METRICS: [&str; 12] = [
    "identification_accuracy",
    "held_out_balanced_verification_accuracy",
    "held_out_val_at_far_1e-3",
    "held_out_val_at_far_1e-3_std",
    "held_out_val_at_far_1e-2",
    "held_out_l2_balanced_verification_accuracy",
    "held_out_l2_val_at_far_1e-3",
    "r_ratio",
    "precision_at_1",
    "map_at_r",
    "train_seconds",
    "images_per_second",
];

/// The metric the board's claims and the validation split's choices read.
pub const VAL: &str = "held_out_val_at_far_1e-3";

/// Whether a run belongs to the validation split the settings are chosen on (runs recorded
/// before that split existed have no `split` and are the board's).
pub fn on_validation(r: &Record) -> Result<bool> {
    Ok(matches!(r.cell("split"), Ok(Cell::Str(s)) if s == "validation"))
}

/// The board's runs: those scored on digits 7-9.
pub fn board_runs(runs: &Table) -> Result<Table> {
    runs.filter(|r| Ok(!on_validation(&r)?))
}
#[cfg(test)]
const VAL_MEAN: &str = "held_out_val_at_far_1e-3_mean";

/// One row per method: mean and std over its finished board runs of every board metric.
pub fn aggregate(runs: &Table) -> Result<Table> {
    let runs = board_runs(runs)?;
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
            let (m, s) = (stats::mean(&values), stats::sample_std(&values));
            row.push((format!("{metric}_mean"), m.into()));
            row.push((format!("{metric}_std"), s.into()));
        }
        rows.push(row);
    }
    Ok(Table::new(format!("the leaderboard of {}", runs.source), rows))
}

/// Adding a term or a margin to softmax helps verification on unseen identities, one claim row
/// per extension: the paired difference (method − softmax) of held-out VAL@1e-3 over seeds has an
/// interval above zero. The triplet loss is not an extension of softmax and has no row, nor has
/// NormFace (its own paper reports a gain over softmax, ArcFace's Table 2 a loss). Then the
/// margin's own effect: CosFace and ArcFace against NormFace, the same loss and s without it.
pub fn extra_terms_help(runs: &Table) -> Result<Vec<Claim>> {
    let runs = board_runs(runs)?;
    let index = |name: &str| Method::ALL.iter().position(|m| m.name() == name).map(|i| i as f64);
    let val = Seeded::collect(
        runs.records(),
        |r| Ok(r.str("method")?.and_then(index)),
        |r| Ok(if r.finished()? { r.f64(VAL)? } else { None }),
    )?;
    let mut claims = Vec::new();
    let extensions =
        [Method::Contrastive, Method::Center, Method::Lsoftmax, Method::SphereFace, Method::CosFace, Method::ArcFace];
    let pairs = extensions
        .map(|m| (Method::Softmax, m))
        .into_iter()
        .chain([Method::CosFace, Method::ArcFace].map(|m| (Method::NormFace, m)));
    for (baseline, method) in pairs {
        let (Some(from), Some(to)) = (index(baseline.name()), index(method.name())) else { continue };
        if val.at(to).is_none() {
            continue;
        }
        let change = val.paired(from, to);
        let (claim, paper) = if baseline == Method::Softmax {
            (
                format!(
                    "Adding {} to softmax improves verification on unseen identities (held-out VAL@1e-3)",
                    method.addition()
                ),
                "the papers' shared claim, each against its own baseline".to_string(),
            )
        } else {
            (
                format!(
                    "{}'s margin improves verification on unseen identities over NormFace, the same loss and s \
                     without it (held-out VAL@1e-3)",
                    method.loss_name()
                ),
                published::table2_margins_over_norm_softmax(),
            )
        };
        claims.push(Claim::new(
            claim,
            paper,
            format!(
                "{} vs {} {} (means); {}",
                or_na(val.mean(to), fmt_pct),
                baseline.name(),
                or_na(val.mean(from), fmt_pct),
                change.text(&format!("{} → {}", baseline.name(), method.name()), Scale::Points, PAIRED)
            ),
            Verdict::of_effect(change.interval.as_ref(), Direction::Up, 0.0),
        ));
    }
    Ok(claims)
}

/// The board as it stood before the validation split and image-disjoint folds (its λ from
/// DeepID2's and center loss's own sweeps, its folds pair blocks), from the whole runs table
/// (the rows the current board replaced): its claims' numbers in words, or nothing if it has none.
pub fn earlier_board(all_runs: &Table) -> Result<String> {
    let earlier = all_runs.filter(|r| Ok(!on_validation(&r)? && crate::experiments::setup::on_pair_blocks(&r)))?;
    if earlier.rows.is_empty() {
        return Ok(String::new());
    }
    let claims = extra_terms_help(&earlier)?;
    let words: Vec<String> = claims.iter().map(|c| c.ours.clone()).collect();
    Ok(format!(" That earlier board ({} runs) gave: {}.", earlier.rows.len(), words.join("; ")))
}

/// The validation split's sweeps: each setting tried, its mean ± sample std of validation
/// VAL@1e-3 over seeds, and which was chosen (the best mean, see `selection`).
fn validation_table(runs: &Table) -> Result<String> {
    let validation = runs.filter(|r| on_validation(&r))?;
    if validation.rows.is_empty() {
        return Ok(String::new());
    }
    let mut table = "| method | setting | validation VAL@1e-3 (5-6) | seeds |\n|---|---|---|---|\n".to_string();
    for (method, key, _) in super::selection::chosen() {
        let seeded = super::selection::validation_val(&validation, method, key)?;
        for s in &seeded.settings {
            let values: Vec<f64> = s.seeds.iter().map(|v| v.1).collect();
            let spread =
                if values.len() > 1 { format!(" ± {:.2}", 100.0 * stats::sample_std(&values)) } else { String::new() };
            table.push_str(&format!(
                "| {} | {key} = {} | {:.2}{spread} % | {} |\n",
                method.name(),
                s.value,
                100.0 * stats::mean(&values),
                values.len()
            ));
        }
    }
    Ok(table)
}

/// The board's section from its current runs; `all_runs` (the whole table) gives the earlier
/// board's numbers.
pub fn section(runs: &Table, all_runs: &Table) -> Result<Option<Section>> {
    let board = aggregate(runs)?;
    let on_board = board_runs(runs)?;
    let Some(first) = on_board.records().next() else { return Ok(None) };
    let mut sources: Vec<&str> = Vec::new();
    for r in on_board.records() {
        if let Some(source) = r.str("lambda_source")?.filter(|s| !sources.contains(s)) {
            sources.push(source);
        }
    }
    if board.rows.is_empty() {
        return Ok(None);
    }
    let cols = [
        ("identification_accuracy", "identification (0-6)"),
        ("held_out_balanced_verification_accuracy", "verification (7-9, 10-fold)"),
        ("held_out_val_at_far_1e-3", "VAL@1e-3 (7-9)"),
        ("held_out_val_at_far_1e-3_std", "its fold std"),
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
                (Some(m), _) if metric.ends_with("_std") => format!("{:.2}", 100.0 * m),
                (Some(m), Some(s)) => format!("{:.2} ± {:.2}", 100.0 * m, 100.0 * s),
                _ => "—".into(),
            };
            cells.push_str(&format!(" {cell} |"));
        }
        table.push_str(&format!("| {} | {} |{cells}\n", r.text("method")?, r.num("finished_runs")?));
    }
    Ok(Some(Section {
        title: "Leaderboard: every loss on the same network, data and budget".into(),
        claims: extra_terms_help(runs)?,
        body: format!(
            "Mean ± sample std (n − 1) over seeds of the finished runs: the ± is the spread over seeds. The \
             fold std is apart from it: each run's spread of VAL over its ten folds, averaged over the method's seeds. \
             The claims compare each extension of softmax \
             with softmax on the same seeds (paired differences, 95 % t intervals).\n\n{table}\n![leaderboard](leaderboard/leaderboard.png)\n\n\
             **Setup.** LeNets++ (width {w}) with a 64-D feature, {it} iterations of {k} digits × {per} images from digits \
             0-6 for every method, the same seeds and schedule. Settings: {sources}. Verification and retrieval use the unseen \
             digits 7-9 (balanced pairs for accuracy, all pairs of {n} images for VAL; the pairs lie within ten \
             disjoint sets of images, the ten folds, so no image is in two folds) and compare feature directions \
             (cosine similarity, the usual score for softmax-trained face features; FaceNet's embedding is unit-length \
             already); the raw-L2 column thresholds the squared distance of the unnormalised features instead. \
             Identification uses the classifier, or for the triplet embedding the nearest class mean of training \
             embeddings. L-Softmax's successors use the cosine head with s = 16 (SphereFace: ‖x‖, λ annealed as in the \
             sphereface experiment) and clip the gradients' norm at 5; NormFace, CosFace and ArcFace batch-normalise \
             the feature, as the sphereface, cosface and arcface experiments do.\n\n\
             **Validation split.** Every setting a method chooses is swept on digits 0-4 (all five in every batch, the same \
             batch size, iterations and seeds) and scored on the unseen digits 5-6; the best mean VAL@1e-3 is recorded \
             as the selection the board reads, so digits 7-9 choose nothing. Before this split existed the board's λ \
             came from DeepID2's and center loss's own sweeps (DeepID2's chosen on digits 7-9, which favoured its row) \
             and its ten verification folds were blocks of one pair list, sharing images; those runs stay in \
             runs.parquet as history.{earlier}\n\n{validation}",
            earlier = earlier_board(all_runs)?,
            sources = sources.join("; "),
            validation = validation_table(runs)?,
            w = first.num("width")?,
            it = first.num("iterations")?,
            k = first.num("classes_per_batch")?,
            per = first.num("batch_size")? / first.num("classes_per_batch")?,
            n = first.num("val_images")?,
        ),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs of each method with these held-out VAL@1e-3 values (the k-th value is seed k + 1).
    fn runs(per_method: &[(&str, &[f64])]) -> Table {
        let mut rows = Vec::new();
        for (method, vals) in per_method {
            for (seed, v) in vals.iter().enumerate() {
                let mut row: Row = vec![
                    ("run_id".into(), Cell::Str(format!("{method}-{seed}"))),
                    ("status".into(), "finished".into()),
                    ("seed".into(), (seed as u64 + 1).into()),
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
        assert!((softmax.num("held_out_val_at_far_1e-3_std").unwrap() - 0.02f64.sqrt()).abs() < 1e-12, "n − 1");
        assert_eq!(softmax.num("finished_runs").unwrap(), 2.0);
    }

    #[test]
    fn each_extension_of_softmax_is_its_own_paired_row() {
        let board = runs(&[
            ("softmax", &[0.10, 0.20, 0.15]),
            ("center", &[0.14, 0.25, 0.19]),
            ("contrastive", &[0.05, 0.14, 0.11]),
            ("lsoftmax", &[0.20, 0.10, 0.18]),
            ("triplet", &[0.9, 0.9, 0.9]),
        ]);
        let claims = extra_terms_help(&board).unwrap();
        let verdicts: Vec<Verdict> = claims.iter().map(|c| c.verdict).collect();
        // Center: +4, +5, +4 points (above zero); contrastive: −5, −6, −4 (the opposite);
        // L-Softmax: +10, −10, +3 (the seeds disagree). Triplet has no row.
        assert_eq!(verdicts, [Verdict::NotReproduced, Verdict::Reproduced, Verdict::Inconclusive]);
        assert!(claims[1].ours.contains("softmax → center: +4.33 pt"), "{}", claims[1].ours);
        assert!(
            extra_terms_help(&runs(&[("center", &[0.2])])).unwrap()[0].verdict == Verdict::Inconclusive,
            "no softmax baseline"
        );
    }

    #[test]
    fn the_successors_are_paired_with_softmax_and_their_margins_with_normface() {
        let board = runs(&[
            ("softmax", &[0.10, 0.20, 0.15]),
            ("normface", &[0.30, 0.39, 0.34]),
            ("sphereface", &[0.12, 0.22, 0.17]),
            ("cosface", &[0.27, 0.36, 0.31]),
            ("arcface", &[0.41, 0.50, 0.45]),
        ]);
        let claims = extra_terms_help(&board).unwrap();
        let rows: Vec<(&str, Verdict)> = claims.iter().map(|c| (c.claim.as_str(), c.verdict)).collect();
        // Against softmax: SphereFace +2 pt on every seed, CosFace +17, +16, +16, ArcFace +31, +30,
        // +30. Against NormFace: CosFace −3 on every seed (the opposite), ArcFace +11. NormFace
        // itself has no row against softmax.
        assert_eq!(rows.len(), 5, "{rows:?}");
        assert!(rows.iter().all(|(claim, _)| !claim.contains("(NormFace) to softmax")));
        assert_eq!(
            rows.iter().map(|r| r.1).collect::<Vec<_>>(),
            [
                Verdict::Reproduced,
                Verdict::Reproduced,
                Verdict::Reproduced,
                Verdict::NotReproduced,
                Verdict::Reproduced
            ]
        );
        assert!(rows[3].0.starts_with("CosFace's margin improves verification"), "{}", rows[3].0);
        assert!(claims[4].ours.contains("normface → arcface: +11.00 pt"), "{}", claims[4].ours);
    }

    #[test]
    fn validation_runs_stay_off_the_board() {
        let mut board = runs(&[("softmax", &[0.10, 0.20, 0.15]), ("center", &[0.14, 0.25, 0.19])]);
        let mut chosen_on = runs(&[("center", &[0.9, 0.9, 0.9])]);
        for row in &mut chosen_on.rows {
            row.push(("split".into(), "validation".into()));
        }
        board.rows.extend(chosen_on.rows);
        let aggregated = aggregate(&board).unwrap();
        let center = aggregated.records().find(|r| r.text("method").unwrap() == "center").unwrap();
        assert_eq!(center.num("finished_runs").unwrap(), 3.0);
        assert!((center.num(VAL_MEAN).unwrap() - 0.58 / 3.0).abs() < 1e-12);
        let claims = extra_terms_help(&board).unwrap();
        assert!(claims[0].ours.contains("softmax → center: +4.33 pt"), "{}", claims[0].ours);
    }
}
