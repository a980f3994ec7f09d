//! Direct convolution and weight gradient for layers with 16 or 32 output channels, on AVX-512,
//! with the same arithmetic as the im2col + gemm path bit for bit (the input gradient is a
//! convolution too, `conv.rs`).
//!
//!   y[b, oy, ox, m] = bias[m] + Σ_{kh, kw, c} x[b, oy + kh − pad, ox + kw − pad, c] · W'[(kh, kw, c), m]
//!
//! im2col + gemm vectorises along the output channels, and 16 or 32 of them fill a third or two
//! thirds of an AVX-512 microkernel's 48 rows; the 1-channel first layer gives gemm products of
//! depth k·k = 25. Here one output pixel's channels are one or two vector registers, 14 pixels
//! along an output row are held in registers (14 or 28 accumulators), and each weight vector
//! loaded from W' serves all 14 (a broadcast input value and one FMA per pixel), with no im2col
//! copy and no packing.
//!
//! The sums are gemm's, in gemm's order, so that runs do not depend on which path computed a
//! layer (the kernel revision stays). gemm's microkernel sums a product's depth from zero, one
//! fused multiply-add per term in (kh, kw, c) order, in pieces of its depth block (`kc`, which
//! follows the product's size and the caches: [`depth_piece`]), and adds each piece's sum to the
//! destination, which starts as the bias; a product of one row goes to gemm's matrix-vector
//! kernel instead, which adds each term to the destination in turn, starting from the bias.
//! Terms skipped here (kernel rows on the padding, which the gemm path also skips except in
//! 1-channel layers) are exact zeros, which leave a sum unchanged.

use std::mem::MaybeUninit;

use super::conv::Geometry;
use super::isa::{isa, Isa};
use super::par_written;

/// Whether this process computes a convolution of geometry `g` directly.
pub(super) fn applies(g: &Geometry) -> bool {
    // gemm takes products of depth 2 or less to another kernel (`gevv`).
    isa() == Isa::Avx512 && matches!(g.c_out, 16 | 32) && g.k >= 3 && g.pad < g.k
}

/// How gemm sums a product of `rows` output pixels, `g.c_out` channels and depth `depth` on the
/// AVX-512 path: in pieces of this many terms (gemm_common's `gemm_basic_generic`: min(depth,
/// 512) for products of at most 64 × 64, else `kernel_params`' kc), or 0 for a one-row product,
/// which gemm's matrix-vector kernel sums from the destination.
fn depth_piece(g: &Geometry, rows: usize, depth: usize) -> usize {
    use gemm_f32::microkernel::avx512f::f32 as ukr;
    // gemm_f32 takes a row-major product as its transpose: channels × pixels.
    let (m, n) = (g.c_out, rows);
    if n <= 1 {
        0
    } else if m <= 64 && n <= 64 {
        depth.min(512)
    } else {
        gemm_common::cache::kernel_params(m, n, depth, ukr::MR_DIV_N * 16, ukr::NR, std::mem::size_of::<f32>()).kc
    }
}

/// The convolution of `x` (NHWC) with the kernel in gemm order `wr` ([(kh, kw, c), m]) plus
/// `bias`, computed directly; [`applies`] must hold.
pub(super) fn forward(g: &Geometry, x: &[f32], wr: &[f32], bias: &[f32]) -> Vec<f32> {
    assert!(applies(g), "direct convolution called for {g:?} on the {} path", isa().name());
    assert_eq!(x.len(), g.batch * g.image(), "direct convolution input of {g:?}");
    assert_eq!(wr.len(), g.kk() * g.c_out, "direct convolution kernel of {g:?}");
    assert_eq!(bias.len(), g.c_out, "direct convolution bias of {g:?}");
    let (n, m) = (g.n(), g.c_out);
    // The gemm path's chunks and blocks, for how gemm would have summed each pixel.
    let chunks = g.chunks();
    let per_chunk = chunks.first().map_or(1, |c| c.1) * n * m;
    let groups = g.row_groups();
    // SAFETY: each task writes every output value of its chunk's images (`image_avx512` writes
    // all pixels of an image), and `applies` checked that this CPU runs AVX-512.
    unsafe {
        par_written(g.batch * n * m, per_chunk, |offset, out| {
            let (first, count) = (offset / (n * m), out.len() / (n * m));
            let mut pieces = vec![0usize; count * n];
            for block in g.blocks(&groups, count) {
                let piece = depth_piece(g, block.pixels.len(), g.cols(block.kh));
                for &p in &block.pixels {
                    pieces[p] = piece;
                }
            }
            let mut padded = vec![0f32; g.h * (g.w + 2 * g.pad) * g.c_in];
            for img in 0..count {
                let x_img = &x[(first + img) * g.image()..(first + img + 1) * g.image()];
                let out_img = &mut out[img * n * m..(img + 1) * n * m];
                let pieces = &pieces[img * n..(img + 1) * n];
                #[cfg(target_arch = "x86_64")]
                match m {
                    16 => image_avx512::<1, 14>(g, x_img, wr, bias, &mut padded, out_img, pieces),
                    _ => image_avx512::<2, 14>(g, x_img, wr, bias, &mut padded, out_img, pieces),
                }
                #[cfg(not(target_arch = "x86_64"))]
                unreachable!("no AVX-512 off x86_64: {x_img:?} {out_img:?} {pieces:?}");
            }
        })
    }
}

