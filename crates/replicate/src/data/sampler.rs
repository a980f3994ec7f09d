//! Batch samplers: seeded shuffled batches, and P classes × K images per batch (the
//! "M-per-class" sampler that online pair and triplet mining need).

use rand::seq::SliceRandom;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Yields the indices of one mini-batch at a time; `epochs` counts passes over the pool.
pub trait BatchSampler {
    fn next_batch(&mut self) -> Vec<usize>;
    fn epochs(&self) -> f64;
    /// Where the sampler stands in its sequence, for a checkpoint. Integers only, so JSON keeps
    /// it exact.
    fn state(&self) -> Value;
    /// Continues from what [`BatchSampler::state`] returned for a sampler built with the same
    /// arguments; on an error nothing has changed.
    fn restore(&mut self, state: &Value) -> Result<(), String>;
}

/// A ChaCha generator's position: its seed, stream and word (u128, kept as text for JSON).
#[derive(Serialize, Deserialize)]
struct RngState {
    seed: [u8; 32],
    stream: u64,
    word_pos: String,
}

impl RngState {
    fn of(rng: &ChaCha8Rng) -> Self {
        RngState { seed: rng.get_seed(), stream: rng.get_stream(), word_pos: rng.get_word_pos().to_string() }
    }

    fn rng(&self) -> Result<ChaCha8Rng, String> {
        let word_pos: u128 =
            self.word_pos.parse().map_err(|_| format!("bad generator position {:?}", self.word_pos))?;
        let mut rng = ChaCha8Rng::from_seed(self.seed);
        rng.set_stream(self.stream);
        rng.set_word_pos(word_pos);
        Ok(rng)
    }
}

fn from_state<T: serde::de::DeserializeOwned>(state: &Value) -> Result<T, String> {
    serde_json::from_value(state.clone()).map_err(|e| format!("a sampler state that does not fit this sampler: {e}"))
}

/// Same multiset of indices (a saved order must be a reordering of what the sampler holds).
fn same_indices(a: &[usize], b: &[usize]) -> bool {
    let (mut a, mut b) = (a.to_vec(), b.to_vec());
    a.sort_unstable();
    b.sort_unstable();
    a == b
}

/// Fixed-size batches from a reshuffled pool of indices, epoch after epoch. The tail of an
/// epoch that does not fill a batch starts the next one (as Caffe's data layer wraps around).
pub struct ShuffledBatches {
    pool: Vec<usize>,
    order: Vec<usize>,
    pos: usize,
    batch: usize,
    drawn: u64,
    rng: ChaCha8Rng,
}

impl ShuffledBatches {
    pub fn new(pool: Vec<usize>, batch: usize, rng: ChaCha8Rng) -> Self {
        assert!(!pool.is_empty() && batch > 0, "a sampler needs a non-empty pool and batch > 0");
        ShuffledBatches { order: Vec::new(), pos: 0, pool, batch, drawn: 0, rng }
    }
}

impl BatchSampler for ShuffledBatches {
    fn next_batch(&mut self) -> Vec<usize> {
        let mut out = Vec::with_capacity(self.batch);
        while out.len() < self.batch {
            if self.pos == self.order.len() {
                self.order = self.pool.clone();
                self.order.shuffle(&mut self.rng);
                self.pos = 0;
            }
            let take = (self.batch - out.len()).min(self.order.len() - self.pos);
            out.extend_from_slice(&self.order[self.pos..self.pos + take]);
            self.pos += take;
        }
        self.drawn += out.len() as u64;
        out
    }

    fn epochs(&self) -> f64 {
        self.drawn as f64 / self.pool.len() as f64
    }

    fn state(&self) -> Value {
        serde_json::json!({ "order": self.order, "pos": self.pos, "drawn": self.drawn, "rng": RngState::of(&self.rng) })
    }

    fn restore(&mut self, state: &Value) -> Result<(), String> {
        #[derive(Deserialize)]
        struct Saved {
            order: Vec<usize>,
            pos: usize,
            drawn: u64,
            rng: RngState,
        }
        let saved: Saved = from_state(state)?;
        let fits = (saved.order.is_empty() || same_indices(&saved.order, &self.pool)) && saved.pos <= saved.order.len();
        if !fits {
            return Err("a saved batch order that is not this sampler's pool".into());
        }
        self.rng = saved.rng.rng()?;
        (self.order, self.pos, self.drawn) = (saved.order, saved.pos, saved.drawn);
        Ok(())
    }
}

/// Batches of `classes_per_batch` distinct classes × `per_class` images each. Each class's
/// images are drawn from its own reshuffled queue, so every image is seen once per class-epoch.
pub struct ClassBalancedBatches {
    queues: Vec<(Vec<usize>, usize)>,
    pool_len: usize,
    classes_per_batch: usize,
    per_class: usize,
    drawn: u64,
    rng: ChaCha8Rng,
}

