//! Convolution on NHWC tensors, stride 1, square kernel, zero padding, with bias.
//!
//! With channels last, one im2col row (one output pixel) is k runs of k·C contiguous input
//! values, and the gemm output is already the NHWC output. Output pixels are processed in
//! blocks of `BLOCK` rows so that each block's columns stay in L2 while gemm consumes them.

use candle_core::{CpuStorage, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::{chunking, direct, matmul, par_written, slice};

/// Output pixels per im2col block (at most BLOCK × k·k·C floats: 1.6 MB for the 128-channel 5×5
/// layer, more than the 1 MiB L2 of the machine these results come from; not re-tuned).
const BLOCK: usize = 128;

/// Geometry of one convolution (input [B, H, W, C], kernel [M, C, k, k]).
#[derive(Debug, Clone, Copy)]
pub(super) struct Geometry {
    pub(super) batch: usize,
    pub(super) c_in: usize,
    pub(super) h: usize,
    pub(super) w: usize,
    pub(super) c_out: usize,
    pub(super) k: usize,
    pub(super) pad: usize,
    pub(super) oh: usize,
    pub(super) ow: usize,
}

impl Geometry {
    fn new(x: &[usize], w: &[usize], pad: usize) -> Result<Geometry> {
        let (&[batch, h, wd, c_in], &[c_out, c_in_w, k, k2]) = (x, w) else {
            candle_core::bail!("conv2d: expected a [B, H, W, C] input and a [M, C, k, k] kernel, got {x:?} and {w:?}");
        };
        if c_in != c_in_w || k != k2 || h + 2 * pad < k || wd + 2 * pad < k {
            candle_core::bail!("conv2d: input {x:?} and kernel {w:?} do not fit (padding {pad})");
        }
        Ok(Geometry { batch, c_in, h, w: wd, c_out, k, pad, oh: h + 2 * pad - k + 1, ow: wd + 2 * pad - k + 1 })
    }

    /// Columns of the im2col matrix: k·k·C, ordered (kh, kw, c).
    pub(super) fn kk(&self) -> usize {
        self.c_in * self.k * self.k
    }

    /// Output pixels per image.
    pub(super) fn n(&self) -> usize {
        self.oh * self.ow
    }

    pub(super) fn image(&self) -> usize {
        self.h * self.w * self.c_in
    }

    /// Chunks of about 4,096 output pixels, so that an edge group's blocks (one output row per
    /// image) are not cut to a single image's row.
    pub(super) fn chunks(&self) -> Vec<(usize, usize)> {
        chunking(self.batch, (4096 / self.n().max(1)).max(1))
    }

    /// The valid kw range for output column ox: input column ox + kw − pad inside the image.
    fn kw_range(&self, ox: usize) -> (usize, usize) {
        let lo = self.pad.saturating_sub(ox);
        let hi = (self.w + self.pad - ox).min(self.k);
        (lo, hi.max(lo))
    }

    /// The kernel rows kh that fall inside the image for output row oy: input row oy + kh − pad.
    pub(super) fn kh_range(&self, oy: usize) -> (usize, usize) {
        let lo = self.pad.saturating_sub(oy);
        let hi = (self.h + self.pad - oy).min(self.k);
        (lo, hi.max(lo))
    }

    /// The output pixels of one image grouped by [`Geometry::kh_range`], in row order. Where a
    /// kernel row is narrower than a vector (the images' one channel), the edge groups' small
    /// products would cost more than the zeros they skip: one group then takes every kernel row.
    pub(super) fn row_groups(&self) -> Vec<Taps> {
        if self.k * self.c_in < 16 {
            return vec![Taps { kh: (0, self.k), pixels: (0..self.n()).collect() }];
        }
        let mut groups: Vec<Taps> = Vec::new();
        for oy in 0..self.oh {
            let kh = self.kh_range(oy);
            let pixels = (oy * self.ow..(oy + 1) * self.ow).collect::<Vec<_>>();
            match groups.iter_mut().find(|g| g.kh == kh) {
                Some(g) => g.pixels.extend(pixels),
                None => groups.push(Taps { kh, pixels }),
            }
        }
        groups
    }

    /// The blocks of a chunk of `count` images: each of `groups` ([`Geometry::row_groups`], built
    /// once per operation) in every image of the chunk (indices counted across the chunk), cut
    /// into runs of at most `BLOCK`, across image boundaries so that a small layer's products are
    /// not cut at every image.
    pub(super) fn blocks(&self, groups: &[Taps], count: usize) -> Vec<Taps> {
        let n = self.n();
        let mut blocks = Vec::new();
        for group in groups {
            let all: Vec<usize> = (0..count).flat_map(|img| group.pixels.iter().map(move |p| img * n + p)).collect();
            blocks.extend(all.chunks(BLOCK).map(|pixels| Taps { kh: group.kh, pixels: pixels.to_vec() }));
        }
        blocks
    }

    /// Columns of a block's im2col rows: the kernel rows `kh` only, each k·C wide.
    pub(super) fn cols(&self, kh: (usize, usize)) -> usize {
        (kh.1 - kh.0) * self.k * self.c_in
    }

    /// Where kernel row `kh.0` starts along the (kh, kw, c) dimension of W' and dW'.
    pub(super) fn first_column(&self, kh: (usize, usize)) -> usize {
        kh.0 * self.k * self.c_in
    }

    /// The im2col rows of `block` (pixels of a chunk of images at `x_chunk`): row r, pixel
    /// (oy, ox) of image i, holds x[oy + kh − pad, ox + kw − pad, c] of image i at column
    /// ((kh − kh_lo)·k + kw)·C + c, zero where the input pixel falls outside the image.
    fn im2col(&self, x_chunk: &[f32], block: &Taps, col: &mut [f32]) {
        let (c, n, (kh_lo, kh_hi)) = (self.c_in, self.n(), block.kh);
        let width = self.cols(block.kh);
        let run = self.k * c;
        for (r, &p) in block.pixels.iter().enumerate() {
            let (img, pixel) = (p / n, p % n);
            let x_img = &x_chunk[img * self.image()..(img + 1) * self.image()];
            let (oy, ox) = (pixel / self.ow, pixel % self.ow);
            let (lo, hi) = self.kw_range(ox);
            let row = &mut col[r * width..(r + 1) * width];
            for kh in kh_lo..kh_hi {
                let out = &mut row[(kh - kh_lo) * run..(kh - kh_lo + 1) * run];
                let iy = oy + kh;
                if iy < self.pad || iy - self.pad >= self.h {
                    out.fill(0.0);
                    continue;
                }
                out[..lo * c].fill(0.0);
                out[hi * c..].fill(0.0);
                let src = ((oy + kh - self.pad) * self.w + ox + lo - self.pad) * c;
                out[lo * c..hi * c].copy_from_slice(&x_img[src..src + (hi - lo) * c]);
            }
        }
    }
}

/// Output pixels whose kernel rows `kh.0..kh.1` are all that fall inside the image (or every
/// kernel row, for the one group of a narrow layer).
pub(super) struct Taps {
    pub(super) kh: (usize, usize),
    pub(super) pixels: Vec<usize>,
}

/// The kernel [M, C, k, k] as the gemm operand W'[(kh, kw, c), m].
fn reorder_kernel(w: &[f32], g: &Geometry) -> Vec<f32> {
    let (m, c, k) = (g.c_out, g.c_in, g.k);
    let mut out = vec![0f32; g.kk() * m];
    for mo in 0..m {
        for ci in 0..c {
            for kh in 0..k {
                for kw in 0..k {
                    out[((kh * k + kw) * c + ci) * m + mo] = w[((mo * c + ci) * k + kh) * k + kw];
                }
            }
        }
    }
    out
}

/// y = conv(x, W') + b for the geometry `g`, with the kernel already in gemm order
/// ([`reorder_kernel`]).
/// ([`direct`] where it applies: the same sums, faster for 16 or 32 output channels).
fn forward(g: &Geometry, x: &[f32], wr: &[f32], b: &[f32]) -> Vec<f32> {
    if direct::applies(g) {
        direct::forward(g, x, wr, b)
    } else {
        forward_gemm(g, x, wr, b)
    }
}

/// [`forward`] by im2col + gemm.
fn forward_gemm(g: &Geometry, x: &[f32], wr: &[f32], b: &[f32]) -> Vec<f32> {
    let (kk, n, m) = (g.kk(), g.n(), g.c_out);
    let per_chunk = g.chunks().first().map_or(1, |c| c.1) * n * m;
    let groups = g.row_groups();
    // SAFETY: the blocks of a chunk cover each of its pixels once, and each pixel's outputs
    // are written from the block's product.
    unsafe {
        par_written(g.batch * n * m, per_chunk, |offset, out| {
            let (first, count) = (offset / (n * m), out.len() / (n * m));
            let mut col = vec![0f32; BLOCK * kk];
            let mut product = vec![0f32; BLOCK * m];
            for block in g.blocks(&groups, count) {
                let (rows, width) = (block.pixels.len(), g.cols(block.kh));
                g.im2col(&x[first * g.image()..], &block, &mut col);
                for row in product[..rows * m].chunks_mut(m) {
                    row.copy_from_slice(b);
                }
                let taps = &wr[g.first_column(block.kh) * m..];
                matmul(rows, m, width, &mut product, m, 1, true, &col, width, 1, taps, m, 1);
                for (&p, row) in block.pixels.iter().zip(product.chunks(m)) {
                    for (d, &v) in out[p * m..(p + 1) * m].iter_mut().zip(row) {
                        d.write(v);
                    }
                }
            }
        })
    }
}

/// y = conv(x, w) + b on NHWC tensors.
struct Conv2d {
    pad: usize,
}

impl CustomOp3 for Conv2d {
    fn name(&self) -> &'static str {
        "fast-conv2d-nhwc"
    }

    fn cpu_fwd(
        &self,
        xs: &CpuStorage,
        xl: &Layout,
        ws: &CpuStorage,
        wl: &Layout,
        bs: &CpuStorage,
        bl: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let g = Geometry::new(xl.dims(), wl.dims(), self.pad)?;
        let (x, w, b) =
            (slice(xs, xl, "conv2d input")?, slice(ws, wl, "conv2d kernel")?, slice(bs, bl, "conv2d bias")?);
        let m = g.c_out;
        if b.len() != m {
            candle_core::bail!("conv2d: {} biases for {m} output channels", b.len());
        }
        let y = forward(&g, x, &reorder_kernel(w, &g), b);
        Ok((CpuStorage::F32(y), Shape::from((g.batch, g.oh, g.ow, m))))
    }

    fn bwd(
        &self,
        x: &Tensor,
        w: &Tensor,
        _b: &Tensor,
        _y: &Tensor,
        dy: &Tensor,
    ) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let dy = dy.contiguous()?;
        let dx = if x.track_op() {
            Some(dy.apply_op2_no_bwd(w, &InputGrad { pad: self.pad, x_dims: x.dims().to_vec() })?)
        } else {
            None
        };
        let packed = dy.apply_op2_no_bwd(x, &WeightGrad { pad: self.pad, w_dims: w.dims().to_vec() })?;
        let wn = w.elem_count();
        let dw = packed.narrow(0, 0, wn)?.reshape(w.shape())?;
        let db = packed.narrow(0, wn, w.dim(0)?)?;
        Ok((dx, Some(dw), Some(db)))
    }
}

