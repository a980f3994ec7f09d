//! The leaderboard's settings, chosen on a validation split of the training digits and never on
//! the digits they are scored on: every setting that a method has to choose (DeepID2's and
//! center loss's λ, the successors' margins) is swept over seeds on digits 0-4, scored on the
//! unseen digits 5-6, and the value with the best mean validation VAL@1e-3 is recorded as the
//! selection [`SELECTION`], which the board's runs (digits 0-6, scored on 7-9) read.

use std::path::Path;

use anyhow::Result;
use serde_json::{Map, Value};

use super::claims::{on_validation, Method, VAL};
use crate::experiments::seeds::Seeded;
use crate::experiments::Chosen;
use crate::results::{Record, Store, Table};

/// The settings chosen on the validation split.
pub const SELECTION: &str = "leaderboard-settings";

/// Which digits train a run and which score it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DigitSplit {
    /// The board: digits 0-6 train, the unseen 7-9 score.
    Test,
    /// Where settings are chosen: digits 0-4 train, the unseen 5-6 score (7-9 are never seen).
    Validation,
}

impl DigitSplit {
    pub fn train_digits(self) -> &'static [u8] {
        match self {
            DigitSplit::Test => &[0, 1, 2, 3, 4, 5, 6],
            DigitSplit::Validation => &[0, 1, 2, 3, 4],
        }
    }

    pub fn held_out_digits(self) -> &'static [u8] {
        match self {
            DigitSplit::Test => &[7, 8, 9],
            DigitSplit::Validation => &[5, 6],
        }
    }

    /// "0-6 → 7-9", for tables.
    pub fn words(self) -> String {
        let range = |d: &[u8]| format!("{}-{}", d[0], d[d.len() - 1]);
        format!("{} → {}", range(self.train_digits()), range(self.held_out_digits()))
    }
}

/// The weights tried for DeepID2's contrastive term and for the center loss: three decades that
/// hold the papers' values (0.05, 0.003-0.01) and the λ the board was first trained with.
pub const LAMBDAS: [f64; 3] = [1e-3, 1e-2, 0.1];

