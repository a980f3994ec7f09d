//! What `facenet` claims, as rules from its recorded runs to claim rows: semi-hard against the
//! hardest negatives, the collapse, and VAL over the embedding dimension (Table 5).

use anyhow::Result;

use crate::losses::Mining;
use crate::results::{Cell, Record, Store, Table, STATUS_COLLAPSED};
use crate::verdict::{fmt_pct, or_na, Claim, Section, Verdict};

/// FaceNet's Table 5: VAL at FAR = 1e-3 (%) of NN1 by embedding dimension.
pub const PAPER_TABLE5: [(f64, f64); 4] = [(64.0, 86.8), (128.0, 87.9), (256.0, 87.7), (512.0, 85.6)];

const VAL: &str = "held_out_val_at_far_1e-3";

/// The runs the claims read: the default-dimension run of each mining rule, and the semi-hard
/// run of each dimension (ascending).
pub struct Runs<'a> {
    pub by_mining: Vec<Record<'a>>,
    pub by_dim: Vec<Record<'a>>,
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
        Ok(Runs { by_mining, by_dim })
    }

    fn mining(&self, rule: &str) -> Result<Option<Record<'a>>> {
        for r in &self.by_mining {
            if r.str("mining")? == Some(rule) {
                return Ok(Some(*r));
            }
        }
        Ok(None)
    }

    /// (dimension, held-out VAL@1e-3) of the semi-hard runs that have both.
    pub fn val_by_dim(&self) -> Result<Vec<(f64, f64)>> {
        let mut out = Vec::new();
        for r in &self.by_dim {
            if let (Some(d), Some(v)) = (r.f64("feature_dim")?, r.f64(VAL)?) {
                out.push((d, v));
            }
        }
        Ok(out)
    }
}

/// Semi-hard mining reaches a higher held-out VAL@1e-3 than the hardest negatives (or the
/// hardest-negative run ended without an embedding to verify with).
pub fn semi_hard_beats_hardest(runs: &Runs) -> Result<Claim> {
    let hard_run = runs.mining("hardest_negative")?;
    let semi = match runs.mining("semi_hard")? {
        Some(r) => r.f64(VAL)?,
        None => None,
    };
    let hard = match hard_run {
        Some(r) => r.f64(VAL)?,
        None => None,
    };
    let verdict = match (semi, hard) {
        (Some(s), Some(h)) if s > h => Verdict::Reproduced,
        (Some(_), Some(_)) => Verdict::NotReproduced,
        (Some(_), None) if hard_run.is_some() => Verdict::Reproduced,
        _ => Verdict::NotReproduced,
    };
    Ok(Claim::new(
        "Semi-hard negatives train better than the hardest negatives (held-out VAL at FAR = 1e-3)",
        "hardest negatives \"can lead to bad local minima early on\"",
        format!("semi-hard {} vs hardest-negative {}", or_na(semi, fmt_pct), or_na(hard, fmt_pct)),
        verdict,
    ))
}

/// The hardest-negative run collapsed (partly: its embeddings came within half the semi-hard
/// run's smallest spread).
pub fn hardest_collapses(runs: &Runs) -> Result<Claim> {
    let hard_run = runs.mining("hardest_negative")?;
    let status = match hard_run {
        Some(r) => r.status()?,
        None => "n/a",
    };
    let min =
        |r: Option<Record>| -> Result<Option<f64>> { r.map_or(Ok(None), |r| r.f64("min_mean_pairwise_distance")) };
    let (hard_min, semi_min) = (min(hard_run)?, min(runs.mining("semi_hard")?)?);
    let verdict = if status == STATUS_COLLAPSED {
        Verdict::Reproduced
    } else if hard_min.zip(semi_min).is_some_and(|(h, s)| h < 0.5 * s) {
        Verdict::Partly
    } else {
        Verdict::NotReproduced
    };
    Ok(Claim::new(
        "Hardest-negative mining can collapse the embedding (f(x) → constant)",
        "Sec. 3.2 (no numbers)",
        format!(
            "hardest-negative run: {status}; smallest mean pairwise d² during training {} (semi-hard: {})",
            or_na(hard_min, |v| format!("{v:.3}")),
            or_na(semi_min, |v| format!("{v:.3}"))
        ),
        verdict,
    ))
}