/// dx = conv(dy, W flipped in space with its channels swapped), padded by k − 1 − pad: the
/// adjoint of a stride-1 convolution is a convolution. As one product its depth is k·k·M
/// (not M, as dy · W'ᵀ followed by a col2im scatter would be), which keeps the microkernels
/// busy on the wide layers.
struct InputGrad {
    pad: usize,
    x_dims: Vec<usize>,
}

impl CustomOp2 for InputGrad {
    fn name(&self) -> &'static str {
        "fast-conv2d-nhwc-input-grad"
    }

    fn cpu_fwd(&self, dys: &CpuStorage, dyl: &Layout, ws: &CpuStorage, wl: &Layout) -> Result<(CpuStorage, Shape)> {
        let g = Geometry::new(&self.x_dims, wl.dims(), self.pad)?;
        let (dy, w) = (slice(dys, dyl, "conv2d output gradient")?, slice(ws, wl, "conv2d kernel")?);
        let (c, m, k) = (g.c_in, g.c_out, g.k);
        if self.pad >= k {
            candle_core::bail!("conv2d: padding {} is not below the kernel size {k}", self.pad);
        }
        // The flipped kernel in the adjoint's gemm order, W'[(kh, kw, m), c] = w[m, c, k − 1 − kh,
        // k − 1 − kw] (what `reorder_kernel` would make of the flipped [C, M, k, k] kernel).
        let mut flipped = vec![0f32; w.len()];
        for mo in 0..m {
            for ci in 0..c {
                for kh in 0..k {
                    for kw in 0..k {
                        flipped[((kh * k + kw) * m + mo) * c + ci] =
                            w[((mo * c + ci) * k + (k - 1 - kh)) * k + (k - 1 - kw)];
                    }
                }
            }
        }
        let adjoint = Geometry::new(&[g.batch, g.oh, g.ow, m], &[c, m, k, k], k - 1 - self.pad)?;
        debug_assert_eq!((adjoint.oh, adjoint.ow), (g.h, g.w));
        let dx = forward(&adjoint, dy, &flipped, &vec![0f32; c]);
        Ok((CpuStorage::F32(dx), Shape::from(self.x_dims.clone())))
    }
}

