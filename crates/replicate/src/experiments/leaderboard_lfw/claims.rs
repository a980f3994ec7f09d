//! What `leaderboard-lfw` claims, as rules from its runs (and lfw-baselines' folds) to claim
//! rows. Rules fixed before any leaderboard-lfw run:
//! * Each extension of softmax (the contrastive term, the center loss, L-Softmax's margin)
//!   verifies better than softmax alone on View 2: method − softmax, paired over the ten folds
//!   (t interval), excludes zero upwards → reproduced, downwards → not reproduced, else
//!   inconclusive. A run that diverged counts at chance (50 %).
//! * A face CNN trained on LFW alone beats uniform LBP: softmax − LBP, paired over the folds,
//!   upwards. Softmax is named here, before any run, because the best method by View 2 mean would
//!   be chosen on the folds that score it.
//!
//! Rules for L-Softmax's successors, fixed before any of their runs (the same test):
//! * SphereFace, CosFace and ArcFace each verify better than softmax alone (each paper's claim).
//! * CosFace's and ArcFace's margins help: each verifies better than NormFace, the same
//!   normalised loss and scale without a margin (ArcFace's Table 2: Norm-Softmax 98.56 %,
//!   CosFace 99.51 %, ArcFace 99.53 %). NormFace against softmax gets no row: its paper reports a
//!   gain and ArcFace's Table 2 a loss, so no direction is the papers'.
//!
//! A claim whose two methods have all ten folds recorded keeps its verdict while other methods'
//! runs are still missing (the folds it pairs are all it reads).
//!
//! The board and the View 1 table that REPORT.md sets beside the claims are `board.rs`'s.

use std::collections::HashMap;

use anyhow::Result;

use super::board::{batches, board, view1_table};
use crate::experiments::faces::{accuracy_or_chance, fold_number, on_view1, published_context};
use crate::experiments::leaderboard::Method;
use crate::experiments::lfw_baselines;
use crate::experiments::published;
use crate::experiments::seeds::Seeded;
use crate::results::{Record, Store, Table};
use crate::verdict::{fmt_pct, or_na, Claim, Direction, Scale, Section, Verdict};

/// View 2's folds: a claim paired over fewer is waiting for runs.
const VIEW2_FOLDS: usize = 10;

/// Each baseline's View 2 accuracies as (fold 1-10, accuracy).
pub type Baselines = HashMap<String, Vec<(u64, f64)>>;

/// A method as a setting of [`Seeded`]: its place in [`Method::ALL`].
pub fn method_key(m: Method) -> f64 {
    Method::ALL.iter().position(|x| *x == m).expect("every method is in ALL") as f64
}

pub(super) fn method_of(r: &Record) -> Option<Method> {
    let name = r.str("method").ok().flatten()?;
    Method::ALL.into_iter().find(|m| m.name() == name)
}

/// View 1's test accuracy of `method`'s runs per value of `key`, paired by seed.
pub fn view1_of(runs: &Table, method: Method, key: &str) -> Result<Seeded> {
    let mine = runs.records().filter(|r| on_view1(r) && method_of(r) == Some(method));
    Seeded::collect(mine, |r| r.f64(key), accuracy_or_chance)
}

/// View 2's test accuracy per method ([`method_key`]), the folds as replicates.
pub fn view2_by_method(runs: &Table) -> Result<Seeded> {
    let view2 = runs.records().filter(|r| !on_view1(r));
    Seeded::collect_by(view2, |r| Ok(method_of(r).map(method_key)), fold_number, accuracy_or_chance)
}

/// lfw-baselines' View 2 folds, numbered 1-10 as ours are (empty before it has run).
pub fn baselines(store: &Store) -> Result<Baselines> {
    let results_dir = store.results_dir();
    let other = Store::new(results_dir, "lfw-baselines");
    if !other.path("runs").exists() {
        return Ok(Baselines::new());
    }
    let mut by = lfw_baselines::claims::view2_by_method(&other.current_runs()?, &other.load("folds")?)?;
    for folds in by.values_mut() {
        folds.iter_mut().for_each(|(k, _)| *k += 1);
    }
    Ok(by)
}

