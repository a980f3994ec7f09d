//! Direct convolution and weight gradient for layers with 16 or 32 output channels, on AVX-512
//! and on AVX2 with FMA, with the same arithmetic as the im2col + gemm path bit for bit (the
//! input gradient is a convolution too, `conv.rs`).
//!
//!   y[b, oy, ox, m] = bias[m] + Σ_{kh, kw, c} x[b, oy + kh − pad, ox + kw − pad, c] · W'[(kh, kw, c), m]
//!
//! im2col + gemm vectorises along the output channels, and 16 or 32 of them fill a third or two
//! thirds of an AVX-512 microkernel's 48 rows (AVX2's: 24 rows, two thirds or 1⅓ of them); the
//! 1-channel first layer gives gemm products of depth k·k = 25. Here one output pixel's channels
//! are V vector registers (the channels over the lanes), P pixels along an output row are held
//! in registers (14 pixels × 1 or 2 vectors in AVX-512's 32 registers; 6 pixels × 2 vectors in
//! AVX2's 16, which takes 16-channel layers only), and each weight vector loaded from W' serves
//! all P (a broadcast input value and one FMA per pixel), with no im2col copy and no packing.
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

/// Whether this process computes a convolution of geometry `g` directly: on AVX-512 with 16 or
/// 32 output channels, on AVX2 with 16 (at 32, gemm's 24-row microkernel is mostly full, and
/// faster than two passes of 16 channels here: 36 against 51 ms for a 32 → 32 5×5 layer on 64
/// 28×28 images, one Xeon core forced to AVX2).
pub(super) fn applies(g: &Geometry) -> bool {
    let channels = match isa() {
        Isa::Avx512 => matches!(g.c_out, 16 | 32),
        Isa::Avx2 => g.c_out == 16,
        Isa::Scalar => false,
    };
    channels && fits(g)
}

/// Whether this process computes the weight gradient of geometry `g` directly: 16 or 32 output
/// channels on AVX-512 or AVX2 (on AVX2 16 channels at a time).
fn applies_to_weight_grad(g: &Geometry) -> bool {
    matches!(isa(), Isa::Avx512 | Isa::Avx2) && matches!(g.c_out, 16 | 32) && fits(g)
}

/// Kernels of 3 × 3 or wider with less padding than the kernel: gemm takes products of depth 2
/// or less to another kernel (`gevv`), whose sums these kernels do not follow.
fn fits(g: &Geometry) -> bool {
    g.k >= 3 && g.pad < g.k
}

/// How gemm sums a product of `rows` output pixels, `g.c_out` channels and depth `depth` on this
/// process's path: in pieces of this many terms (gemm_common's `gemm_basic_generic`: min(depth,
/// 512) for products of at most 64 × 64, else `kernel_params`' kc, which follows the path's
/// microkernel), or 0 for a one-row product, which gemm's matrix-vector kernel sums from the
/// destination.
fn depth_piece(g: &Geometry, rows: usize, depth: usize) -> usize {
    // gemm_f32 takes a row-major product as its transpose: channels × pixels.
    let (m, n) = (g.c_out, rows);
    if n <= 1 {
        return 0;
    }
    if m <= 64 && n <= 64 {
        return depth.min(512);
    }
    let (mr, nr) = super::isa::microkernel_shape(isa());
    gemm_common::cache::kernel_params(m, n, depth, mr, nr, std::mem::size_of::<f32>()).kc
}