/// [dW (M·C·k·k, the kernel's layout) | db (M)], summed chunk by chunk in a fixed order.
struct WeightGrad {
    pad: usize,
    w_dims: Vec<usize>,
}

impl CustomOp2 for WeightGrad {
    fn name(&self) -> &'static str {
        "fast-conv2d-nhwc-weight-grad"
    }

    fn cpu_fwd(&self, dys: &CpuStorage, dyl: &Layout, xs: &CpuStorage, xl: &Layout) -> Result<(CpuStorage, Shape)> {
        let g = Geometry::new(xl.dims(), &self.w_dims, self.pad)?;
        let (dy, x) = (slice(dys, dyl, "conv2d output gradient")?, slice(xs, xl, "conv2d input")?);
        let (kk, n, m) = (g.kk(), g.n(), g.c_out);
        let groups = g.row_groups();
        let partials: Vec<Vec<f32>> = g
            .chunks()
            .par_iter()
            .map(|&(first, count)| {
                let (x_chunk, dy_chunk) = (&x[first * g.image()..], &dy[first * n * m..(first + count) * n * m]);
                direct::weight_grad_chunk(&g, &groups, x_chunk, dy_chunk, count)
                    .unwrap_or_else(|| weight_grad_chunk_gemm(&g, &groups, x_chunk, dy_chunk, count))
            })
            .collect();
        let mut total = vec![0f32; kk * m + m];
        for p in &partials {
            for (t, v) in total.iter_mut().zip(p) {
                *t += v;
            }
        }
        // Back to the kernel's [M, C, k, k] layout.
        let (c, k) = (g.c_in, g.k);
        let mut out = vec![0f32; kk * m + m];
        for mo in 0..m {
            for ci in 0..c {
                for kh in 0..k {
                    for kw in 0..k {
                        out[((mo * c + ci) * k + kh) * k + kw] = total[mo * kk + (kh * k + kw) * c + ci];
                    }
                }
            }
        }
        out[kk * m..].copy_from_slice(&total[kk * m..]);
        Ok((CpuStorage::F32(out), Shape::from(kk * m + m)))
    }
}

