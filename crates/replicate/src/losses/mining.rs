//! # Online triplet mining rules, kept apart from the loss (as pytorch-metric-learning does)
//!
//! Each rule reads the batch's detached distance matrix D and the labels and returns the
//! (anchor, positive, negative) index triplets the loss averages over. With Δ = d_an − d_ap:
//!
//! ```text
//! All             every (a, p, n): a ≠ p, y_a = y_p ≠ y_n                      (batch-all)
//! BatchHard       per anchor with a positive and a negative:
//!                 p = argmax_p d_ap, n = argmin_n d_an                          (Hermans et al. 2017)
//! SemiHard        per ordered positive pair (a, p) whose anchor has a negative:
//!                 n = argmin { d_an : d_an > d_ap }  (the closest negative with Δ > 0);
//!                 if no negative has Δ > 0, n = argmax d_an (the easiest negative)
//!                 — FaceNet Sec. 3.2 in the batch form of TF-Addons' triplet_semihard_loss
//! HardestNegative per ordered positive pair (a, p): n = argmin_n d_an
//!                 — the rule FaceNet warns collapses training early
//! ```
//!
//! Each anchor row is handled on its own: its negatives are sorted once, then every positive
//! finds its semi-hard negative by binary search, O(B² log B) for the batch and no loop over
//! triplets. Ties go to the lowest index, so the selection is deterministic.

use rayon::prelude::*;

/// Which triplets the loss is averaged over.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mining {
    All,
    BatchHard,
    SemiHard,
    HardestNegative,
}

impl Mining {
    pub const ALL: [Mining; 4] = [Mining::SemiHard, Mining::HardestNegative, Mining::BatchHard, Mining::All];

    pub fn name(&self) -> &'static str {
        match self {
            Mining::All => "all",
            Mining::BatchHard => "batch_hard",
            Mining::SemiHard => "semi_hard",
            Mining::HardestNegative => "hardest_negative",
        }
    }
}

/// Index triplets (a, p, n) into the batch.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Triplets {
    pub anchors: Vec<u32>,
    pub positives: Vec<u32>,
    pub negatives: Vec<u32>,
}

impl Triplets {
    pub fn len(&self) -> usize {
        self.anchors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.anchors.is_empty()
    }

    fn extend(&mut self, rows: Vec<Vec<(u32, u32, u32)>>) {
        for row in rows {
            for (a, p, n) in row {
                self.anchors.push(a);
                self.positives.push(p);
                self.negatives.push(n);
            }
        }
    }
}

/// Selects triplets from the row-major `[B, B]` distance matrix `dist`.
pub fn mine(rule: Mining, dist: &[f64], labels: &[u32]) -> Triplets {
    let b = labels.len();
    assert_eq!(dist.len(), b * b, "mine: distance matrix does not match the labels");
    let rows: Vec<Vec<(u32, u32, u32)>> = (0..b)
        .into_par_iter()
        .map(|a| {
            let row = &dist[a * b..(a + 1) * b];
            let positives: Vec<usize> = (0..b).filter(|&j| j != a && labels[j] == labels[a]).collect();
            let negatives: Vec<usize> = (0..b).filter(|&j| labels[j] != labels[a]).collect();
            if positives.is_empty() || negatives.is_empty() {
                return Vec::new();
            }
            let argmin = |items: &[usize]| {
                *items.iter().min_by(|&&i, &&j| row[i].total_cmp(&row[j]).then(i.cmp(&j))).expect("non-empty")
            };
            let argmax = |items: &[usize]| {
                *items.iter().min_by(|&&i, &&j| row[j].total_cmp(&row[i]).then(i.cmp(&j))).expect("non-empty")
            };
            let t = |p: usize, n: usize| (a as u32, p as u32, n as u32);
            match rule {
                Mining::All => positives.iter().flat_map(|&p| negatives.iter().map(move |&n| t(p, n))).collect(),
                Mining::BatchHard => vec![t(argmax(&positives), argmin(&negatives))],
                Mining::HardestNegative => {
                    let n = argmin(&negatives);
                    positives.iter().map(|&p| t(p, n)).collect()
                }
                Mining::SemiHard => {
                    let mut sorted = negatives.clone();
                    sorted.sort_by(|&i, &j| row[i].total_cmp(&row[j]).then(i.cmp(&j)));
                    let easiest = argmax(&negatives);
                    positives
                        .iter()
                        .map(|&p| {
                            let first_farther = sorted.partition_point(|&n| row[n] <= row[p]);
                            t(p, sorted.get(first_farther).copied().unwrap_or(easiest))
                        })
                        .collect()
                }
            }
        })
        .collect();
    let mut out = Triplets::default();
    out.extend(rows);
    out
}
