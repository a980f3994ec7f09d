//! Batch samplers: seeded shuffled batches, and P classes × K images per batch (the
//! "M-per-class" sampler that online pair and triplet mining need).

use rand::seq::SliceRandom;
use rand_chacha::ChaCha8Rng;

/// Yields the indices of one mini-batch at a time; `epochs` counts passes over the pool.
pub trait BatchSampler {
    fn next_batch(&mut self) -> Vec<usize>;
    fn epochs(&self) -> f64;
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
        labels: &[u8],
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
        let labels: Vec<u8> = (0..60).map(|i| (i % 6) as u8).collect();
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
}