/// Images `x` (NHWC, `count` of them) with `g.pad` zeros around each, into `padded`.
fn pad_images(g: &Geometry, x: &[f32], count: usize, padded: &mut [f32]) {
    let (c, ph, pw) = (g.c_in, g.h + 2 * g.pad, g.w + 2 * g.pad);
    for img in 0..count {
        for iy in 0..g.h {
            let src = &x[img * g.image() + iy * g.w * c..][..g.w * c];
            padded[((img * ph + iy + g.pad) * pw + g.pad) * c..][..g.w * c].copy_from_slice(src);
        }
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
    let path = isa();
    // SAFETY: each task writes every output value of its chunk's images (`image` writes all
    // pixels of an image), and `applies` checked that this CPU runs the path.
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
            // One padded image at a time, reused, so that it stays in cache while it is read.
            let mut padded = vec![0f32; (g.h + 2 * g.pad) * (g.w + 2 * g.pad) * g.c_in];
            for img in 0..count {
                pad_images(g, &x[(first + img) * g.image()..], 1, &mut padded);
                let out_img = &mut out[img * n * m..(img + 1) * n * m];
                let pieces = &pieces[img * n..(img + 1) * n];
                #[cfg(target_arch = "x86_64")]
                match (path, m) {
                    (Isa::Avx512, 16) => image_avx512::<1, 14>(g, &padded, wr, bias, out_img, pieces),
                    (Isa::Avx512, _) => image_avx512::<2, 14>(g, &padded, wr, bias, out_img, pieces),
                    _ => image_avx2::<2, 6>(g, &padded, wr, bias, out_img, pieces),
                }
                #[cfg(not(target_arch = "x86_64"))]
                unreachable!("no {path:?} off x86_64: {out_img:?} {pieces:?}");
            }
        })
    }
}

/// The vector registers a kernel runs on, as plain functions so that one kernel serves both
/// paths; each is inlined into a function compiled for its instructions
/// (`#[target_feature]`), where the intrinsics become single instructions.
#[cfg(target_arch = "x86_64")]
trait Lanes {
    type V: Copy;
    const WIDTH: usize;
    unsafe fn zero() -> Self::V;
    unsafe fn load(p: *const f32) -> Self::V;
    unsafe fn store(p: *mut f32, v: Self::V);
    unsafe fn splat(x: f32) -> Self::V;
    /// a · b + c, rounded once.
    unsafe fn fmadd(a: Self::V, b: Self::V, c: Self::V) -> Self::V;
    unsafe fn add(a: Self::V, b: Self::V) -> Self::V;
}

#[cfg(target_arch = "x86_64")]
struct Avx512;

#[cfg(target_arch = "x86_64")]
struct Avx2;

#[cfg(target_arch = "x86_64")]
macro_rules! lanes {
    ($isa:ty, $v:ty, $width:expr, $zero:ident, $load:ident, $store:ident, $splat:ident, $fmadd:ident, $add:ident) => {
        // SAFETY (each function): the caller runs on a CPU with the path's instructions and
        // passes pointers to `WIDTH` floats.
        impl Lanes for $isa {
            type V = $v;
            const WIDTH: usize = $width;
            #[inline(always)]
            unsafe fn zero() -> $v {
                unsafe { std::arch::x86_64::$zero() }
            }
            #[inline(always)]
            unsafe fn load(p: *const f32) -> $v {
                unsafe { std::arch::x86_64::$load(p) }
            }
            #[inline(always)]
            unsafe fn store(p: *mut f32, v: $v) {
                unsafe { std::arch::x86_64::$store(p, v) }
            }
            #[inline(always)]
            unsafe fn splat(x: f32) -> $v {
                unsafe { std::arch::x86_64::$splat(x) }
            }
            #[inline(always)]
            unsafe fn fmadd(a: $v, b: $v, c: $v) -> $v {
                unsafe { std::arch::x86_64::$fmadd(a, b, c) }
            }
            #[inline(always)]
            unsafe fn add(a: $v, b: $v) -> $v {
                unsafe { std::arch::x86_64::$add(a, b) }
            }
        }
    };
}

#[cfg(target_arch = "x86_64")]
lanes!(
    Avx512,
    std::arch::x86_64::__m512,
    16,
    _mm512_setzero_ps,
    _mm512_loadu_ps,
    _mm512_storeu_ps,
    _mm512_set1_ps,
    _mm512_fmadd_ps,
    _mm512_add_ps
);
#[cfg(target_arch = "x86_64")]
lanes!(
    Avx2,
    std::arch::x86_64::__m256,
    8,
    _mm256_setzero_ps,
    _mm256_loadu_ps,
    _mm256_storeu_ps,
    _mm256_set1_ps,
    _mm256_fmadd_ps,
    _mm256_add_ps
);