/// One image: `V` vectors of 16 output channels per pixel, `P` pixels per register block where
/// gemm would have summed them alike (`pieces`, per pixel: [`depth_piece`]), else one by one.
///
/// # Safety
/// The CPU must run AVX-512F; `x_img`, `wr`, `bias`, `padded`, `out` and `pieces` must have the
/// sizes `g` gives (one image), `padded` zero outside the image's columns.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn image_avx512<const V: usize, const P: usize>(
    g: &Geometry,
    x_img: &[f32],
    wr: &[f32],
    bias: &[f32],
    padded: &mut [f32],
    out: &mut [MaybeUninit<f32>],
    pieces: &[usize],
) {
    let (c, pw) = (g.c_in, g.w + 2 * g.pad);
    debug_assert_eq!(g.c_out, 16 * V);
    for iy in 0..g.h {
        let src = &x_img[iy * g.w * c..(iy + 1) * g.w * c];
        padded[(iy * pw + g.pad) * c..(iy * pw + g.pad + g.w) * c].copy_from_slice(src);
    }
    for oy in 0..g.oh {
        let kh = g.kh_range(oy);
        let row = &pieces[oy * g.ow..(oy + 1) * g.ow];
        let mut ox = 0;
        while ox + P <= g.ow && row[ox..ox + P].iter().all(|&p| p == row[ox]) {
            // SAFETY: pixels ox..ox + P of row oy lie in the output and their taps in `padded`.
            unsafe { block::<V, P>(g, padded, wr, bias, kh, row[ox], oy, ox, out) };
            ox += P;
        }
        while ox < g.ow {
            // SAFETY: as above, one pixel.
            unsafe { block::<V, 1>(g, padded, wr, bias, kh, row[ox], oy, ox, out) };
            ox += 1;
        }
    }
}

