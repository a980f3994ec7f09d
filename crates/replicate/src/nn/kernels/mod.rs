//! Fast CPU kernels for the layers LeNets++ uses, as candle custom ops with their own backward,
//! so autograd and the rest of candle keep working. f32, CPU only; `nn::lenetspp` uses them on
//! a CPU and candle's ops elsewhere.
//!
//! Activations are channels-last (NHWC) inside the backbone: an im2col row is then k runs of
//! k·C contiguous values and the gemm output is the NHWC output itself.
//!
//! * Convolution (stride 1, zero padding): im2col + gemm forward, in L2-sized blocks of output
//!   pixels grouped so that kernel rows on the padding are skipped; weight gradient by gemm over
//!   the same columns; for 16 or 32 output channels on AVX-512, a direct convolution and weight
//!   gradient with the same sums bit for bit (`direct.rs`); input gradient as the forward
//!   convolution of dy with the flipped kernel, skipped when the input needs no gradient (the
//!   images). candle computes the input gradient with a direct `conv_transpose2d` loop, the
//!   slowest piece of its backward.
//! * PReLU and 2×2/2 max-pooling: one pass forward and one pass backward, no temporaries.
//!
//! Work is split over the batch in fixed chunks (rayon). Reductions over the batch (weight,
//! bias and slope gradients) are summed chunk by chunk in a fixed order, and the chunks do not
//! depend on the thread count, so results depend neither on thread scheduling nor on how many
//! threads run (`RAYON_NUM_THREADS`).

mod conv;
mod direct;
pub mod isa;
mod pointwise;

pub use conv::conv2d_nhwc;

/// Which version of these kernels' arithmetic a run was trained with: a change that moves float
/// rounding (the order of a sum) bumps it, so that `replicate verify` expects bit-identical
/// tables only from runs of the same revision. 1: the input gradient as dy · W'ᵀ scattered by
/// col2im, im2col blocks within one image (every run recorded before the manifest had the
/// column). 2: the input gradient as a convolution of dy with the flipped kernel; blocks that
/// run across images, grouped by the kernel rows inside the image; chunks of ~4,096 pixels.
pub const KERNEL_REVISION: u64 = 2;
pub use pointwise::{max_pool2_nhwc, prelu_channels_last};

use std::mem::MaybeUninit;

use candle_core::{CpuStorage, Layout, Result};
use rayon::prelude::*;

/// The f32 data of a contiguous tensor.
pub(crate) fn slice<'a>(storage: &'a CpuStorage, layout: &Layout, what: &str) -> Result<&'a [f32]> {
    let data = storage.as_slice::<f32>()?;
    match layout.contiguous_offsets() {
        Some((start, end)) => Ok(&data[start..end]),
        None => candle_core::bail!("{what}: the fast CPU kernels need a contiguous input"),
    }
}

/// Chunk counts are rounded up to a multiple of this, so that two threads (the machines these
/// results come from) get equal work; it is a constant, not the thread count, because the split
/// decides the order of the sums over the batch and so the rounding of every gradient.
const SPLIT: usize = 2;

/// Splits `batch` images into contiguous chunks of about `per_chunk`, with a chunk count that
/// is a multiple of [`SPLIT`], whatever the number of threads.
pub(crate) fn chunking(batch: usize, per_chunk: usize) -> Vec<(usize, usize)> {
    let wanted = batch.div_ceil(per_chunk.max(1)).max(1);
    let chunks = wanted.div_ceil(SPLIT) * SPLIT;
    let size = batch.div_ceil(chunks.min(batch.max(1)));
    (0..batch).step_by(size.max(1)).map(|s| (s, size.min(batch - s))).collect()
}