/// A kernel generic over [`Lanes`], compiled for one path's instructions: `$name::<..>` calls
/// `$kernel::<$lanes, ..>` inside a function with `#[target_feature]`, where it is inlined.
#[cfg(target_arch = "x86_64")]
macro_rules! compiled_for {
    ($name:ident = $kernel:ident::<$lanes:ty, $($c:ident),*> on $features:literal ($($arg:ident: $ty:ty),*)) => {
        #[doc = concat!("[`", stringify!($kernel), "`] compiled for ", $features, ".")]
        ///
        /// # Safety
        #[doc = concat!("As [`", stringify!($kernel), "`]'s, on a CPU with ", $features, ".")]
        #[target_feature(enable = $features)]
        unsafe fn $name<$(const $c: usize),*>($($arg: $ty),*) {
            // SAFETY: the caller's contract.
            unsafe { $kernel::<$lanes, $($c),*>($($arg),*) }
        }
    };
}

#[cfg(target_arch = "x86_64")]
compiled_for!(image_avx512 = image::<Avx512, V, P> on "avx512f" (g: &Geometry, padded: &[f32], wr: &[f32], bias: &[f32], out: &mut [MaybeUninit<f32>], pieces: &[usize]));
#[cfg(target_arch = "x86_64")]
compiled_for!(image_avx2 = image::<Avx2, V, P> on "avx2,fma" (g: &Geometry, padded: &[f32], wr: &[f32], bias: &[f32], out: &mut [MaybeUninit<f32>], pieces: &[usize]));
#[cfg(target_arch = "x86_64")]
compiled_for!(wgrad_tile_avx512 = wgrad_tile::<Avx512, V, R> on "avx512f" (padded: &[f32], dy: &[f32], x_at: &[usize], dy_at: &[usize], at: (usize, usize), sums: &mut [f32], m: usize));
#[cfg(target_arch = "x86_64")]
compiled_for!(wgrad_tile_avx2 = wgrad_tile::<Avx2, V, R> on "avx2,fma" (padded: &[f32], dy: &[f32], x_at: &[usize], dy_at: &[usize], at: (usize, usize), sums: &mut [f32], m: usize));

/// One image: `V` vectors of output channels per pixel, `P` pixels per register block where gemm
/// would have summed them alike (`pieces`, per pixel: [`depth_piece`]), else one by one.
///
/// # Safety
/// The CPU must run `L`'s instructions; `padded` (the image with its zero border: [`pad_images`]),
/// `wr`, `bias`, `out` and `pieces` must have the sizes `g` gives, and `g.c_out` = V · `L::WIDTH`.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn image<L: Lanes, const V: usize, const P: usize>(
    g: &Geometry,
    padded: &[f32],
    wr: &[f32],
    bias: &[f32],
    out: &mut [MaybeUninit<f32>],
    pieces: &[usize],
) {
    debug_assert_eq!(g.c_out, L::WIDTH * V);
    for oy in 0..g.oh {
        let kh = g.kh_range(oy);
        let row = &pieces[oy * g.ow..(oy + 1) * g.ow];
        let mut ox = 0;
        while ox + P <= g.ow && row[ox..ox + P].iter().all(|&p| p == row[ox]) {
            // SAFETY: pixels ox..ox + P of row oy lie in the output and their taps in `padded`.
            unsafe { block::<L, V, P>(g, padded, wr, bias, kh, row[ox], oy, ox, out) };
            ox += P;
        }
        while ox < g.ow {
            // SAFETY: as above, one pixel.
            unsafe { block::<L, V, 1>(g, padded, wr, bias, kh, row[ox], oy, ox, out) };
            ox += 1;
        }
    }
}