/// [dW' ([m][(kh, kw, c)]) | db (M)] of one chunk of `count` images (`x_chunk` and `dy_chunk`
/// start at its first image), by im2col + gemm, block by block in a fixed order.
fn weight_grad_chunk_gemm(g: &Geometry, groups: &[Taps], x_chunk: &[f32], dy_chunk: &[f32], count: usize) -> Vec<f32> {
    let (kk, m) = (g.kk(), g.c_out);
    let mut col = vec![0f32; BLOCK * kk];
    let mut dy_rows = vec![0f32; BLOCK * m];
    // dW' is stored [m][(kh, kw, c)] so that the product's vectorised dimension is k·k·C, not M
    // (a 32-channel layer would fill only half of an AVX-512 microkernel's rows).
    let mut acc = vec![0f32; kk * m + m];
    let (dw, db) = acc.split_at_mut(kk * m);
    for block in g.blocks(groups, count) {
        let (rows, width) = (block.pixels.len(), g.cols(block.kh));
        g.im2col(x_chunk, &block, &mut col);
        for (&p, row) in block.pixels.iter().zip(dy_rows.chunks_mut(m)) {
            row.copy_from_slice(&dy_chunk[p * m..(p + 1) * m]);
        }
        let dyb = &dy_rows[..rows * m];
        let taps = &mut dw[g.first_column(block.kh)..];
        matmul(width, m, rows, taps, 1, kk, true, &col, 1, width, dyb, m, 1);
        for row in dyb.chunks(m) {
            for (d, v) in db.iter_mut().zip(row) {
                *d += v;
            }
        }
    }
    acc
}