/// What a method adds to softmax, for a claim row, and what its paper reports.
fn extension(m: Method) -> (&'static str, String) {
    match m {
        Method::Contrastive => (
            "the contrastive verification term (DeepID2)",
            "DeepID2: identification + verification beats identification alone (Fig. 3; values not retrieved)".into(),
        ),
        Method::Center => (
            "the center loss",
            "LFW with outside data: softmax 97.37 % → softmax + center loss 99.28 % (models A and C, Table 2)".into(),
        ),
        Method::Lsoftmax => (
            "L-Softmax's angular margin",
            "better than softmax on every benchmark it reports; LFW 98.71 % (WebFace; a survey's table, not checked)"
                .into(),
        ),
        Method::SphereFace => (
            "SphereFace's multiplicative angular margin",
            format!("{}; {}", published::table2_over_softmax(published::TABLE2_SPHEREFACE), published::SPHEREFACE_OWN),
        ),
        Method::CosFace => (
            "CosFace's cosine margin",
            format!("{}; {}", published::table2_over_softmax(published::TABLE2_COSFACE), published::COSFACE_OWN),
        ),
        Method::ArcFace => {
            ("ArcFace's additive angular margin", published::table2_over_softmax(published::TABLE2_ARCFACE))
        }
        Method::Softmax | Method::Triplet | Method::NormFace => ("", String::new()),
    }
}

pub fn extension_beats_softmax(acc: &Seeded, method: Method) -> Claim {
    let (adds, paper) = extension(method);
    let change = acc.paired(method_key(Method::Softmax), method_key(method));
    let test = "paired by fold, t interval";
    Claim::new(
        format!("On View 2, {adds} verifies better than softmax alone"),
        paper,
        format!(
            "softmax {} vs {} {} (means over folds); {}",
            or_na(acc.mean(method_key(Method::Softmax)), fmt_pct),
            method.name(),
            or_na(acc.mean(method_key(method)), fmt_pct),
            change.text_over(&format!("softmax → {}", method.name()), Scale::Points, test, "fold")
        ),
        Verdict::of_effect(change.interval.as_ref(), Direction::Up, 0.0),
    )
    .own_runs_recorded(change.seeds == VIEW2_FOLDS)
}

/// A margin on the normalised loss helps: `method` − NormFace (same s, no margin), paired by fold.
pub fn margin_beats_normface(acc: &Seeded, method: Method) -> Claim {
    let change = acc.paired(method_key(Method::NormFace), method_key(method));
    Claim::new(
        format!(
            "On View 2, {}'s margin verifies better than NormFace (the same loss and s, no margin)",
            method.loss_name()
        ),
        published::table2_margins_over_norm_softmax(),
        format!(
            "NormFace {} vs {} {} (means over folds); {}",
            or_na(acc.mean(method_key(Method::NormFace)), fmt_pct),
            method.name(),
            or_na(acc.mean(method_key(method)), fmt_pct),
            change.text_over(
                &format!("normface → {}", method.name()),
                Scale::Points,
                "paired by fold, t interval",
                "fold"
            )
        ),
        Verdict::of_effect(change.interval.as_ref(), Direction::Up, 0.0),
    )
    .own_runs_recorded(change.seeds == VIEW2_FOLDS)
}

pub fn softmax_beats_lbp(acc: &Seeded, baselines: &Baselines) -> Claim {
    let lbp = baselines.get(lfw_baselines::Method::Lbp.name()).cloned().unwrap_or_default();
    let softmax = acc.seeds(method_key(Method::Softmax));
    let differences: Vec<f64> = crate::stats::paired_differences(&lbp, softmax).into_iter().map(|(_, d)| d).collect();
    let change = crate::experiments::seeds::Comparison {
        interval: crate::stats::t_interval(&differences),
        seeds: differences.len(),
    };
    Claim::new(
        "A face CNN trained on LFW alone (softmax) verifies better than uniform-LBP histograms",
        "LFW results page: learned features above the LBP family (78.47 %, funneled); not our pipeline",
        change.text_over("LBP → softmax", Scale::Points, "paired by fold, t interval", "fold"),
        Verdict::of_effect(change.interval.as_ref(), Direction::Up, 0.0),
    )
    .own_runs_recorded(change.seeds == VIEW2_FOLDS)
}