/// Output pixels ox..ox + P of row oy, all V · `L::WIDTH` channels, in registers, summed as gemm
/// sums them: from zero in pieces of `piece` terms, each added to the bias (its microkernel), or,
/// with `piece` 0, from the bias term by term (its matrix-vector kernel).
///
/// # Safety
/// `L`'s instructions; pixels ox..ox + P of row oy must lie in the output, and kernel rows `kh`
/// must read image rows of `padded` (input rows oy + kh − pad inside the image).
#[cfg(target_arch = "x86_64")]
#[allow(clippy::too_many_arguments)]
#[inline(always)]
unsafe fn block<L: Lanes, const V: usize, const P: usize>(
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
    let (c, m, k, pw) = (g.c_in, g.c_out, g.k, g.w + 2 * g.pad);
    let (pp, wp, bp) = (padded.as_ptr(), wr.as_ptr(), bias.as_ptr());
    let op = out.as_mut_ptr() as *mut f32;
    let lane = L::WIDTH;
    // SAFETY (every pointer below): in bounds by the caller's contract: padded rows oy + kh <
    // h + 2·pad, columns ox + j + kw < ox + P + k − 1 ≤ w + 2·pad, kernel rows < k·k·c, outputs
    // < oh·ow.
    unsafe {
        let y = |j: usize, v: usize| op.add((oy * g.ow + ox + j) * m + lane * v);
        let mut b = [L::zero(); V];
        for (v, bv) in b.iter_mut().enumerate() {
            *bv = L::load(bp.add(lane * v));
        }
        let mut acc = [[L::zero(); V]; P];
        if piece == 0 {
            for row in acc.iter_mut() {
                *row = b;
            }
        }
        // Terms summed in the current piece, and whether a piece was added to the output yet.
        let (mut summed, mut added) = (0usize, false);
        for kh in kh.0..kh.1 {
            for kw in 0..k {
                let xb = pp.add(((oy + kh) * pw + ox + kw) * c);
                let wb = wp.add((kh * k + kw) * c * m);
                let mut ci = 0;
                while ci < c {
                    let end = if piece == 0 { c } else { c.min(ci + piece - summed) };
                    for ci in ci..end {
                        let mut w = [L::zero(); V];
                        for (v, wv) in w.iter_mut().enumerate() {
                            *wv = L::load(wb.add(ci * m + lane * v));
                        }
                        for (j, row) in acc.iter_mut().enumerate() {
                            let xv = L::splat(*xb.add(j * c + ci));
                            for (a, wv) in row.iter_mut().zip(&w) {
                                *a = L::fmadd(xv, *wv, *a);
                            }
                        }
                    }
                    summed += end - ci;
                    ci = end;
                    if piece != 0 && summed == piece {
                        for (j, row) in acc.iter_mut().enumerate() {
                            for (v, a) in row.iter_mut().enumerate() {
                                let base = if added { L::load(y(j, v)) } else { b[v] };
                                L::store(y(j, v), L::add(*a, base));
                                *a = L::zero();
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
                    let total = if piece == 0 { *a } else { L::add(*a, if added { L::load(y(j, v)) } else { b[v] }) };
                    L::store(y(j, v), total);
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
/// a tile of R taps (consecutive (kw, c) of one kernel row, contiguous in a padded image) × V
/// vectors of channels (all of them; on AVX2 16 at a time, which leaves registers for 6 taps)
/// stays in registers while the block's pixels stream past: per pixel, V vector loads of dy and
/// R broadcast input values, R·V FMAs.
pub(super) fn weight_grad_chunk(
    g: &Geometry,
    groups: &[super::conv::Taps],
    x_chunk: &[f32],
    dy_chunk: &[f32],
    count: usize,
) -> Option<Vec<f32>> {
    if !applies_to_weight_grad(g) {
        return None;
    }
    let blocks = g.blocks(groups, count);
    if blocks.iter().any(|b| b.pixels.len() <= 2) {
        return None;
    }
    let (kk, m, n, c) = (g.kk(), g.c_out, g.n(), g.c_in);
    let (ph, pw) = (g.h + 2 * g.pad, g.w + 2 * g.pad);
    let mut padded = vec![0f32; count * ph * pw * c];
    pad_images(g, x_chunk, count, &mut padded);
    // dW' as [(kh, kw, c)][m] while summing, so that its rows are vectors of channels.
    let mut sums = vec![0f32; kk * m];
    let mut db = vec![0f32; m];
    let (mut x_at, mut dy_at) = (Vec::new(), Vec::new());
    let row = g.k * c;
    let path = isa();
    // Accumulators a tile may hold beside its V dy vectors and a broadcast: 24 of AVX-512's 32
    // registers, 12 of AVX2's 16 (where 16 channels are taken at a time); the row is cut into
    // tiles of near-equal width.
    let (v, lanes, accumulators) = match path {
        Isa::Avx512 => (m / 16, 16, 24),
        _ => (2, 8, 12),
    };
    let tiles = row.div_ceil(accumulators / v);
    let r = row.div_ceil(tiles);
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
            for c0 in (0..m).step_by(v * lanes) {
                let (dy_from, sums_from) = (&dy_chunk[c0..], &mut sums[c0..]);
                for t0 in (0..row).step_by(r) {
                    let (at, width) = ((kh * pw * c + t0, kh * row + t0), r.min(row - t0));
                    #[cfg(target_arch = "x86_64")]
                    // SAFETY: `applies_to_weight_grad` checked the path; the pixels' padded rows
                    // oy + kh < h + 2·pad and columns ox + kw < w + 2·pad lie in `padded`, taps
                    // kh·k·C + t0 + width ≤ k·k·C, channels c0 + V·lanes ≤ M.
                    unsafe {
                        macro_rules! tiles {
                        ($($path:ident => $tile:ident, $v:literal: $($r:literal)*);*) => {
                            match (path, v, width) {
                                $($((Isa::$path, $v, $r) => $tile::<$v, $r>(&padded, dy_from, &x_at, &dy_at, at, sums_from, m),)*)*
                                _ => unreachable!("no {path:?} tile of {width} taps × {v} vectors"),
                            }
                        };
                    }
                        tiles!(Avx512 => wgrad_tile_avx512, 1: 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24;
                           Avx512 => wgrad_tile_avx512, 2: 1 2 3 4 5 6 7 8 9 10 11 12;
                           Avx2 => wgrad_tile_avx2, 2: 1 2 3 4 5 6)
                    }
                    #[cfg(not(target_arch = "x86_64"))]
                    unreachable!("no {path:?} off x86_64: {at:?} {width} {dy_from:?} {sums_from:?}");
                }
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

/// One tile of R taps × V vectors of channels over a block's pixels (`x_at`, `dy_at`: where each
/// pixel's padded input window and dy row start), added to `sums` ([tap][m]).
///
/// # Safety
/// `L`'s instructions; `padded[x_at[i] + at.0 + R]` and `dy[dy_at[i] + V · L::WIDTH]` in bounds
/// for every pixel, `sums[(at.1 + R)·m]` too.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
unsafe fn wgrad_tile<L: Lanes, const V: usize, const R: usize>(
    padded: &[f32],
    dy: &[f32],
    x_at: &[usize],
    dy_at: &[usize],
    at: (usize, usize),
    sums: &mut [f32],
    m: usize,
) {
    let lane = L::WIDTH;
    // SAFETY: the caller's contract.
    unsafe {
        let (xp, dp, sp) = (padded.as_ptr().add(at.0), dy.as_ptr(), sums.as_mut_ptr().add(at.1 * m));
        let mut acc = [[L::zero(); V]; R];
        for (&xa, &da) in x_at.iter().zip(dy_at) {
            let mut d = [L::zero(); V];
            for (v, dv) in d.iter_mut().enumerate() {
                *dv = L::load(dp.add(da + lane * v));
            }
            let x = xp.add(xa);
            for (r, row) in acc.iter_mut().enumerate() {
                let xv = L::splat(*x.add(r));
                for (a, dv) in row.iter_mut().zip(&d) {
                    *a = L::fmadd(xv, *dv, *a);
                }
            }
        }
        for (r, row) in acc.iter().enumerate() {
            for (v, a) in row.iter().enumerate() {
                let s = sp.add(r * m + lane * v);
                L::store(s, L::add(*a, L::load(s)));
            }
        }
    }
}