/// A vector of `len` floats written in parallel, `part` values per task (the last one may be
/// shorter): `write(offset, out)` gets the index of its first value and writes all of `out`.
/// `vec![0.0; len]` would spend a pass zeroing, on one thread while the other waits, memory
/// that these outputs overwrite anyway.
///
/// # Safety
/// `write` must initialise every element of the slice it is given.
pub(crate) unsafe fn par_written(
    len: usize,
    part: usize,
    write: impl Fn(usize, &mut [MaybeUninit<f32>]) + Sync,
) -> Vec<f32> {
    let mut out = Vec::with_capacity(len);
    let part = part.max(1);
    out.spare_capacity_mut()[..len].par_chunks_mut(part).enumerate().for_each(|(i, chunk)| write(i * part, chunk));
    // SAFETY: the caller's `write` initialised every element of every part, and the parts
    // cover 0..len.
    unsafe { out.set_len(len) };
    out
}

/// dst[m×n] (+)= lhs[m×k] · rhs[k×n], with element strides (row, column) for each matrix, on
/// this process's instruction set ([`isa::isa`]).
#[allow(clippy::too_many_arguments)]
pub(crate) fn matmul(
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [f32],
    dst_rs: usize,
    dst_cs: usize,
    accumulate: bool,
    lhs: &[f32],
    lhs_rs: usize,
    lhs_cs: usize,
    rhs: &[f32],
    rhs_rs: usize,
    rhs_cs: usize,
) {
    matmul_on(isa::isa(), m, n, k, dst, dst_rs, dst_cs, accumulate, lhs, lhs_rs, lhs_cs, rhs, rhs_rs, rhs_cs)
}

/// The GFLOP/s this machine's matrix products reach on all threads at once (one 512³ product
/// per thread, repeated): the practical peak `replicate bench` measures the layers against.
pub fn measured_peak_gflops() -> f64 {
    use rayon::prelude::*;
    let n = 512;
    let a: Vec<f32> = (0..n * n).map(|i| (i % 7) as f32 * 0.25).collect();
    let threads = rayon::current_num_threads();
    let product = |dst: &mut Vec<f32>| matmul(n, n, n, dst, n, 1, false, &a, n, 1, &a, n, 1);
    let mut outputs = vec![vec![0.0f32; n * n]; threads];
    outputs.par_iter_mut().for_each(product);
    let repeats = 4;
    let start = std::time::Instant::now();
    outputs.par_iter_mut().for_each(|dst| (0..repeats).for_each(|_| product(dst)));
    (threads * repeats) as f64 * 2.0 * (n * n * n) as f64 / start.elapsed().as_secs_f64() / 1e9
}