/// Output pixels ox..ox + P of row oy, all `16 · V` channels, in registers, summed as gemm sums
/// them: from zero in pieces of `piece` terms, each added to the bias (its microkernel), or, with
/// `piece` 0, from the bias term by term (its matrix-vector kernel).
///
/// # Safety
/// AVX-512F; pixels ox..ox + P of row oy must lie in the output, and kernel rows `kh` must read
/// rows of `padded` (input rows oy + kh − pad inside the image).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
#[allow(clippy::too_many_arguments)]
#[inline]
unsafe fn block<const V: usize, const P: usize>(
    g: &Geometry,
    padded: &[f32],
    wr: &[f32],
    bias: &[f32],
    kh: (usize, usize),
    piece: usize,
    oy: usize,
    ox: usize,
    out: &mut [MaybeUninit<f32>],
) {
    use std::arch::x86_64::*;
    let (c, m, k, pw) = (g.c_in, g.c_out, g.k, g.w + 2 * g.pad);
    let (pp, wp, bp) = (padded.as_ptr(), wr.as_ptr(), bias.as_ptr());
    let op = out.as_mut_ptr() as *mut f32;
    // SAFETY (every pointer below): in bounds by the caller's contract: padded rows iy < h,
    // columns ox + j + kw < ox + P + k − 1 ≤ w + 2·pad, kernel rows < k·k·c, outputs < oh·ow.
    unsafe {
        let y = |j: usize, v: usize| op.add((oy * g.ow + ox + j) * m + 16 * v);
        let mut b = [_mm512_setzero_ps(); V];
        for (v, bv) in b.iter_mut().enumerate() {
            *bv = _mm512_loadu_ps(bp.add(16 * v));
        }
        let mut acc = [[_mm512_setzero_ps(); V]; P];
        if piece == 0 {
            for row in acc.iter_mut() {
                *row = b;
            }
        }
        // Terms summed in the current piece, and whether a piece was added to the output yet.
        let (mut summed, mut added) = (0usize, false);
        for kh in kh.0..kh.1 {
            let iy = oy + kh - g.pad;
            for kw in 0..k {
                let xb = pp.add((iy * pw + ox + kw) * c);
                let wb = wp.add((kh * k + kw) * c * m);
                let mut ci = 0;
                while ci < c {
                    let end = if piece == 0 { c } else { c.min(ci + piece - summed) };
                    for ci in ci..end {
                        let mut w = [_mm512_setzero_ps(); V];
                        for (v, wv) in w.iter_mut().enumerate() {
                            *wv = _mm512_loadu_ps(wb.add(ci * m + 16 * v));
                        }
                        for (j, row) in acc.iter_mut().enumerate() {
                            let xv = _mm512_set1_ps(*xb.add(j * c + ci));
                            for (a, wv) in row.iter_mut().zip(&w) {
                                *a = _mm512_fmadd_ps(xv, *wv, *a);
                            }
                        }
                    }
                    summed += end - ci;
                    ci = end;
                    if piece != 0 && summed == piece {
                        for (j, row) in acc.iter_mut().enumerate() {
                            for (v, a) in row.iter_mut().enumerate() {
                                let base = if added { _mm512_loadu_ps(y(j, v)) } else { b[v] };
                                _mm512_storeu_ps(y(j, v), _mm512_add_ps(*a, base));
                                *a = _mm512_setzero_ps();
                            }
                        }
                        (summed, added) = (0, true);
                    }
                }
            }
        }
        if piece == 0 || summed > 0 || !added {
            for (j, row) in acc.iter().enumerate() {
                for (v, a) in row.iter().enumerate() {
                    let total = if piece == 0 {
                        *a
                    } else {
                        _mm512_add_ps(*a, if added { _mm512_loadu_ps(y(j, v)) } else { b[v] })
                    };
                    _mm512_storeu_ps(y(j, v), total);
                }
            }
        }
    }
}

