//! LFW's 64×64 faces as training and test batches: a centre crop box-averaged down to the
//! network's input side, normalised as the digits are ((p − 127.5) / 128), with labels that
//! number the training people 0..C. Training batches may be augmented by a random shift of the
//! crop window (pixels beyond the image repeat its edge) and a horizontal flip, drawn from
//! (seed, step) so that a resumed run sees the same batches.

use candle_core::{Device, Result, Tensor};
use rand::Rng;

use super::images::Images;
use super::lfw::{Lfw, SIDE};

/// The part of each 64×64 image the network sees: the centre `crop`×`crop` window, averaged
/// over `crop / side` × `crop / side` blocks into `side`×`side` pixels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FaceWindow {
    pub crop: usize,
    pub side: usize,
}

/// Training-time augmentation: the crop window moved by up to `max_shift` pixels (of the 64×64
/// image) in each direction, and a mirror image half of the time when `flip`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Augmentation {
    pub seed: u64,
    pub max_shift: usize,
    pub flip: bool,
}

impl FaceWindow {
    /// Checks that the window fits the image and divides evenly, and that shifts stay small
    /// (a shifted window's pixels beyond the image repeat its edge).
    pub fn check(&self, max_shift: usize) -> std::result::Result<(), String> {
        if self.side == 0 || self.crop == 0 || !self.crop.is_multiple_of(self.side) {
            return Err(format!(
                "crop ({}) must be a positive multiple of input_side ({}): the crop is box-averaged down by a whole factor",
                self.crop, self.side
            ));
        }
        if self.crop > SIDE {
            return Err(format!("crop must be at most LFW's {SIDE} pixels, got {}", self.crop));
        }
        if max_shift > SIDE / 4 {
            return Err(format!(
                "max_shift must be at most {} pixels (a quarter of the image), got {max_shift}",
                SIDE / 4
            ));
        }
        Ok(())
    }
}

pub struct FaceImages<'a> {
    lfw: &'a Lfw,
    window: FaceWindow,
    /// The class of each identity (by LFW id): 0..C for the training people, `u32::MAX` for the rest.
    classes: Vec<u32>,
    augmentation: Option<Augmentation>,
}

impl<'a> FaceImages<'a> {
    /// Faces seen through `window`, with the people of `training` (in this order) as classes.
    pub fn new(lfw: &'a Lfw, window: FaceWindow, training: &[u32], augmentation: Option<Augmentation>) -> Self {
        let mut classes = vec![u32::MAX; lfw.names.len()];
        for (class, &person) in training.iter().enumerate() {
            classes[person as usize] = class as u32;
        }
        FaceImages { lfw, window, classes, augmentation }
    }

    /// The class of image `index` (`u32::MAX` outside the training people).
    pub fn class(&self, index: usize) -> u32 {
        self.classes[self.lfw.labels[index] as usize]
    }

    /// Writes image `index` through the window moved by (dy, dx), mirrored when `flip`.
    fn write(&self, index: usize, (dy, dx): (isize, isize), flip: bool, out: &mut Vec<f32>) {
        let FaceWindow { crop, side } = self.window;
        let factor = crop / side;
        let centre = ((SIDE - crop) / 2) as isize;
        let image = &self.lfw.images[index * SIDE * SIDE..(index + 1) * SIDE * SIDE];
        let at = |start: isize, k: usize| (start + k as isize).clamp(0, SIDE as isize - 1) as usize;
        let scale = 1.0 / (factor * factor) as f32;
        for row in 0..side {
            for col in 0..side {
                let col = if flip { side - 1 - col } else { col };
                let mut sum = 0u32;
                for y in 0..factor {
                    let line = at(centre + dy, row * factor + y) * SIDE;
                    sum += (0..factor).map(|x| image[line + at(centre + dx, col * factor + x)] as u32).sum::<u32>();
                }
                out.push((sum as f32 * scale - 127.5) / 128.0);
            }
        }
    }

    fn assemble(
        &self,
        indices: &[usize],
        device: &Device,
        mut placement: impl FnMut() -> ((isize, isize), bool),
    ) -> Result<(Tensor, Tensor)> {
        let side = self.window.side;
        let mut pixels = Vec::with_capacity(indices.len() * side * side);
        for &i in indices {
            let (shift, flip) = placement();
            self.write(i, shift, flip, &mut pixels);
        }
        let labels: Vec<u32> = indices.iter().map(|&i| self.class(i)).collect();
        let n = indices.len();
        Ok((Tensor::from_vec(pixels, (n, 1, side, side), device)?, Tensor::from_vec(labels, n, device)?))
    }

    /// The centred images at `indices`, mirrored (for flip-averaged test features).
    pub fn mirrored_batch(&self, indices: &[usize], device: &Device) -> Result<(Tensor, Tensor)> {
        self.assemble(indices, device, || ((0, 0), true))
    }
}

