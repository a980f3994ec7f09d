//! Convolution on NHWC tensors, stride 1, square kernel, zero padding, with bias.
//!
//! With channels last, one im2col row (one output pixel) is k runs of k·C contiguous input
//! values, and the gemm output is already the NHWC output. Output pixels are processed in
//! blocks of `BLOCK` rows so that each block's columns stay in L2 while gemm consumes them.

use candle_core::{CpuStorage, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::{assume_written, chunking, matmul, par_written, slice};

/// Output pixels per im2col block (BLOCK × k·k·C floats: 512 KiB for the widest layer).
const BLOCK: usize = 128;

/// Geometry of one convolution (input [B, H, W, C], kernel [M, C, k, k]).
#[derive(Debug, Clone, Copy)]
struct Geometry {
    batch: usize,
    c_in: usize,
    h: usize,
    w: usize,
    c_out: usize,
    k: usize,
    pad: usize,
    oh: usize,
    ow: usize,
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
    fn kk(&self) -> usize {
        self.c_in * self.k * self.k
    }

    /// Output pixels per image.
    fn n(&self) -> usize {
        self.oh * self.ow
    }

    fn image(&self) -> usize {
        self.h * self.w * self.c_in
    }

    fn chunks(&self) -> Vec<(usize, usize)> {
        chunking(self.batch, (1024 / self.n().max(1)).max(1))
    }

    /// The valid kw range for output column ox: input column ox + kw − pad inside the image.
    fn kw_range(&self, ox: usize) -> (usize, usize) {
        let lo = self.pad.saturating_sub(ox);
        let hi = (self.w + self.pad - ox).min(self.k);
        (lo, hi.max(lo))
    }

    /// im2col rows for output pixels `start..start + rows` of the image at `x_img`: row r holds
    /// x[oy + kh − pad, ox + kw − pad, c] at column (kh·k + kw)·C + c, zero outside the image.
    fn im2col(&self, x_img: &[f32], start: usize, rows: usize, col: &mut [f32]) {
        let (kk, c) = (self.kk(), self.c_in);
        for r in 0..rows {
            let (oy, ox) = ((start + r) / self.ow, (start + r) % self.ow);
            let (lo, hi) = self.kw_range(ox);
            let row = &mut col[r * kk..(r + 1) * kk];
            for kh in 0..self.k {
                let out = &mut row[kh * self.k * c..(kh + 1) * self.k * c];
                let iy = oy + kh;
                if iy < self.pad || iy - self.pad >= self.h {
                    out.fill(0.0);
                    continue;
                }
                out[..lo * c].fill(0.0);
                out[hi * c..].fill(0.0);
                let src = ((iy - self.pad) * self.w + ox + lo - self.pad) * c;
                out[lo * c..hi * c].copy_from_slice(&x_img[src..src + (hi - lo) * c]);
            }
        }
    }

    /// The adjoint of `im2col`: dx_img += the block's columns.
    fn col2im(&self, col: &[f32], start: usize, rows: usize, dx_img: &mut [f32]) {
        let (kk, c) = (self.kk(), self.c_in);
        for r in 0..rows {
            let (oy, ox) = ((start + r) / self.ow, (start + r) % self.ow);
            let (lo, hi) = self.kw_range(ox);
            let row = &col[r * kk..(r + 1) * kk];
            for kh in 0..self.k {
                let iy = oy + kh;
                if iy < self.pad || iy - self.pad >= self.h {
                    continue;
                }
                let dst = ((iy - self.pad) * self.w + ox + lo - self.pad) * c;
                for (d, s) in dx_img[dst..dst + (hi - lo) * c]
                    .iter_mut()
                    .zip(&row[kh * self.k * c + lo * c..kh * self.k * c + hi * c])
                {
                    *d += s;
                }
            }
        }
    }

    /// Visits the chunk's output pixels in blocks: (image in chunk, first pixel, pixel count).
    fn blocks(&self, count: usize) -> impl Iterator<Item = (usize, usize, usize)> + '_ {
        let n = self.n();
        (0..count).flat_map(move |img| (0..n).step_by(BLOCK).map(move |s| (img, s, BLOCK.min(n - s))))
    }
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

/// Splits `data` into consecutive mutable pieces of `sizes`.
fn split_sizes(mut data: &mut [f32], sizes: impl Iterator<Item = usize>) -> Vec<&mut [f32]> {
    let mut parts = Vec::new();
    for size in sizes {
        let (head, tail) = data.split_at_mut(size);
        parts.push(head);
        data = tail;
    }
    parts
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
        let (kk, n, m) = (g.kk(), g.n(), g.c_out);
        if b.len() != m {
            candle_core::bail!("conv2d: {} biases for {m} output channels", b.len());
        }
        let wr = reorder_kernel(w, &g);
        let per_chunk = g.chunks().first().map_or(1, |c| c.1) * n * m;
        // SAFETY: the blocks cover the chunk, and each block is set to the bias before use.
        let y = unsafe {
            par_written(g.batch * n * m, per_chunk, |offset, out| {
                let (first, count) = (offset / (n * m), out.len() / (n * m));
                let mut col = vec![0f32; BLOCK * kk];
                for (img, start, rows) in g.blocks(count) {
                    g.im2col(&x[(first + img) * g.image()..], start, rows, &mut col);
                    let dst = &mut out[(img * n + start) * m..(img * n + start + rows) * m];
                    for row in dst.chunks_mut(m) {
                        for (d, &v) in row.iter_mut().zip(b) {
                            d.write(v);
                        }
                    }
                    let dst = assume_written(dst);
                    matmul(rows, m, kk, dst, m, 1, true, &col, kk, 1, &wr, m, 1);
                }
            })
        };
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

/// dx = col2im(dy · W'ᵀ).
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
        let (kk, n, m) = (g.kk(), g.n(), g.c_out);
        let wr = reorder_kernel(w, &g);
        let mut dx = vec![0f32; g.batch * g.image()];
        let chunks = g.chunks();
        let parts = split_sizes(&mut dx, chunks.iter().map(|c| c.1 * g.image()));
        chunks.par_iter().zip(parts).for_each(|(&(first, count), dx)| {
            let mut col = vec![0f32; BLOCK * kk];
            for (img, start, rows) in g.blocks(count) {
                let dyb = &dy[((first + img) * n + start) * m..((first + img) * n + start + rows) * m];
                matmul(rows, kk, m, &mut col, kk, 1, false, dyb, m, 1, &wr, 1, m);
                g.col2im(&col, start, rows, &mut dx[img * g.image()..(img + 1) * g.image()]);
            }
        });
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
        let partials: Vec<Vec<f32>> = g
            .chunks()
            .par_iter()
            .map(|&(first, count)| {
                let mut col = vec![0f32; BLOCK * kk];
                // dW' and db[m] for this chunk. dW' is stored [m][(kh, kw, c)] so that the
                // product's vectorised dimension is k·k·C, not M (a 32-channel layer would
                // fill only half of an AVX-512 microkernel's rows).
                let mut acc = vec![0f32; kk * m + m];
                let (dw, db) = acc.split_at_mut(kk * m);
                let mut started = false;
                for (img, start, rows) in g.blocks(count) {
                    g.im2col(&x[(first + img) * g.image()..], start, rows, &mut col);
                    let dyb = &dy[((first + img) * n + start) * m..((first + img) * n + start + rows) * m];
                    matmul(kk, m, rows, dw, 1, kk, started, &col, 1, kk, dyb, m, 1);
                    started = true;
                    for row in dyb.chunks(m) {
                        for (d, v) in db.iter_mut().zip(row) {
                            *d += v;
                        }
                    }
                }
                acc
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

/// Convolution (stride 1, zero padding `pad`) plus bias of an NHWC input `[B, H, W, C]` with a
/// kernel `[M, C, k, k]`; the output is NHWC `[B, H', W', M]`.
pub fn conv2d_nhwc(x: &Tensor, w: &Tensor, b: &Tensor, pad: usize) -> Result<Tensor> {
    x.contiguous()?.apply_op3(&w.contiguous()?, &b.contiguous()?, Conv2d { pad })
}