impl ClassBalancedBatches {
    /// `labels[i]` is the class of index `pool[i]`.
    pub fn new(
        pool: &[usize],
        labels: &[u32],
        classes_per_batch: usize,
        per_class: usize,
        rng: ChaCha8Rng,
    ) -> Result<Self, String> {
        let num_classes = labels.iter().map(|&l| l as usize + 1).max().unwrap_or(0);
        let mut by_class = vec![Vec::new(); num_classes];
        for (&i, &l) in pool.iter().zip(labels) {
            by_class[l as usize].push(i);
        }
        let queues: Vec<(Vec<usize>, usize)> =
            by_class.into_iter().filter(|v| !v.is_empty()).map(|v| (v, usize::MAX)).collect();
        if classes_per_batch == 0 || per_class == 0 {
            return Err("classes_per_batch and per_class must be at least 1".into());
        }
        if classes_per_batch > queues.len() {
            return Err(format!(
                "classes_per_batch = {classes_per_batch} but the pool holds only {} classes",
                queues.len()
            ));
        }
        Ok(ClassBalancedBatches { queues, pool_len: pool.len(), classes_per_batch, per_class, drawn: 0, rng })
    }
}

impl BatchSampler for ClassBalancedBatches {
    fn next_batch(&mut self) -> Vec<usize> {
        let mut classes: Vec<usize> = (0..self.queues.len()).collect();
        classes.shuffle(&mut self.rng);
        classes.truncate(self.classes_per_batch);
        classes.sort_unstable();
        let mut out = Vec::with_capacity(self.classes_per_batch * self.per_class);
        for c in classes {
            let (items, pos) = &mut self.queues[c];
            for _ in 0..self.per_class {
                if *pos >= items.len() {
                    items.shuffle(&mut self.rng);
                    *pos = 0;
                }
                out.push(items[*pos]);
                *pos += 1;
            }
        }
        self.drawn += out.len() as u64;
        out
    }

    fn epochs(&self) -> f64 {
        self.drawn as f64 / self.pool_len as f64
    }

    fn state(&self) -> Value {
        serde_json::json!({ "queues": self.queues, "drawn": self.drawn, "rng": RngState::of(&self.rng) })
    }

    fn restore(&mut self, state: &Value) -> Result<(), String> {
        #[derive(Deserialize)]
        struct Saved {
            queues: Vec<(Vec<usize>, usize)>,
            drawn: u64,
            rng: RngState,
        }
        let saved: Saved = from_state(state)?;
        let fits = saved.queues.len() == self.queues.len()
            && saved.queues.iter().zip(&self.queues).all(|((a, _), (b, _))| same_indices(a, b));
        if !fits {
            return Err("saved class queues that are not this sampler's classes".into());
        }
        self.rng = saved.rng.rng()?;
        (self.queues, self.drawn) = (saved.queues, saved.drawn);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::rng_for;

    #[test]
    fn shuffled_batches_cover_each_epoch_once_and_repeat_with_the_seed() {
        let mut s = ShuffledBatches::new((0..10).collect(), 5, rng_for(1, "t"));
        let mut seen: Vec<usize> = s.next_batch().into_iter().chain(s.next_batch()).collect();
        seen.sort();
        assert_eq!(seen, (0..10).collect::<Vec<_>>());
        assert_eq!(s.epochs(), 1.0);
        let a = ShuffledBatches::new((0..10).collect(), 3, rng_for(1, "t")).next_batch();
        let b = ShuffledBatches::new((0..10).collect(), 3, rng_for(1, "t")).next_batch();
        assert_eq!(a, b);
    }

    #[test]
    fn class_balanced_batches_hold_p_classes_times_k() {
        let pool: Vec<usize> = (0..60).collect();
        let labels: Vec<u32> = (0..60).map(|i| i % 6).collect();
        let mut s = ClassBalancedBatches::new(&pool, &labels, 4, 3, rng_for(2, "t")).unwrap();
        for _ in 0..20 {
            let b = s.next_batch();
            assert_eq!(b.len(), 12);
            let mut counts = [0usize; 6];
            for &i in &b {
                counts[labels[i] as usize] += 1;
            }
            assert_eq!(counts.iter().filter(|&&c| c == 3).count(), 4);
            assert_eq!(counts.iter().filter(|&&c| c == 0).count(), 2);
        }
        assert!(ClassBalancedBatches::new(&pool, &labels, 7, 3, rng_for(2, "t")).is_err());
    }

    /// A sampler restored from a state continues exactly as the one the state was taken from.
    fn resumes_where_it_stood(mut make: impl FnMut() -> Box<dyn BatchSampler>) {
        let mut a = make();
        for _ in 0..7 {
            a.next_batch();
        }
        let saved = serde_json::to_string(&a.state()).unwrap();
        let mut b = make();
        b.restore(&serde_json::from_str(&saved).unwrap()).unwrap();
        assert_eq!(a.epochs(), b.epochs());
        for _ in 0..30 {
            assert_eq!(a.next_batch(), b.next_batch());
        }
        let mut other = make();
        assert!(other.restore(&serde_json::json!({ "order": [1] })).is_err());
    }

    #[test]
    fn samplers_resume_from_their_state() {
        resumes_where_it_stood(|| Box::new(ShuffledBatches::new((0..23).collect(), 5, rng_for(3, "t"))));
        let labels: Vec<u32> = (0..60).map(|i| i % 6).collect();
        let pool: Vec<usize> = (0..60).collect();
        resumes_where_it_stood(|| Box::new(ClassBalancedBatches::new(&pool, &labels, 4, 2, rng_for(3, "t")).unwrap()));
        let mut shuffled = ShuffledBatches::new((0..23).collect(), 5, rng_for(3, "t"));
        let mut foreign = ShuffledBatches::new((0..24).collect(), 5, rng_for(3, "t"));
        foreign.next_batch();
        assert!(shuffled.restore(&foreign.state()).is_err(), "a state of another pool is refused");
    }
}