impl Images for FaceImages<'_> {
    fn batch(&self, indices: &[usize], device: &Device) -> Result<(Tensor, Tensor)> {
        self.assemble(indices, device, || ((0, 0), false))
    }

    fn training_batch(&self, indices: &[usize], step: u64, device: &Device) -> Result<(Tensor, Tensor)> {
        let Some(aug) = self.augmentation else { return self.batch(indices, device) };
        let mut rng = crate::util::rng_for(aug.seed, &format!("augment-{step}"));
        let s = aug.max_shift as i64;
        self.assemble(indices, device, || {
            let shift = (rng.random_range(-s..=s) as isize, rng.random_range(-s..=s) as isize);
            (shift, aug.flip && rng.random_bool(0.5))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two identities of two images each; image i's pixel (r, c) is (i·64 + r + c) mod 256.
    fn tiny() -> Lfw {
        let mut images = Vec::new();
        for i in 0..4usize {
            for r in 0..SIDE {
                for c in 0..SIDE {
                    images.push(((i * 64 + r + 2 * c) % 256) as u8);
                }
            }
        }
        Lfw {
            images,
            labels: vec![0, 0, 1, 1],
            names: vec!["A".into(), "B".into()],
            counts: vec![2, 2],
            view1_train_people: vec![],
            view1_test_people: vec![],
            view1_train_pairs: vec![],
            view1_test_pairs: vec![],
            view2_fold_people: vec![],
            view2_pairs: vec![],
        }
    }

    fn pixels(t: &Tensor) -> Vec<f32> {
        t.flatten_all().unwrap().to_vec1().unwrap()
    }

    #[test]
    fn a_centred_window_is_box_averaged_and_normalised() {
        let lfw = tiny();
        let faces = FaceImages::new(&lfw, FaceWindow { crop: 8, side: 4 }, &[1], None);
        let (x, y) = faces.batch(&[2], &Device::Cpu).unwrap();
        assert_eq!(x.dims(), &[1, 1, 4, 4]);
        // Top-left 2×2 block of the centre 8×8 window starts at (28, 28).
        let block = [(28, 28), (28, 29), (29, 28), (29, 29)].map(|(r, c)| ((2 * 64 + r + 2 * c) % 256) as f32);
        let expected = (block.iter().sum::<f32>() / 4.0 - 127.5) / 128.0;
        assert!((pixels(&x)[0] - expected).abs() < 1e-6);
        // Person 1 is the only training class; person 0 is not one.
        assert_eq!(y.to_vec1::<u32>().unwrap(), vec![0]);
        assert_eq!(faces.class(0), u32::MAX);
    }

    #[test]
    fn the_mirror_reverses_every_row() {
        let lfw = tiny();
        let faces = FaceImages::new(&lfw, FaceWindow { crop: 6, side: 6 }, &[0, 1], None);
        let (plain, _) = faces.batch(&[1], &Device::Cpu).unwrap();
        let (mirror, _) = faces.mirrored_batch(&[1], &Device::Cpu).unwrap();
        let (p, m) = (pixels(&plain), pixels(&mirror));
        for row in 0..6 {
            for col in 0..6 {
                assert_eq!(p[row * 6 + col], m[row * 6 + 5 - col]);
            }
        }
    }

    #[test]
    fn augmentation_depends_on_the_step_only_and_stays_inside_the_image() {
        let lfw = tiny();
        let aug = Augmentation { seed: 7, max_shift: 16, flip: true };
        let faces = FaceImages::new(&lfw, FaceWindow { crop: 4, side: 4 }, &[0, 1], Some(aug));
        let batch = |step| pixels(&faces.training_batch(&[0, 1, 2, 3, 0, 1, 2, 3], step, &Device::Cpu).unwrap().0);
        assert_eq!(batch(5), batch(5), "the same step gives the same batch");
        assert_ne!(batch(5), batch(6), "another step moves the windows");
        let centred = pixels(&faces.batch(&[0, 1, 2, 3, 0, 1, 2, 3], &Device::Cpu).unwrap().0);
        assert_ne!(batch(5), centred);
    }

    #[test]
    fn a_window_that_does_not_fit_is_refused_with_its_numbers() {
        assert!(FaceWindow { crop: 64, side: 32 }.check(4).is_ok());
        let e = FaceWindow { crop: 60, side: 32 }.check(0).unwrap_err();
        assert!(e.contains("60") && e.contains("32"), "{e}");
        let e = FaceWindow { crop: 72, side: 36 }.check(0).unwrap_err();
        assert!(e.contains("72") && e.contains("64"), "{e}");
        let e = FaceWindow { crop: 64, side: 32 }.check(17).unwrap_err();
        assert!(e.contains("max_shift") && e.contains("17"), "{e}");
    }

    #[test]
    fn a_window_shifted_past_the_edge_repeats_the_edge_pixels() {
        let lfw = tiny();
        let faces = FaceImages::new(&lfw, FaceWindow { crop: 64, side: 64 }, &[0, 1], None);
        let mut shifted = Vec::new();
        faces.write(0, (0, -3), false, &mut shifted);
        let mut centred = Vec::new();
        faces.write(0, (0, 0), false, &mut centred);
        for row in 0..64 {
            for col in 0..3 {
                assert_eq!(shifted[row * 64 + col], centred[row * 64], "row {row}, column {col}");
            }
            assert_eq!(shifted[row * 64 + 10], centred[row * 64 + 7]);
        }
    }
}