/// [`matmul`] on a given instruction set, which must be one this CPU runs ([`isa::Isa::detected`]
/// or narrower): checked, since a wrong one would execute instructions the CPU lacks.
#[allow(clippy::too_many_arguments)]
fn matmul_on(
    isa: isa::Isa,
    m: usize,
    n: usize,
    k: usize,
    dst: &mut [f32],
    dst_rs: usize,
    dst_cs: usize,
    accumulate: bool,
    lhs: &[f32],
    lhs_rs: usize,
    lhs_cs: usize,
    rhs: &[f32],
    rhs_rs: usize,
    rhs_cs: usize,
) {
    if m == 0 || n == 0 {
        return;
    }
    let last =
        |rows: usize, cols: usize, rs: usize, cs: usize| (rows.saturating_sub(1)) * rs + (cols.saturating_sub(1)) * cs;
    assert!(
        dst.len() > last(m, n, dst_rs, dst_cs)
            && (k == 0 || (lhs.len() > last(m, k, lhs_rs, lhs_cs) && rhs.len() > last(k, n, rhs_rs, rhs_cs))),
        "matmul: a matrix does not fit its slice"
    );
    assert!(isa::Isa::detected().runs(isa), "matmul: this CPU cannot run the {} path", isa.name());
    // SAFETY: the assertion above keeps every element the strides address inside its slice, and
    // `dst` is borrowed mutably, so it aliases neither input.
    unsafe {
        isa::gemm_f32(
            isa,
            m,
            n,
            k,
            dst.as_mut_ptr(),
            dst_cs as isize,
            dst_rs as isize,
            accumulate,
            lhs.as_ptr(),
            lhs_cs as isize,
            lhs_rs as isize,
            rhs.as_ptr(),
            rhs_cs as isize,
            rhs_rs as isize,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn chunking_covers_the_batch_in_order() {
        for (batch, per) in [(128, 1), (128, 16), (7, 3), (1, 20), (130, 20)] {
            let c = chunking(batch, per);
            assert_eq!(c.iter().map(|x| x.1).sum::<usize>(), batch);
            assert!(c.windows(2).all(|w| w[0].0 + w[0].1 == w[1].0));
        }
    }

    #[test]
    fn matmul_with_transposed_operands() {
        // [[1,2],[3,4]] · [[5,6],[7,8]]ᵀ = [[17,23],[39,53]]
        let a = [1.0, 2.0, 3.0, 4.0];
        let b = [5.0, 6.0, 7.0, 8.0];
        let mut c = [0.0; 4];
        matmul(2, 2, 2, &mut c, 2, 1, false, &a, 2, 1, &b, 1, 2);
        assert_eq!(c, [17.0, 23.0, 39.0, 53.0]);
        matmul(2, 2, 2, &mut c, 2, 1, true, &a, 2, 1, &b, 1, 2);
        assert_eq!(c, [34.0, 46.0, 78.0, 106.0]);
    }

    /// Every instruction set this CPU runs (AVX-512 where it has it, AVX2 on any x86-64 with
    /// it, scalar everywhere) gives the product of plain loops, to f32 rounding, on sizes that
    /// leave partial tiles, both output orders, and accumulating.
    #[test]
    fn every_instruction_set_this_cpu_runs_multiplies_right() {
        let (m, n, k) = (37, 19, 53);
        let value = |i: usize, salt: usize| (((i * 7919 + salt * 104729) % 2003) as f32 / 1001.0) - 1.0;
        let lhs: Vec<f32> = (0..m * k).map(|i| value(i, 1)).collect();
        let rhs: Vec<f32> = (0..k * n).map(|i| value(i, 2)).collect();
        let start: Vec<f32> = (0..m * n).map(|i| value(i, 3)).collect();
        let want = |accumulate: bool| -> Vec<f64> {
            (0..m * n)
                .map(|idx| {
                    let (i, j) = (idx / n, idx % n);
                    let dot: f64 = (0..k).map(|p| lhs[i * k + p] as f64 * rhs[p * n + j] as f64).sum();
                    dot + if accumulate { start[idx] as f64 } else { 0.0 }
                })
                .collect()
        };
        let detected = isa::Isa::detected();
        let paths: Vec<isa::Isa> =
            [isa::Isa::Avx512, isa::Isa::Avx2, isa::Isa::Scalar].into_iter().filter(|p| detected.runs(*p)).collect();
        assert!(paths.contains(&isa::Isa::Scalar));
        for path in paths {
            for accumulate in [false, true] {
                // Row-major output, then column-major (gemm transposes one of them internally).
                let mut rows = start.clone();
                matmul_on(path, m, n, k, &mut rows, n, 1, accumulate, &lhs, k, 1, &rhs, n, 1);
                let mut cols: Vec<f32> = (0..m * n).map(|idx| start[(idx % m) * n + idx / m]).collect();
                matmul_on(path, m, n, k, &mut cols, 1, m, accumulate, &lhs, k, 1, &rhs, n, 1);
                for (idx, w) in want(accumulate).into_iter().enumerate() {
                    let (i, j) = (idx / n, idx % n);
                    for (got, order) in [(rows[idx], "row-major"), (cols[j * m + i], "column-major")] {
                        assert!((got as f64 - w).abs() < 1e-4, "{}: {order} [{i},{j}] = {got}, want {w}", path.name());
                    }
                }
            }
        }
    }
}