/// Convolution (stride 1, zero padding `pad`) plus bias of an NHWC input `[B, H, W, C]` with a
/// kernel `[M, C, k, k]`; the output is NHWC `[B, H', W', M]`.
pub fn conv2d_nhwc(x: &Tensor, w: &Tensor, b: &Tensor, pad: usize) -> Result<Tensor> {
    x.contiguous()?.apply_op3(&w.contiguous()?, &b.contiguous()?, Conv2d { pad })
}

#[cfg(test)]
mod tests {
    use rand::Rng;

    use super::*;
    use crate::nn::kernels::isa;

    /// The direct convolution gives gemm's sums bit for bit, so runs do not depend on which path
    /// computed a layer: depths in one piece and in several (800, 1,600: gemm's depth blocks),
    /// blocks of at most 64 rows and wider ones, a one-row block (a group of 129 pixels), the
    /// 1-channel layer, 16 and 32 output channels; the weight gradient likewise.
    #[test]
    fn direct_convolution_is_gemms_arithmetic_bit_for_bit() {
        if !direct::applies(&Geometry::new(&[1, 28, 28, 1], &[16, 1, 5, 5], 2).unwrap()) {
            eprintln!(
                "skipped: the direct convolution runs on AVX-512 and AVX2, not on the {} path",
                isa::isa().name()
            );
            return;
        }
        let mut rng = crate::util::rng_for(1, "direct-convolution-test");
        let mut random = |len: usize| -> Vec<f32> { (0..len).map(|_| rng.random_range(-1.0f32..1.0)).collect() };
        for (batch, c, h, w, m, k, pad) in [
            (2, 1, 28, 28, 16, 5, 2),
            (3, 16, 28, 28, 16, 5, 2),
            (3, 32, 14, 14, 32, 5, 2),
            (5, 16, 14, 14, 32, 5, 2),
            (40, 64, 7, 7, 32, 5, 2),
            (1, 16, 5, 43, 16, 3, 1),
            (2, 8, 9, 11, 32, 3, 2),
        ] {
            let g = Geometry::new(&[batch, h, w, c], &[m, c, k, k], pad).unwrap();
            let (x, kernel, b) = (random(batch * h * w * c), random(m * c * k * k), random(m));
            let wr = reorder_kernel(&kernel, &g);
            // AVX2 leaves the forward of 32 channels to gemm.
            assert_eq!(direct::applies(&g), m == 16 || isa::isa() == isa::Isa::Avx512, "{g:?}");
            if direct::applies(&g) {
                let (ours, gemm) = (direct::forward(&g, &x, &wr, &b), forward_gemm(&g, &x, &wr, &b));
                let differ = ours.iter().zip(&gemm).filter(|(a, b)| a.to_bits() != b.to_bits()).count();
                assert_eq!(differ, 0, "{g:?}: {differ} of {} outputs differ", ours.len());
            }
            // The weight gradient, chunk by chunk, where no block is left to gemm's `gevv`.
            let (dy, groups) = (random(batch * g.n() * m), g.row_groups());
            let mut direct_chunks = 0;
            for (first, count) in g.chunks() {
                let (xc, dyc) = (&x[first * g.image()..], &dy[first * g.n() * m..(first + count) * g.n() * m]);
                let gemm = weight_grad_chunk_gemm(&g, &groups, xc, dyc, count);
                let Some(ours) = direct::weight_grad_chunk(&g, &groups, xc, dyc, count) else { continue };
                direct_chunks += 1;
                let differ = ours.iter().zip(&gemm).filter(|(a, b)| a.to_bits() != b.to_bits()).count();
                assert_eq!(
                    differ,
                    0,
                    "{g:?} weight gradient, images {first}+{count}: {differ} of {} differ",
                    ours.len()
                );
            }
            // Only chunks with a block of one or two rows (here the 129-pixel group's) go to gemm.
            let short = |count: usize| g.blocks(&groups, count).iter().any(|b| b.pixels.len() <= 2);
            let expected = g.chunks().iter().filter(|c| !short(c.1)).count();
            assert_eq!(direct_chunks, expected, "{g:?}: chunks whose weight gradient was computed directly");
        }
    }
}