/// [dW' ([m][(kh, kw, c)]) | db (M)] of one chunk of `count` images (`x_chunk` and `dy_chunk`
/// start at its first image) computed directly, with the sums of the gemm path
/// (`weight_grad_chunk_gemm`) bit for bit; None where this process leaves it to gemm.
///
/// gemm multiplies each block's im2col columns by its dy rows: every dW' entry is summed over
/// the block's pixels in order, from zero (depth ≤ 128, one piece), and added to the chunk's
/// sum; blocks of one or two rows go to gemm's `gevv`, so a chunk with one is left to gemm. Here
/// a tile of R taps (consecutive (kw, c) of one kernel row, contiguous in a padded image) × the
/// 16·V channels stays in registers while the block's pixels stream past: per pixel, V vector
/// loads of dy and R broadcast input values, R·V FMAs.
pub(super) fn weight_grad_chunk(
    g: &Geometry,
    groups: &[super::conv::Taps],
    x_chunk: &[f32],
    dy_chunk: &[f32],
    count: usize,
) -> Option<Vec<f32>> {
    if !applies(g) {
        return None;
    }
    let blocks = g.blocks(groups, count);
    if blocks.iter().any(|b| b.pixels.len() <= 2) {
        return None;
    }
    let (kk, m, n, c) = (g.kk(), g.c_out, g.n(), g.c_in);
    let (ph, pw) = (g.h + 2 * g.pad, g.w + 2 * g.pad);
    let mut padded = vec![0f32; count * ph * pw * c];
    for img in 0..count {
        for iy in 0..g.h {
            let src = &x_chunk[img * g.image() + iy * g.w * c..][..g.w * c];
            padded[((img * ph + iy + g.pad) * pw + g.pad) * c..][..g.w * c].copy_from_slice(src);
        }
    }
    // dW' as [(kh, kw, c)][m] while summing, so that its rows are vectors of channels.
    let mut sums = vec![0f32; kk * m];
    let mut db = vec![0f32; m];
    let (mut x_at, mut dy_at) = (Vec::new(), Vec::new());
    let row = g.k * c;
    let (v, tile) = (m / 16, [24, 20, 16, 12, 10, 8, 6, 5, 4, 3, 2, 1].into_iter());
    let r = tile.filter(|r| row.is_multiple_of(*r) && r * v <= 24).max().unwrap_or(1);
    for block in &blocks {
        x_at.clear();
        dy_at.clear();
        for &p in &block.pixels {
            let (img, pixel) = (p / n, p % n);
            let (oy, ox) = (pixel / g.ow, pixel % g.ow);
            x_at.push(((img * ph + oy) * pw + ox) * c);
            dy_at.push(p * m);
        }
        for kh in block.kh.0..block.kh.1 {
            for t0 in (0..row).step_by(r) {
                let at = (kh * pw * c + t0, kh * row + t0);
                #[cfg(target_arch = "x86_64")]
                // SAFETY: `applies` checked AVX-512; the pixels' padded rows oy + kh < h + 2·pad
                // and columns ox + kw < w + 2·pad lie in `padded`, taps kh·k·C + t0 + R ≤ k·k·C.
                unsafe {
                    macro_rules! tiles {
                        ($($v:literal, $r:literal);*) => {
                            match (v, r) {
                                $(($v, $r) => wgrad_tile::<$v, $r>(&padded, dy_chunk, &x_at, &dy_at, at, &mut sums, m),)*
                                _ => unreachable!("no tile of {r} taps × {v} vectors"),
                            }
                        };
                    }
                    tiles!(1, 24; 1, 20; 1, 16; 1, 12; 1, 10; 1, 8; 1, 6; 1, 5; 1, 4; 1, 3; 1, 2; 1, 1;
                           2, 12; 2, 10; 2, 8; 2, 6; 2, 5; 2, 4; 2, 3; 2, 2; 2, 1)
                }
                #[cfg(not(target_arch = "x86_64"))]
                unreachable!("no AVX-512 off x86_64: {at:?}");
            }
        }
        for &p in &block.pixels {
            for (d, y) in db.iter_mut().zip(&dy_chunk[p * m..(p + 1) * m]) {
                *d += y;
            }
        }
    }
    let mut out = vec![0f32; kk * m + m];
    for (t, sum) in sums.chunks(m).enumerate() {
        for (mo, s) in sum.iter().enumerate() {
            out[mo * kk + t] = *s;
        }
    }
    out[kk * m..].copy_from_slice(&db);
    Some(out)
}

/// One tile of R taps × 16·V channels over a block's pixels (`x_at`, `dy_at`: where each
/// pixel's padded input window and dy row start), added to `sums` ([tap][m]).
///
/// # Safety
/// AVX-512F; `padded[x_at[i] + at.0 + R]` and `dy[dy_at[i] + 16·V]` in bounds for every pixel,
/// `sums[(at.1 + R)·m]` too.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn wgrad_tile<const V: usize, const R: usize>(
    padded: &[f32],
    dy: &[f32],
    x_at: &[usize],
    dy_at: &[usize],
    at: (usize, usize),
    sums: &mut [f32],
    m: usize,
) {
    use std::arch::x86_64::*;
    // SAFETY: the caller's contract.
    unsafe {
        let (xp, dp, sp) = (padded.as_ptr().add(at.0), dy.as_ptr(), sums.as_mut_ptr().add(at.1 * m));
        let mut acc = [[_mm512_setzero_ps(); V]; R];
        for (&xa, &da) in x_at.iter().zip(dy_at) {
            let mut d = [_mm512_setzero_ps(); V];
            for (v, dv) in d.iter_mut().enumerate() {
                *dv = _mm512_loadu_ps(dp.add(da + 16 * v));
            }
            let x = xp.add(xa);
            for (r, row) in acc.iter_mut().enumerate() {
                let xv = _mm512_set1_ps(*x.add(r));
                for (a, dv) in row.iter_mut().zip(&d) {
                    *a = _mm512_fmadd_ps(xv, *dv, *a);
                }
            }
        }
        for (r, row) in acc.iter().enumerate() {
            for (v, a) in row.iter().enumerate() {
                let s = sp.add(r * m + 16 * v);
                _mm512_storeu_ps(s, _mm512_add_ps(*a, _mm512_loadu_ps(s)));
            }
        }
    }
}