pub fn claims(runs: &Table, baselines: &Baselines) -> Result<Vec<Claim>> {
    let acc = view2_by_method(runs)?;
    let extensions =
        [Method::Contrastive, Method::Center, Method::Lsoftmax, Method::SphereFace, Method::CosFace, Method::ArcFace];
    let mut claims: Vec<Claim> = extensions.into_iter().map(|m| extension_beats_softmax(&acc, m)).collect();
    claims.extend([Method::CosFace, Method::ArcFace].map(|m| margin_beats_normface(&acc, m)));
    claims.push(softmax_beats_lbp(&acc, baselines));
    Ok(claims)
}

pub fn section(runs: &Table, baselines: &Baselines) -> Result<Option<Section>> {
    let Some(first) = runs.records().next() else { return Ok(None) };
    Ok(Some(Section {
        title: "LFW leaderboard: every loss on View 2, one face backbone and budget, beside pixels and LBP".into(),
        claims: claims(runs, baselines)?,
        body: format!(
            "{board}\n![leaderboard-lfw](leaderboard-lfw/board.png)\n\n\
             **Settings chosen on View 1** (over seeds; DeepID2's λ comes from deepid2-lfw's View 1 sweep):\n\n\
             {view1}\n\
             **Protocol.** LFW's own: each View 2 fold trains on the other nine folds' people, takes its threshold \
             from their pairs and is scored on its 600 pairs; the folds are the replicates. Every method has the \
             face backbone ({side}×{side}, width {w}, {d}-D feature), {steps} steps of {b} images and the same \
             augmentation; features are compared by the cosine of flip-averaged features. {batches} Runs that deepid2-lfw or facenet-lfw also plan are \
             trained once and shared. L-Softmax's successors train with the fc feature batch-normalised and \
             the gradients' global norm clipped at 5, as the MNIST family's normalised losses do (without them \
             the features shrink to zero norm or the class weights settle on one direction), at s = 30 (CosFace's \
             bound for our ~1,700 people is 14; the papers' 64 serves 512-D features and 10k people); SphereFace's \
             λ follows the authors' γ = 0.12 per iteration unscaled (λ = 1000/(1 + 0.12·t), 5.5 at step 1,500): rescaled to the run, the \
             features collapsed in a trial (experiments/leaderboard_lfw/margins.rs gives the trials). \
             **Deviations.** Every paper trained on outside data (CelebFaces+, CASIA-WebFace, \
             200 M faces) with far larger networks; here only LFW's own training folds, at {side}×{side}, for \
             minutes of CPU.\n{context}",
            board = board(runs, baselines)?,
            batches = batches(runs),
            view1 = view1_table(runs)?,
            side = first.num("input_side")?,
            w = first.num("width")?,
            d = first.num("feature_dim")?,
            steps = first.num("iterations")?,
            b = first.num("batch_size")?,
            context = published_context(),
        ),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::{Cell, Row};

    const FOLDS: [&str; 10] =
        ["fold1", "fold2", "fold3", "fold4", "fold5", "fold6", "fold7", "fold8", "fold9", "fold10"];

    fn row(method: Method, split: &str, status: &str, accuracy: f64) -> Row {
        vec![
            ("run_id".to_string(), Cell::Str(format!("method={},split={split}", method.name()))),
            ("status".into(), status.into()),
            ("seed".into(), 1u64.into()),
            ("split".into(), split.into()),
            ("method".into(), method.name().into()),
            ("test_accuracy".into(), accuracy.into()),
            ("val_at_far_1e-2".into(), 0.3.into()),
            ("input_side".into(), 32u64.into()),
            ("width".into(), 1.0.into()),
            ("feature_dim".into(), 128u64.into()),
            ("iterations".into(), 1500u64.into()),
            ("batch_size".into(), 128u64.into()),
        ]
    }

    /// Ten folds of `method` around `level`, fold k offset by `spread`·(k − 4.5)/4.5 (shared by
    /// every method, as real folds differ in difficulty) plus `jitter` on odd folds.
    fn folds(method: Method, level: f64, jitter: f64) -> Vec<Row> {
        FOLDS
            .iter()
            .enumerate()
            .map(|(k, f)| row(method, f, "finished", level + 0.02 * (k as f64 - 4.5) / 4.5 + jitter * (k % 2) as f64))
            .collect()
    }

    fn lbp(level: f64) -> Baselines {
        let folds = (1..=10u64).map(|k| (k, level + 0.02 * (k as f64 - 5.5) / 4.5)).collect();
        [("lbp".to_string(), folds)].into_iter().collect()
    }

    #[test]
    fn an_extension_beats_softmax_only_when_the_interval_over_folds_excludes_zero() {
        let mut rows = folds(Method::Softmax, 0.80, 0.0);
        rows.extend(folds(Method::Contrastive, 0.83, 0.004));
        rows.extend(folds(Method::Center, 0.80, 0.02).into_iter().enumerate().map(|(k, mut r)| {
            // Alternating ±: no direction.
            if k % 2 == 0 {
                r[5].1 = (0.80 + 0.02 * (k as f64 - 4.5) / 4.5 - 0.02).into();
            }
            r
        }));
        rows.extend(folds(Method::Lsoftmax, 0.76, 0.003));
        let acc = view2_by_method(&Table::new("hand-made", rows)).unwrap();
        let contrastive = extension_beats_softmax(&acc, Method::Contrastive);
        assert_eq!(contrastive.verdict, Verdict::Reproduced, "{}", contrastive.ours);
        assert!(contrastive.ours.contains("over 10 folds"), "{}", contrastive.ours);
        assert_eq!(extension_beats_softmax(&acc, Method::Center).verdict, Verdict::Inconclusive);
        assert_eq!(extension_beats_softmax(&acc, Method::Lsoftmax).verdict, Verdict::NotReproduced);
        assert_eq!(contrastive.own_runs_recorded, Some(true), "all ten folds of both");
    }

    #[test]
    fn a_claim_paired_over_fewer_than_ten_folds_waits_for_its_runs() {
        let mut rows = folds(Method::Softmax, 0.80, 0.0);
        rows.extend(folds(Method::CosFace, 0.85, 0.004).into_iter().take(7));
        let acc = view2_by_method(&Table::new("hand-made", rows)).unwrap();
        let cosface = extension_beats_softmax(&acc, Method::CosFace);
        assert_eq!(cosface.verdict, Verdict::Reproduced, "seven folds already give an interval");
        assert_eq!(cosface.own_runs_recorded, Some(false));
        assert_eq!(margin_beats_normface(&acc, Method::CosFace).own_runs_recorded, Some(false), "no NormFace fold");
    }

    #[test]
    fn a_diverged_fold_counts_at_chance_and_view1_runs_are_not_folds() {
        let mut rows = folds(Method::Softmax, 0.80, 0.0);
        let mut center = folds(Method::Center, 0.81, 0.0);
        center[3] = row(Method::Center, "fold4", "diverged", f64::NAN);
        rows.extend(center);
        rows.push(row(Method::Center, "view1", "finished", 0.99));
        let acc = view2_by_method(&Table::new("hand-made", rows)).unwrap();
        let center = acc.seeds(method_key(Method::Center));
        assert_eq!(center.len(), 10, "View 1's run is not a fold");
        assert_eq!(center[3], (4, 0.5));
    }

    #[test]
    fn softmax_against_lbp_pairs_fold_k_with_lbp_fold_k() {
        let rows = folds(Method::Softmax, 0.80, 0.002);
        let acc = view2_by_method(&Table::new("hand-made", rows)).unwrap();
        let claim = softmax_beats_lbp(&acc, &lbp(0.72));
        assert_eq!(claim.verdict, Verdict::Reproduced, "{}", claim.ours);
        assert!(claim.ours.contains("+8.1"), "LBP's fold k pairs with ours: {}", claim.ours);
        assert_eq!(softmax_beats_lbp(&acc, &lbp(0.85)).verdict, Verdict::NotReproduced);
        assert_eq!(softmax_beats_lbp(&acc, &Baselines::new()).verdict, Verdict::Inconclusive);
    }

    #[test]
    fn the_board_gives_every_method_and_baseline_its_folds_mean_std_and_standard_error() {
        let mut rows = folds(Method::Softmax, 0.80, 0.0);
        let mut view1 = row(Method::Center, "view1", "finished", 0.70);
        view1.push(("center_lambda".into(), 0.01.into()));
        rows.push(view1);
        let runs = Table::new("hand-made", rows);
        let board = board(&runs, &lbp(0.72)).unwrap();
        assert!(board.contains("| softmax | — | 10 | 80.00% ± 1.35% | 0.43% | 30.00% |"), "{board}");
        assert!(board.contains("| lbp (lfw-baselines) | nothing trained | 10 | 72.00% ±"), "{board}");
        assert!(board.contains("| L-Softmax | — | 0 | — | — | n/a |"), "{board}");
        let section = section(&runs, &lbp(0.72)).unwrap().unwrap();
        assert_eq!(section.claims.len(), 9);
        assert!(section.body.contains("| center | λ = 0.01 | 1 | 70.00% | — |"), "{}", section.body);
    }

    #[test]
    fn a_margin_beats_normface_only_when_the_interval_over_folds_excludes_zero() {
        let mut rows = folds(Method::NormFace, 0.80, 0.0);
        rows.extend(folds(Method::CosFace, 0.82, 0.004));
        rows.extend(folds(Method::ArcFace, 0.77, 0.002));
        let acc = view2_by_method(&Table::new("hand-made", rows.clone())).unwrap();
        let cosface = margin_beats_normface(&acc, Method::CosFace);
        assert_eq!(cosface.verdict, Verdict::Reproduced, "{}", cosface.ours);
        assert!(cosface.ours.contains("normface → cosface"), "{}", cosface.ours);
        assert_eq!(margin_beats_normface(&acc, Method::ArcFace).verdict, Verdict::NotReproduced);
        // No run of the margin at all: the data cannot tell.
        let only_normface = view2_by_method(&Table::new("hand-made", folds(Method::NormFace, 0.8, 0.0))).unwrap();
        assert_eq!(margin_beats_normface(&only_normface, Method::CosFace).verdict, Verdict::Inconclusive);
        // Alternating ± around NormFace: no direction.
        let mut mixed = folds(Method::NormFace, 0.80, 0.0);
        mixed.extend(folds(Method::ArcFace, 0.80, 0.0).into_iter().enumerate().map(|(k, mut r)| {
            let sign = if k % 2 == 0 { 1.0 } else { -1.0 };
            r[5].1 = (0.80 + 0.02 * (k as f64 - 4.5) / 4.5 + 0.02 * sign).into();
            r
        }));
        let acc = view2_by_method(&Table::new("hand-made", mixed)).unwrap();
        assert_eq!(margin_beats_normface(&acc, Method::ArcFace).verdict, Verdict::Inconclusive);
    }

    #[test]
    fn each_successor_is_compared_with_softmax_by_the_same_paired_rule() {
        let mut rows = folds(Method::Softmax, 0.80, 0.0);
        rows.extend(folds(Method::SphereFace, 0.83, 0.004));
        let acc = view2_by_method(&Table::new("hand-made", rows)).unwrap();
        let claim = extension_beats_softmax(&acc, Method::SphereFace);
        assert_eq!(claim.verdict, Verdict::Reproduced, "{}", claim.ours);
        assert!(claim.paper.contains("99.11"), "ArcFace's Table 2 beside ours: {}", claim.paper);
        assert_eq!(extension_beats_softmax(&acc, Method::ArcFace).verdict, Verdict::Inconclusive);
    }
}
