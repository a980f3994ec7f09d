//! Classical face descriptors, the baselines a learned feature stands beside on LFW.
//!
//! * Raw pixels, compared by cosine distance 1 − x·y / (‖x‖ ‖y‖), plain or after subtracting the
//!   mean image of the training images (the LFW results page's "pixels" rows; its Eigenfaces row
//!   is the same data through PCA).
//! * Uniform local binary patterns (Ojala, Pietikäinen, Mäenpää, TPAMI 2002; as a face descriptor
//!   Ahonen, Hadid, Pietikäinen, ECCV 2004): each interior pixel's 8 neighbours at radius 1 (the
//!   3×3 square) thresholded at the centre, LBP = Σ_p s(g_p − g_c) 2^p; the 58 codes with at most
//!   two 0/1 transitions around the circle get a bin each and all others share one, 59 bins. The
//!   code map is cut into a `cells × cells` grid, each cell's histogram normalised to sum 1 (cells
//!   differ by a pixel row at most), and the histograms concatenated. Compared by the χ² distance
//!   Σ_i (a_i − b_i)² / (a_i + b_i) over bins with a_i + b_i > 0 (Ahonen et al., Eq. 4, unweighted).

/// Bins of a uniform LBP(8, 1) histogram: 58 uniform codes and one for the rest.
pub const LBP_BINS: usize = 59;

/// The bin of each 8-bit code: uniform codes in increasing order get 0..58, the others 58.
fn uniform_bins() -> [u8; 256] {
    let mut bins = [(LBP_BINS - 1) as u8; 256];
    let mut next = 0u8;
    for code in 0..256u32 {
        // Bits that differ from their neighbour around the circle: the 0/1 transitions.
        let rotated = ((code >> 1) | ((code & 1) << 7)) & 0xff;
        if (code ^ rotated).count_ones() <= 2 {
            bins[code as usize] = next;
            next += 1;
        }
    }
    debug_assert_eq!(next as usize, LBP_BINS - 1);
    bins
}

/// The LBP code of every interior pixel of a `side × side` image, row-major, `(side − 2)²` codes.
/// Neighbour p = 0..8 runs clockwise from the top-left; a neighbour ≥ the centre sets its bit.
pub fn lbp_codes(image: &[u8], side: usize) -> Vec<u8> {
    const NEIGHBOURS: [(isize, isize); 8] = [(-1, -1), (-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1)];
    assert_eq!(image.len(), side * side, "an image of {side}×{side} pixels");
    let mut codes = Vec::with_capacity((side - 2) * (side - 2));
    for y in 1..side - 1 {
        for x in 1..side - 1 {
            let centre = image[y * side + x];
            let mut code = 0u8;
            for (p, (dy, dx)) in NEIGHBOURS.iter().enumerate() {
                let g = image[(y as isize + dy) as usize * side + (x as isize + dx) as usize];
                code |= u8::from(g >= centre) << p;
            }
            codes.push(code);
        }
    }
    codes
}

/// The uniform-LBP descriptor of one image: `cells²` histograms of [`LBP_BINS`] bins, each
/// summing to 1, cell (row, column) at `(row · cells + column) · LBP_BINS`.
pub fn lbp_histograms(image: &[u8], side: usize, cells: usize) -> Vec<f32> {
    let bins = uniform_bins();
    let inner = side - 2;
    assert!((1..=inner).contains(&cells), "{cells} cells per side on a {side}×{side} image");
    let codes = lbp_codes(image, side);
    let mut hist = vec![0f32; cells * cells * LBP_BINS];
    let mut totals = vec![0f32; cells * cells];
    for (k, &code) in codes.iter().enumerate() {
        let (y, x) = (k / inner, k % inner);
        let cell = (y * cells / inner) * cells + x * cells / inner;
        hist[cell * LBP_BINS + bins[code as usize] as usize] += 1.0;
        totals[cell] += 1.0;
    }
    for (cell, total) in totals.iter().enumerate() {
        hist[cell * LBP_BINS..(cell + 1) * LBP_BINS].iter_mut().for_each(|h| *h /= total);
    }
    hist
}

/// χ²(a, b) = Σ (a_i − b_i)² / (a_i + b_i) over the bins where a_i + b_i > 0.
pub fn chi_square(a: &[f32], b: &[f32]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| {
            let (x, y) = (x as f64, y as f64);
            if x + y > 0.0 {
                (x - y).powi(2) / (x + y)
            } else {
                0.0
            }
        })
        .sum()
}

