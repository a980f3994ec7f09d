//! What `facenet` claims, as rules from its recorded runs to claim rows: semi-hard against the
//! hardest negatives, the collapse, and VAL over the embedding dimension (Table 5).

use anyhow::Result;

use crate::experiments::seeds::{Seeded, PAIRED};
use crate::experiments::setup::folds_in_words;
use crate::losses::Mining;
use crate::results::{Cell, Record, Store, Table, STATUS_COLLAPSED};
use crate::verdict::{fmt_pct, of_occurrence, or_na, Claim, Direction, Scale, Section, Verdict};

/// FaceNet's Table 5: VAL at FAR = 1e-3 (%) of NN1 by embedding dimension.
pub const PAPER_TABLE5: [(f64, f64); 4] = [(64.0, 86.8), (128.0, 87.9), (256.0, 87.7), (512.0, 85.6)];

pub(super) const VAL: &str = "held_out_val_at_far_1e-3";

/// The runs the claims read: the default-dimension run of each mining rule, and the semi-hard
/// run of each dimension (ascending).
pub struct Runs<'a> {
    pub by_mining: Vec<Record<'a>>,
    pub by_dim: Vec<Record<'a>>,
    /// Every seed's run at the default dimension, of every mining rule.
    pub default_dim: Vec<Record<'a>>,
}