/// VAL@1e-3 from 32-D up varies by at most 5% of its best (partly: 15%).
pub fn flat_over_dimension(runs: &Runs) -> Result<Claim> {
    let dims = runs.val_by_dim()?;
    let wide: Vec<f64> = dims.iter().filter(|(d, _)| *d >= 32.0).map(|(_, v)| *v).collect();
    // Relative spread over dimensions ≥ 32 (Table 5 varies by 2.6% of its best value).
    let best = wide.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let spread = (best - wide.iter().copied().fold(f64::INFINITY, f64::min)) / best;
    let verdict = if wide.len() >= 2 && spread <= 0.05 {
        Verdict::Reproduced
    } else if wide.len() >= 2 && spread <= 0.15 {
        Verdict::Partly
    } else {
        Verdict::NotReproduced
    };
    Ok(Claim::new(
        "VAL@1e-3 is nearly flat over the embedding dimension (within 5% of the best from 32-D up)",
        "Table 5: 86.8 / 87.9 / 87.7 / 85.6 % at 64 / 128 / 256 / 512",
        dims.iter().map(|(d, v)| format!("{d}: {}", fmt_pct(*v))).collect::<Vec<_>>().join(", "),
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
    let mut table = String::from(
        "| mining | dim | status | held-out VAL@1e-3 | VAL@1e-2 | 10-fold accuracy | precision@1 | MAP@R \
         | final / min mean pairwise d² |\n|---|---|---|---|---|---|---|---|---|\n",
    );
    let shown_ids: Vec<&str> = runs.by_mining.iter().filter_map(|r| r.run_id().ok()).collect();
    let extra = runs.by_dim.iter().filter(|r| r.run_id().is_ok_and(|id| !shown_ids.contains(&id)));
    for r in runs.by_mining.iter().chain(extra) {
        let shown = |c: &str, f: &dyn Fn(f64) -> String| crate::experiments::setup::shown(*r, c, f);
        let d3 = |v: f64| format!("{v:.3}");
        table.push_str(&format!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {} / {} |\n",
            r.str("mining")?.unwrap_or_default(),
            r.f64("feature_dim")?.unwrap_or(f64::NAN),
            r.status()?,
            shown(VAL, &fmt_pct)?,
            shown("held_out_val_at_far_1e-2", &fmt_pct)?,
            shown("held_out_balanced_verification_accuracy", &fmt_pct)?,
            shown("precision_at_1", &fmt_pct)?,
            shown("map_at_r", &fmt_pct)?,
            shown("final_mean_pairwise_distance", &d3)?,
            shown("min_mean_pairwise_distance", &d3)?,
        ));
    }
    Ok(Some(Section {
        title: "FaceNet (Schroff et al., CVPR 2015): triplet loss and mining".into(),
        claims: vec![semi_hard_beats_hardest(&runs)?, hardest_collapses(&runs)?, flat_over_dimension(&runs)?],
        body: format!(
            "{table}\n![ROC](facenet/roc.png)\n\n![collapse](facenet/collapse.png)\n\n![dimension](facenet/dimension.png)\n\n\
             **Deviations.** Identities are digits (train 0-6, test 7-9) and the network is LeNets++ (width {w}) with an \
             L2-normalised embedding (the paper: Inception-style nets on 260M face images). Batches hold {k} digits × {per} \
             images (the paper: ~40 faces per identity in batches of ~1,800). SGD with momentum (lr {lr}) instead of \
             AdaGrad. Semi-hard is TF-Addons' batch rule (the closest negative farther than the positive, else the farthest \
             negative), used for every ordered positive pair. VAL is measured on all pairs of {n} held-out test images with \
             the threshold chosen on nine folds (FaceNet: 5 splits of 100k×100k pairs).\n",
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

    /// A runs table: (mining, dimension, status, VAL@1e-3, smallest mean pairwise d²) per run.
    fn runs(rows: &[(&str, f64, &str, Option<f64>, f64)]) -> Table {
        let rows: Vec<Row> = rows
            .iter()
            .map(|&(mining, dim, status, val, spread)| {
                vec![
                    ("run_id".to_string(), Cell::Str(format!("{mining}-{dim}"))),
                    ("status".into(), status.into()),
                    ("mining".into(), mining.into()),
                    ("feature_dim".into(), dim.into()),
                    (VAL.into(), val.map_or(Cell::Null, Cell::F64)),
                    ("min_mean_pairwise_distance".into(), spread.into()),
                ]
            })
            .collect();
        Table::new("a hand-made facenet table", rows)
    }

    #[test]
    fn semi_hard_must_beat_the_hardest_negatives() {
        let t = runs(&[
            ("semi_hard", 64.0, "finished", Some(0.3), 1.0),
            ("hardest_negative", 64.0, "collapsed", Some(0.1), 0.01),
        ]);
        let r = Runs::of(&t).unwrap();
        assert_eq!(semi_hard_beats_hardest(&r).unwrap().verdict, Verdict::Reproduced);
        assert_eq!(hardest_collapses(&r).unwrap().verdict, Verdict::Reproduced);
        let t = runs(&[
            ("semi_hard", 64.0, "finished", Some(0.1), 1.0),
            ("hardest_negative", 64.0, "finished", Some(0.3), 0.8),
        ]);
        let r = Runs::of(&t).unwrap();
        assert_eq!(semi_hard_beats_hardest(&r).unwrap().verdict, Verdict::NotReproduced);
        assert_eq!(hardest_collapses(&r).unwrap().verdict, Verdict::NotReproduced);
        let t =
            runs(&[("semi_hard", 64.0, "finished", Some(0.1), 1.0), ("hardest_negative", 64.0, "diverged", None, 0.4)]);
        let r = Runs::of(&t).unwrap();
        assert_eq!(semi_hard_beats_hardest(&r).unwrap().verdict, Verdict::Reproduced, "no embedding to verify with");
        assert_eq!(hardest_collapses(&r).unwrap().verdict, Verdict::Partly, "within half the semi-hard spread");
    }

    #[test]
    fn val_must_stay_within_5_percent_of_its_best_from_32_d_up() {
        let flat = runs(&[
            ("semi_hard", 16.0, "finished", Some(0.05), 1.0),
            ("semi_hard", 32.0, "finished", Some(0.50), 1.0),
            ("semi_hard", 64.0, "finished", Some(0.49), 1.0),
        ]);
        let c = flat_over_dimension(&Runs::of(&flat).unwrap()).unwrap();
        assert_eq!((c.verdict, c.ours.as_str()), (Verdict::Reproduced, "16: 5.00%, 32: 50.00%, 64: 49.00%"));
        let tilted =
            runs(&[("semi_hard", 32.0, "finished", Some(0.50), 1.0), ("semi_hard", 64.0, "finished", Some(0.45), 1.0)]);
        assert_eq!(flat_over_dimension(&Runs::of(&tilted).unwrap()).unwrap().verdict, Verdict::Partly);
        let steep =
            runs(&[("semi_hard", 64.0, "finished", Some(0.50), 1.0), ("semi_hard", 32.0, "finished", Some(0.20), 1.0)]);
        assert_eq!(flat_over_dimension(&Runs::of(&steep).unwrap()).unwrap().verdict, Verdict::NotReproduced);
    }
}