/// 1 − cos(x − m, y − m) for pixel vectors x, y and an offset m (zeros: plain cosine). Two
/// constant images (zero vectors after the offset) are at distance 1: nothing says they agree.
pub fn cosine_distance(x: &[u8], y: &[u8], offset: &[f64]) -> f64 {
    let (mut xy, mut xx, mut yy) = (0.0, 0.0, 0.0);
    for ((&a, &b), &m) in x.iter().zip(y).zip(offset) {
        let (a, b) = (a as f64 - m, b as f64 - m);
        xy += a * b;
        xx += a * a;
        yy += b * b;
    }
    if xx == 0.0 || yy == 0.0 {
        1.0
    } else {
        1.0 - xy / (xx * yy).sqrt()
    }
}

/// The mean image of `images` (indices into `pixels`, `len` values per image).
pub fn mean_image(pixels: &[u8], len: usize, images: &[usize]) -> Vec<f64> {
    let mut mean = vec![0.0; len];
    for &i in images {
        for (m, &p) in mean.iter_mut().zip(&pixels[i * len..(i + 1) * len]) {
            *m += p as f64;
        }
    }
    let n = images.len().max(1) as f64;
    mean.iter_mut().for_each(|m| *m /= n);
    mean
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exactly_58_codes_are_uniform_and_they_are_the_ones_with_two_transitions_at_most() {
        let bins = uniform_bins();
        let uniform: Vec<u32> = (0..256u32).filter(|&c| (bins[c as usize] as usize) < LBP_BINS - 1).collect();
        assert_eq!(uniform.len(), 58);
        for c in [0b0000_0000u32, 0b1111_1111, 0b0000_1110, 0b1000_0001, 0b1111_0000] {
            assert!(uniform.contains(&c), "{c:08b} has at most two transitions");
        }
        for c in [0b0101_0101u32, 0b0000_0101, 0b1001_0001] {
            assert!(!uniform.contains(&c), "{c:08b} has more than two transitions");
        }
        assert!(uniform.windows(2).all(|w| bins[w[0] as usize] < bins[w[1] as usize]), "in increasing order");
    }

    #[test]
    fn codes_set_the_bits_of_neighbours_at_least_as_bright_as_the_centre() {
        // A 3×3 image: only the top row (bits 0, 1, 2) and the left neighbour (bit 7) are ≥ 5.
        let image = [9, 5, 7, 6, 5, 1, 0, 2, 4];
        assert_eq!(lbp_codes(&image, 3), vec![0b1000_0111]);
        let flat = [3u8; 16];
        assert_eq!(lbp_codes(&flat, 4), vec![0xff; 4], "a flat image sets every bit");
    }

    #[test]
    fn each_cell_histogram_sums_to_one_and_a_flat_image_fills_one_bin() {
        let side = 10;
        let image: Vec<u8> = (0..side * side).map(|i| (i * 37 % 251) as u8).collect();
        let hist = lbp_histograms(&image, side, 2);
        assert_eq!(hist.len(), 4 * LBP_BINS);
        for cell in hist.chunks(LBP_BINS) {
            assert!((cell.iter().sum::<f32>() - 1.0).abs() < 1e-6);
        }
        let flat = lbp_histograms(&[7u8; 100], 10, 2);
        let full = uniform_bins()[0xff] as usize;
        assert!(flat.chunks(LBP_BINS).all(|c| c[full] == 1.0));
    }

    #[test]
    fn chi_square_is_zero_on_equal_histograms_symmetric_and_skips_empty_bins() {
        let a = [0.5f32, 0.5, 0.0];
        let b = [1.0f32, 0.0, 0.0];
        assert_eq!(chi_square(&a, &a), 0.0);
        // (0.5)²/1.5 + (0.5)²/0.5 = 1/6 + 1/2
        assert!((chi_square(&a, &b) - (1.0 / 6.0 + 0.5)).abs() < 1e-12);
        assert_eq!(chi_square(&a, &b), chi_square(&b, &a));
    }

    #[test]
    fn cosine_distance_is_zero_for_scaled_copies_and_the_offset_is_subtracted_first() {
        let x = [1u8, 2, 3, 4];
        let y = [2u8, 4, 6, 8];
        assert!(cosine_distance(&x, &y, &[0.0; 4]).abs() < 1e-12);
        // Centred on the mean image (1.5, 3, 4.5, 6), x and y point in opposite directions.
        let mean = mean_image(&[x, y].concat(), 4, &[0, 1]);
        assert_eq!(mean, vec![1.5, 3.0, 4.5, 6.0]);
        assert!((cosine_distance(&x, &y, &mean) - 2.0).abs() < 1e-12);
        assert_eq!(cosine_distance(&[5, 5], &[1, 2], &[5.0, 5.0]), 1.0, "a zero vector is at distance 1");
    }
}