impl<'a> Runs<'a> {
    pub fn of(runs: &'a Table) -> Result<Runs<'a>> {
        let mut default_dim = 64.0;
        for r in runs.records() {
            if r.str("mining")? != Some("semi_hard") {
                if let Some(d) = r.f64("feature_dim")? {
                    default_dim = d;
                    break;
                }
            }
        }
        let mut default_dim_runs = Vec::new();
        for r in runs.records() {
            if r.f64("feature_dim")? == Some(default_dim) {
                default_dim_runs.push(r);
            }
        }
        let mut by_mining = Vec::new();
        for m in Mining::ALL {
            for r in runs.records() {
                if r.str("mining")? == Some(m.name()) && r.f64("feature_dim")? == Some(default_dim) {
                    by_mining.push(r);
                    break;
                }
            }
        }
        let mut by_dim = Vec::new();
        for r in runs.records() {
            if r.str("mining")? == Some("semi_hard") {
                by_dim.push((r.f64("feature_dim")?.unwrap_or(0.0), r));
            }
        }
        by_dim.sort_by(|a, b| a.0.total_cmp(&b.0));
        let by_dim = by_dim.into_iter().map(|(_, r)| r).collect();
        Ok(Runs { by_mining, by_dim, default_dim: default_dim_runs })
    }

    /// Held-out VAL@1e-3 of the finished semi-hard runs, per dimension and seed.
    pub fn val_seeded(&self) -> Result<Seeded> {
        Seeded::collect(
            self.by_dim.iter().copied(),
            |r| r.f64("feature_dim"),
            |r| Ok(if r.finished()? { r.f64(VAL)? } else { None }),
        )
    }
}

/// The equivalence margin of "flat over the embedding dimension": 5 % of the best dimension's
/// mean VAL (Table 5 varies by 2.6 % of its best).
pub const FLAT_MARGIN: f64 = 0.05;

/// VAL of a run for the mining comparison: its recorded VAL, or 0 for a run that ended without an
/// embedding to verify with (collapsed or diverged: it accepts no pair at FAR = 1e-3).
fn val_or_zero(r: &Record) -> Result<Option<f64>> {
    Ok(Some(r.f64(VAL)?.filter(|v| v.is_finite()).unwrap_or(0.0)))
}

/// The default-dimension runs of two mining rules, as settings 0 (`from`) and 1 (`to`).
fn mining_pair(runs: &Runs, from: &str, to: &str) -> Result<Seeded> {
    Seeded::collect(
        runs.default_dim.iter().copied(),
        |r| {
            Ok(match r.str("mining")? {
                Some(m) if m == from => Some(0.0),
                Some(m) if m == to => Some(1.0),
                _ => None,
            })
        },
        val_or_zero,
    )
}

/// Semi-hard mining reaches a higher held-out VAL@1e-3 than the hardest negatives, on the paired
/// difference over seeds (a run without an embedding scores VAL 0).
pub fn semi_hard_beats_hardest(runs: &Runs) -> Result<Claim> {
    let pair = mining_pair(runs, "hardest_negative", "semi_hard")?;
    let change = pair.paired(0.0, 1.0);
    Ok(Claim::new(
        "Semi-hard negatives train better than the hardest negatives (held-out VAL at FAR = 1e-3)",
        "hardest negatives \"can lead to bad local minima early on\"",
        format!(
            "semi-hard {} vs hardest-negative {} (means); {}",
            or_na(pair.mean(1.0), fmt_pct),
            or_na(pair.mean(0.0), fmt_pct),
            change.text("hardest → semi-hard", Scale::Points, PAIRED)
        ),
        Verdict::of_effect(change.interval.as_ref(), Direction::Up, 0.0),
    ))
}

/// "Can collapse" is a claim that it happens at all: reproduced when at least one
/// hardest-negative seed collapsed among at least three; with none collapsed it stays
/// inconclusive (a rare collapse is not ruled out) and the row gives the rate's 95 % upper bound.
pub fn hardest_collapses(runs: &Runs) -> Result<Claim> {
    let hard: Vec<Record> = runs
        .default_dim
        .iter()
        .copied()
        .filter(|r| r.str("mining").ok().flatten() == Some("hardest_negative"))
        .collect();
    let mut collapsed = 0;
    for r in &hard {
        collapsed += usize::from(r.status()? == STATUS_COLLAPSED);
    }
    let (verdict, count) = of_occurrence(collapsed, hard.len(), "hardest-negative seeds collapsed");
    let spread = Seeded::collect(hard.iter().copied(), |_| Ok(Some(0.0)), |r| r.f64("min_mean_pairwise_distance"))?;
    Ok(Claim::new(
        "Hardest-negative mining can collapse the embedding (f(x) → constant)",
        "Sec. 3.2 (no numbers)",
        format!(
            "{count}; smallest mean pairwise d² during training, mean over seeds {}",
            or_na(spread.mean(0.0), |v| format!("{v:.3}"))
        ),
        verdict,
    ))
}

/// VAL@1e-3 is flat from 32-D up: an equivalence test of every dimension against the dimension
/// with the best mean, on paired differences, with a margin of [`FLAT_MARGIN`] of that mean.
pub fn flat_over_dimension(runs: &Runs) -> Result<Claim> {
    let val = Seeded::collect(
        runs.by_dim.iter().copied(),
        |r| r.f64("feature_dim"),
        |r| Ok(if r.finished()? { r.f64(VAL)? } else { None }),
    )?;
    let wide: Vec<f64> = val.settings.iter().map(|s| s.value).filter(|d| *d >= 32.0).collect();
    let best = wide.iter().filter_map(|&d| val.mean(d).map(|m| (d, m))).fold(None, |b: Option<(f64, f64)>, (d, m)| {
        if b.is_none_or(|b| m > b.1) {
            Some((d, m))
        } else {
            b
        }
    });
    let means = val
        .settings
        .iter()
        .map(|s| format!("{}: {}", s.value, or_na(val.mean(s.value), fmt_pct)))
        .collect::<Vec<_>>()
        .join(", ");
    let (tests, verdict) = match best {
        Some((best_dim, best_mean)) if wide.len() >= 2 => {
            let margin = FLAT_MARGIN * best_mean;
            let others: Vec<f64> = wide.iter().copied().filter(|d| *d != best_dim).collect();
            let comparisons: Vec<_> = others.iter().map(|&d| (d, val.paired(best_dim, d))).collect();
            let verdicts: Vec<Verdict> =
                comparisons.iter().map(|(_, c)| Verdict::of_equivalence(c.interval.as_ref(), margin)).collect();
            let text = comparisons
                .iter()
                .map(|(d, c)| c.text(&format!("{best_dim} → {d}"), Scale::Points, PAIRED))
                .collect::<Vec<_>>()
                .join("; ");
            (format!("; margin ±{:.2} pt; {text}", 100.0 * margin), Verdict::all(&verdicts))
        }
        _ => (String::new(), Verdict::Inconclusive),
    };
    Ok(Claim::new(
        "VAL@1e-3 is nearly flat over the embedding dimension (every dimension from 32-D up within ±5 % of the best, an equivalence test)",
        "Table 5: 86.8 / 87.9 / 87.7 / 85.6 % at 64 / 128 / 256 / 512",
        format!("means {means}{tests}"),
        verdict,
    ))
}

/// Our held-out VAL@1e-3 per embedding dimension beside FaceNet's Table 5.
pub fn dimension_table(store: &Store) -> Result<polars::prelude::DataFrame> {
    let current = store.current_runs()?;
    let runs = Runs::of(&current)?;
    let mut dims: Vec<f64> = runs.by_dim.iter().filter_map(|r| r.f64("feature_dim").ok().flatten()).collect();
    dims.extend(PAPER_TABLE5.iter().map(|p| p.0));
    dims.sort_by(f64::total_cmp);
    dims.dedup();
    let mut rows = Vec::new();
    for &d in &dims {
        let ours = runs.by_dim.iter().find(|r| r.f64("feature_dim").ok().flatten() == Some(d));
        let percent = |column: &str| -> Result<Cell> {
            Ok(match ours {
                Some(r) => r.f64(column)?.map_or(Cell::Null, |v| Cell::F64(100.0 * v)),
                None => Cell::Null,
            })
        };
        rows.push(vec![
            ("embedding dimension".to_string(), Cell::I64(d as i64)),
            ("ours: VAL@1e-3, digits 7-9 (%)".to_string(), percent(VAL)?),
            ("ours: precision@1 (%)".to_string(), percent("precision_at_1")?),
            (
                "paper: VAL@1e-3, Table 5 (%)".to_string(),
                PAPER_TABLE5.iter().find(|p| p.0 == d).map_or(Cell::Null, |p| Cell::F64(p.1)),
            ),
        ]);
    }
    Table::new("facenet's dimension table", rows).to_frame()
}

pub fn section(current: &Table) -> Result<Option<Section>> {
    let runs = Runs::of(current)?;
    let Some(first) = runs.by_mining.first().or(runs.by_dim.first()).copied() else { return Ok(None) };
    let table = super::table::runs_table(current)?;
    Ok(Some(Section {
        title: "FaceNet (Schroff et al., CVPR 2015): triplet loss and mining".into(),
        claims: vec![semi_hard_beats_hardest(&runs)?, hardest_collapses(&runs)?, flat_over_dimension(&runs)?],
        body: format!(
            "{table}\nThe table's means are over the runs that did not diverge, collapsed ones included (their \
             embeddings still verify); the dimension claim above uses the finished semi-hard runs only.\n\n\
             ![ROC](facenet/roc.png)\n\n![collapse](facenet/collapse.png)\n\n![dimension](facenet/dimension.png)\n\n\
             **Deviations.** Identities are digits (train 0-6, test 7-9) and the network is LeNets++ (width {w}) with an \
             L2-normalised embedding (the paper: Inception-style nets on 260M face images). Batches hold {k} digits × {per} \
             images (the paper: ~40 faces per identity in batches of ~1,800). SGD with momentum (lr {lr}) instead of \
             AdaGrad. Semi-hard is TF-Addons' batch rule (the closest negative farther than the positive, else the farthest \
             negative), used for every ordered positive pair. VAL is measured on all pairs of {n} held-out test images with \
             the threshold chosen on nine folds ({folds}; FaceNet: 5 splits of 100k×100k pairs).\n",
            folds = folds_in_words(first.str("verification_folds").ok().flatten()),
            w = first.num("width")?,
            k = first.num("classes_per_batch")?,
            per = first.num("batch_size")? / first.num("classes_per_batch")?,
            lr = first.num("base_lr")?,
            n = first.num("val_images")?,
        ),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::Row;

    /// One run: mining, dimension, seed, status, VAL@1e-3, smallest mean pairwise d².
    type Run<'a> = (&'a str, f64, u64, &'a str, Option<f64>, f64);

    /// A runs table.
    fn runs(rows: &[Run]) -> Table {
        let rows: Vec<Row> = rows
            .iter()
            .map(|&(mining, dim, seed, status, val, spread)| {
                vec![
                    ("run_id".to_string(), Cell::Str(format!("{mining}-{dim}-{seed}"))),
                    ("status".into(), status.into()),
                    ("seed".into(), seed.into()),
                    ("mining".into(), mining.into()),
                    ("feature_dim".into(), dim.into()),
                    (VAL.into(), val.map_or(Cell::Null, Cell::F64)),
                    ("min_mean_pairwise_distance".into(), spread.into()),
                ]
            })
            .collect();
        Table::new("a hand-made facenet table", rows)
    }

    /// Three seeds of each (mining, status, VAL) at 64-D, seed k adding `jitter[k]` to VAL.
    fn mining_runs(rules: &[(&str, &str, Option<f64>)]) -> Table {
        let jitter = [0.0, 0.02, -0.01];
        let mut rows = Vec::new();
        for &(mining, status, val) in rules {
            for (k, j) in jitter.iter().enumerate() {
                rows.push((mining, 64.0, k as u64 + 1, status, val.map(|v| v + j), 0.5));
            }
        }
        runs(&rows)
    }

    #[test]
    fn semi_hard_must_beat_the_hardest_negatives_over_seeds() {
        let t = mining_runs(&[("semi_hard", "finished", Some(0.3)), ("hardest_negative", "collapsed", Some(0.1))]);
        let r = Runs::of(&t).unwrap();
        assert_eq!(semi_hard_beats_hardest(&r).unwrap().verdict, Verdict::Reproduced);
        let collapse = hardest_collapses(&r).unwrap();
        assert_eq!(
            (collapse.verdict, collapse.ours.starts_with("3 of 3 hardest-negative seeds collapsed")),
            (Verdict::Reproduced, true)
        );
        let t = mining_runs(&[("semi_hard", "finished", Some(0.1)), ("hardest_negative", "finished", Some(0.3))]);
        let r = Runs::of(&t).unwrap();
        assert_eq!(semi_hard_beats_hardest(&r).unwrap().verdict, Verdict::NotReproduced);
        let none = hardest_collapses(&r).unwrap();
        assert_eq!(none.verdict, Verdict::Inconclusive, "no collapse in 3 seeds does not rule one out");
        assert!(none.ours.contains("rate ≤ 71 % at 95 %"), "{}", none.ours);
        // A hardest-negative run without an embedding verifies nothing: VAL 0.
        let t = mining_runs(&[("semi_hard", "finished", Some(0.1)), ("hardest_negative", "diverged", None)]);
        assert_eq!(semi_hard_beats_hardest(&Runs::of(&t).unwrap()).unwrap().verdict, Verdict::Reproduced);
        // One seed each: inconclusive whatever the values.
        let t = runs(&[
            ("semi_hard", 64.0, 1, "finished", Some(0.3), 1.0),
            ("hardest_negative", 64.0, 1, "collapsed", Some(0.1), 0.01),
        ]);
        let r = Runs::of(&t).unwrap();
        assert_eq!(
            (semi_hard_beats_hardest(&r).unwrap().verdict, hardest_collapses(&r).unwrap().verdict),
            (Verdict::Inconclusive, Verdict::Inconclusive)
        );
    }

    fn dims(per_dim: &[(f64, [f64; 3])]) -> Table {
        runs(
            &per_dim
                .iter()
                .flat_map(|(d, vals)| {
                    vals.iter()
                        .enumerate()
                        .map(move |(k, v)| ("semi_hard", *d, k as u64 + 1, "finished", Some(*v), 1.0))
                })
                .collect::<Vec<_>>(),
        )
    }

    #[test]
    fn flatness_is_an_equivalence_test_against_the_best_dimension() {
        let flat = dims(&[(16.0, [0.05, 0.06, 0.04]), (32.0, [0.50, 0.52, 0.49]), (64.0, [0.499, 0.517, 0.488])]);
        let c = flat_over_dimension(&Runs::of(&flat).unwrap()).unwrap();
        assert_eq!(c.verdict, Verdict::Reproduced, "{}", c.ours);
        assert!(c.ours.starts_with("means 16: 5.00%, 32: 50.33%, 64: 50.13%; margin ±2.52 pt"), "{}", c.ours);
        let steep = dims(&[(32.0, [0.20, 0.22, 0.19]), (64.0, [0.50, 0.52, 0.49])]);
        assert_eq!(flat_over_dimension(&Runs::of(&steep).unwrap()).unwrap().verdict, Verdict::NotReproduced);
        // Seeds that disagree by more than the margin: underpowered, not negative.
        let noisy = dims(&[(32.0, [0.40, 0.60, 0.50]), (64.0, [0.55, 0.45, 0.52])]);
        assert_eq!(flat_over_dimension(&Runs::of(&noisy).unwrap()).unwrap().verdict, Verdict::Inconclusive);
    }
}