/// Each setting chosen on the validation split: the method, the config key its sweep varies
/// (the selection stores it under the same key) and the values tried. NormFace, softmax, the
/// triplet loss and L-Softmax (m = 4, the paper's MNIST setting) have nothing to choose.
pub fn chosen() -> [(Method, &'static str, Vec<Value>); 5] {
    use crate::experiments::hypersphere::{ARCFACE_MARGINS, COSFACE_MARGINS, SPHEREFACE_MARGINS};
    let values = |v: &[f64]| v.iter().map(|&x| Value::from(x)).collect();
    [
        (Method::Contrastive, "contrastive_lambda", values(&LAMBDAS)),
        (Method::Center, "center_lambda", values(&LAMBDAS)),
        (Method::SphereFace, "sphere_m", SPHEREFACE_MARGINS.iter().map(|&m| Value::from(m)).collect()),
        (Method::CosFace, "additive_margin", values(&COSFACE_MARGINS)),
        (Method::ArcFace, "additive_margin", values(&ARCFACE_MARGINS)),
    ]
}

/// The selection stored under `method`'s own name for a key two methods share.
pub fn selection_key(method: Method, key: &str) -> String {
    if key == "additive_margin" {
        format!("{}_margin", method.name())
    } else {
        key.to_string()
    }
}

/// `method`'s validation VAL@1e-3 by the value of `key`, over seeds (a run that did not finish
/// counts as VAL = 0, as a diverged model accepts no true pair at that FAR).
pub(super) fn validation_val(validation: &Table, method: Method, key: &str) -> Result<Seeded> {
    let mine = validation.filter(|r| Ok(r.str("method")? == Some(method.name())))?;
    let val = |r: &Record| Ok(if r.finished()? { r.f64(VAL)? } else { Some(0.0) });
    Seeded::collect(mine.records(), |r| r.f64(key), val)
}

/// The value of each [`chosen`] setting with the best mean validation VAL@1e-3 over seeds (a
/// run that did not finish counts as VAL = 0, as a diverged model accepts no true pair at that
/// FAR), as the values of [`SELECTION`].
pub(super) fn choose_on_validation(results_dir: &Path) -> Result<Chosen> {
    let runs = Store::new(results_dir, "leaderboard").current_runs()?;
    let validation = runs.filter(|r| on_validation(&r))?;
    let mut values = Map::new();
    let mut words = Vec::new();
    for (method, key, tried) in chosen() {
        let seeded = validation_val(&validation, method, key)?;
        let Some((value, mean)) = seeded.best_where(|_| true) else {
            anyhow::bail!("the leaderboard has no validation run of {} to choose {key} from", method.name())
        };
        let name = selection_key(method, key);
        // The value as the sweep wrote it (an integer stays one).
        let value = tried.into_iter().find(|v| v.as_f64() == Some(value)).unwrap_or(Value::from(value));
        words.push(format!("{name} = {value} ({:.2} %)", 100.0 * mean));
        values.insert(name, value);
    }
    let source = format!(
        "chosen on the validation split (digits 0-4 → 5-6), the best mean VAL@1e-3 over seeds: {}",
        words.join(", ")
    );
    Ok((values, source))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::results::{Cell, Row, Table};

    #[test]
    fn validation_digits_are_disjoint_from_the_scored_ones() {
        let (test, validation) = (DigitSplit::Test, DigitSplit::Validation);
        for d in validation.train_digits().iter().chain(validation.held_out_digits()) {
            assert!(!test.held_out_digits().contains(d), "digit {d} is scored on the board");
        }
        for d in validation.held_out_digits() {
            assert!(!validation.train_digits().contains(d));
        }
        assert_eq!(validation.words(), "0-4 → 5-6");
        assert_eq!(test.words(), "0-6 → 7-9");
    }

    /// Validation runs of one method, (setting, seed, VAL or None for a diverged run).
    fn rows(method: &str, key: &str, runs: &[(f64, u64, Option<f64>)], split: &str) -> Vec<Row> {
        runs.iter()
            .map(|&(v, seed, val)| {
                vec![
                    ("run_id".into(), Cell::Str(format!("{method}-{v}-{seed}-{split}"))),
                    ("status".into(), (if val.is_some() { "finished" } else { "diverged" }).into()),
                    ("seed".into(), seed.into()),
                    ("method".into(), method.into()),
                    ("split".into(), split.into()),
                    (key.into(), v.into()),
                    (VAL.into(), val.map_or(Cell::Null, Cell::F64)),
                ]
            })
            .collect()
    }

    #[test]
    fn each_setting_is_the_best_mean_on_validation_and_the_board_is_never_read() {
        let dir = std::env::temp_dir().join(format!("replicate-validation-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let mut all = Vec::new();
        // λ = 0.1 has the best single seed but a diverged one: its mean counts that run as 0.
        all.extend(rows(
            "contrastive",
            "contrastive_lambda",
            &[(1e-3, 1, Some(0.2)), (1e-3, 2, Some(0.2)), (0.1, 1, Some(0.3)), (0.1, 2, None)],
            "validation",
        ));
        // The board's runs would choose 0.1; only validation counts.
        all.extend(rows("center", "center_lambda", &[(1e-2, 1, Some(0.3)), (0.1, 1, Some(0.1))], "validation"));
        all.extend(rows("center", "center_lambda", &[(0.1, 1, Some(0.9))], "test"));
        all.extend(rows("sphereface", "sphere_m", &[(2.0, 1, Some(0.1)), (4.0, 1, Some(0.2))], "validation"));
        all.extend(rows("cosface", "additive_margin", &[(0.2, 1, Some(0.3)), (0.35, 1, Some(0.2))], "validation"));
        all.extend(rows("arcface", "additive_margin", &[(0.3, 1, Some(0.1)), (0.5, 1, Some(0.4))], "validation"));
        let store = Store::new(&dir, "leaderboard");
        std::fs::create_dir_all(store.dir()).unwrap();
        let mut frame = Table::new("hand-made", all).to_frame().unwrap();
        crate::results::write_parquet(&store.path("runs"), &mut frame, Vec::new()).unwrap();
        let (values, source) = choose_on_validation(&dir).unwrap();
        assert_eq!(values["contrastive_lambda"], Value::from(1e-3));
        assert_eq!(values["center_lambda"], Value::from(1e-2));
        assert_eq!(values["sphere_m"], Value::from(4u64));
        assert_eq!(values["cosface_margin"], Value::from(0.2));
        assert_eq!(values["arcface_margin"], Value::from(0.5));
        assert!(source.contains("contrastive_lambda = 0.001 (20.00 %)"), "{source}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
