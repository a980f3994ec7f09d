//! Convolution, stride 1, square kernel, zero padding, with bias: im2col + gemm.

use candle_core::{CpuStorage, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::{chunking, matmul, slice};

/// Geometry of one convolution.
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
        let (&[batch, c_in, h, wd], &[c_out, c_in_w, k, k2]) = (x, w) else {
            candle_core::bail!("conv2d: expected a [B, C, H, W] input and a [M, C, k, k] kernel, got {x:?} and {w:?}");
        };
        if c_in != c_in_w || k != k2 || h + 2 * pad < k || wd + 2 * pad < k {
            candle_core::bail!("conv2d: input {x:?} and kernel {w:?} do not fit (padding {pad})");
        }
        Ok(Geometry { batch, c_in, h, w: wd, c_out, k, pad, oh: h + 2 * pad - k + 1, ow: wd + 2 * pad - k + 1 })
    }

    /// Rows of the column matrix: C·k·k.
    fn kk(&self) -> usize {
        self.c_in * self.k * self.k
    }

    /// Output pixels per image.
    fn n(&self) -> usize {
        self.oh * self.ow
    }

    fn image(&self) -> usize {
        self.c_in * self.h * self.w
    }

    /// Images per chunk: enough that a chunk's columns are ~1024 wide.
    fn chunks(&self) -> Vec<(usize, usize)> {
        chunking(self.batch, (1024 / self.n().max(1)).max(1))
    }

    /// col[K, c·N] for `count` images starting at `first`: col[(ci,kh,kw), img·N + (oy,ox)].
    fn im2col(&self, x: &[f32], first: usize, count: usize, col: &mut [f32]) {
        let (n, width) = (self.n(), count * self.n());
        for ci in 0..self.c_in {
            for kh in 0..self.k {
                for kw in 0..self.k {
                    let row = (ci * self.k + kh) * self.k + kw;
                    // Output columns whose input column ox + kw − pad lies inside the image.
                    let lo = self.pad.saturating_sub(kw).min(self.ow);
                    let hi = (self.w + self.pad).saturating_sub(kw).clamp(lo, self.ow);
                    for img in 0..count {
                        let src = &x[(first + img) * self.image() + ci * self.h * self.w..][..self.h * self.w];
                        let dst = &mut col[row * width + img * n..][..n];
                        for oy in 0..self.oh {
                            let out = &mut dst[oy * self.ow..(oy + 1) * self.ow];
                            let iy = oy + kh;
                            if iy < self.pad || iy - self.pad >= self.h {
                                out.fill(0.0);
                                continue;
                            }
                            let src_row = &src[(iy - self.pad) * self.w..][..self.w];
                            out[..lo].fill(0.0);
                            out[hi..].fill(0.0);
                            out[lo..hi].copy_from_slice(&src_row[lo + kw - self.pad..hi + kw - self.pad]);
                        }
                    }
                }
            }
        }
    }

    /// The adjoint of im2col: dx[image] += col for `count` images (dx holds just those images).
    fn col2im(&self, col: &[f32], count: usize, dx: &mut [f32]) {
        let (n, width) = (self.n(), count * self.n());
        for ci in 0..self.c_in {
            for kh in 0..self.k {
                for kw in 0..self.k {
                    let row = (ci * self.k + kh) * self.k + kw;
                    let lo = self.pad.saturating_sub(kw).min(self.ow);
                    let hi = (self.w + self.pad).saturating_sub(kw).clamp(lo, self.ow);
                    for img in 0..count {
                        let dst = &mut dx[img * self.image() + ci * self.h * self.w..][..self.h * self.w];
                        let src = &col[row * width + img * n..][..n];
                        for oy in 0..self.oh {
                            let iy = oy + kh;
                            if iy < self.pad || iy - self.pad >= self.h {
                                continue;
                            }
                            let dst_row = &mut dst[(iy - self.pad) * self.w..][..self.w];
                            for (d, s) in dst_row[lo + kw - self.pad..hi + kw - self.pad].iter_mut().zip(&src[oy * self.ow + lo..oy * self.ow + hi]) {
                                *d += s;
                            }
                        }
                    }
                }
            }
        }
    }

    /// Copies dy of `count` images ([img, M, N]) into a [M, count·N] matrix.
    fn pack_output(&self, dy: &[f32], first: usize, count: usize, packed: &mut [f32]) {
        let n = self.n();
        for img in 0..count {
            for m in 0..self.c_out {
                packed[m * count * n + img * n..][..n].copy_from_slice(&dy[((first + img) * self.c_out + m) * n..][..n]);
            }
        }
    }
}

/// y = conv(x, w) + b, forward and backward on the CPU.
struct Conv2d {
    pad: usize,
}

impl CustomOp3 for Conv2d {
    fn name(&self) -> &'static str {
        "fast-conv2d"
    }

    fn cpu_fwd(&self, xs: &CpuStorage, xl: &Layout, ws: &CpuStorage, wl: &Layout, bs: &CpuStorage, bl: &Layout) -> Result<(CpuStorage, Shape)> {
        let g = Geometry::new(xl.dims(), wl.dims(), self.pad)?;
        let (x, w, b) = (slice(xs, xl, "conv2d input")?, slice(ws, wl, "conv2d kernel")?, slice(bs, bl, "conv2d bias")?);
        let (kk, n, m) = (g.kk(), g.n(), g.c_out);
        let mut y = vec![0f32; g.batch * m * n];
        let chunks = g.chunks();
        let mut parts: Vec<&mut [f32]> = Vec::with_capacity(chunks.len());
        let mut rest = &mut y[..];
        for &(_, count) in &chunks {
            let (head, tail) = rest.split_at_mut(count * m * n);
            parts.push(head);
            rest = tail;
        }
        chunks.par_iter().zip(parts).for_each(|(&(first, count), out)| {
            let mut col = vec![0f32; kk * count * n];
            g.im2col(x, first, count, &mut col);
            let mut packed = vec![0f32; m * count * n];
            matmul(m, count * n, kk, &mut packed, count * n, 1, false, w, kk, 1, &col, count * n, 1);
            for img in 0..count {
                for (ch, &bias) in b.iter().enumerate() {
                    let src = &packed[ch * count * n + img * n..][..n];
                    for (d, s) in out[(img * m + ch) * n..][..n].iter_mut().zip(src) {
                        *d = s + bias;
                    }
                }
            }
        });
        Ok((CpuStorage::F32(y), Shape::from((g.batch, m, g.oh, g.ow))))
    }

    fn bwd(&self, x: &Tensor, w: &Tensor, _b: &Tensor, _y: &Tensor, dy: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>, Option<Tensor>)> {
        let dy = dy.contiguous()?;
        let dx = if x.track_op() { Some(dy.apply_op2_no_bwd(w, &InputGrad { pad: self.pad, x_dims: x.dims().to_vec() })?) } else { None };
        let packed = dy.apply_op2_no_bwd(x, &WeightGrad { pad: self.pad, w_dims: w.dims().to_vec() })?;
        let wn = w.elem_count();
        let dw = packed.narrow(0, 0, wn)?.reshape(w.shape())?;
        let db = packed.narrow(0, wn, w.dim(0)?)?;
        Ok((dx, Some(dw), Some(db)))
    }
}

/// dx = col2im(Wᵀ · dy).
struct InputGrad {
    pad: usize,
    x_dims: Vec<usize>,
}

impl CustomOp2 for InputGrad {
    fn name(&self) -> &'static str {
        "fast-conv2d-input-grad"
    }

    fn cpu_fwd(&self, dys: &CpuStorage, dyl: &Layout, ws: &CpuStorage, wl: &Layout) -> Result<(CpuStorage, Shape)> {
        let g = Geometry::new(&self.x_dims, wl.dims(), self.pad)?;
        let (dy, w) = (slice(dys, dyl, "conv2d output gradient")?, slice(ws, wl, "conv2d kernel")?);
        let (kk, n, m) = (g.kk(), g.n(), g.c_out);
        let mut dx = vec![0f32; g.batch * g.image()];
        let chunks = g.chunks();
        let mut parts: Vec<&mut [f32]> = Vec::with_capacity(chunks.len());
        let mut rest = &mut dx[..];
        for &(_, count) in &chunks {
            let (head, tail) = rest.split_at_mut(count * g.image());
            parts.push(head);
            rest = tail;
        }
        chunks.par_iter().zip(parts).for_each(|(&(first, count), dx)| {
            let mut packed = vec![0f32; m * count * n];
            g.pack_output(dy, first, count, &mut packed);
            let mut col = vec![0f32; kk * count * n];
            matmul(kk, count * n, m, &mut col, count * n, 1, false, w, 1, kk, &packed, count * n, 1);
            g.col2im(&col, count, dx);
        });
        Ok((CpuStorage::F32(dx), Shape::from(self.x_dims.clone())))
    }
}

/// [dW (M·C·k·k) | db (M)] = Σ_images [dy · colᵀ | Σ dy], summed chunk by chunk in order.
struct WeightGrad {
    pad: usize,
    w_dims: Vec<usize>,
}

impl CustomOp2 for WeightGrad {
    fn name(&self) -> &'static str {
        "fast-conv2d-weight-grad"
    }

    fn cpu_fwd(&self, dys: &CpuStorage, dyl: &Layout, xs: &CpuStorage, xl: &Layout) -> Result<(CpuStorage, Shape)> {
        let g = Geometry::new(xl.dims(), &self.w_dims, self.pad)?;
        let (dy, x) = (slice(dys, dyl, "conv2d output gradient")?, slice(xs, xl, "conv2d input")?);
        let (kk, n, m) = (g.kk(), g.n(), g.c_out);
        let partials: Vec<Vec<f32>> = g
            .chunks()
            .par_iter()
            .map(|&(first, count)| {
                let mut col = vec![0f32; kk * count * n];
                g.im2col(x, first, count, &mut col);
                let mut packed = vec![0f32; m * count * n];
                g.pack_output(dy, first, count, &mut packed);
                let mut out = vec![0f32; m * kk + m];
                matmul(m, kk, count * n, &mut out[..m * kk], kk, 1, false, &packed, count * n, 1, &col, 1, count * n);
                for ch in 0..m {
                    out[m * kk + ch] = packed[ch * count * n..(ch + 1) * count * n].iter().sum();
                }
                out
            })
            .collect();
        let mut total = vec![0f32; m * kk + m];
        for p in &partials {
            for (t, v) in total.iter_mut().zip(p) {
                *t += v;
            }
        }
        Ok((CpuStorage::F32(total), Shape::from(m * kk + m)))
    }
}

/// Convolution (stride 1, zero padding `pad`) plus bias with the fast CPU kernels.
pub fn conv2d(x: &Tensor, w: &Tensor, b: &Tensor, pad: usize) -> Result<Tensor> {
    x.contiguous()?.apply_op3(&w.contiguous()?, &b.contiguous()?, Conv2d { pad })
}
