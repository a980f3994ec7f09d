//! PReLU and 2×2/2 max-pooling: one pass forward, one pass backward.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::{chunking, slice};

/// (batch, channels, values per channel) of a [B, C, …] tensor.
fn planes(dims: &[usize]) -> Result<(usize, usize, usize)> {
    if dims.len() < 2 {
        candle_core::bail!("prelu: expected at least [B, C], got {dims:?}");
    }
    Ok((dims[0], dims[1], dims[2..].iter().product()))
}

/// y = x if x > 0, else a_c·x (one slope per channel).
struct PRelu;

impl CustomOp2 for PRelu {
    fn name(&self) -> &'static str {
        "fast-prelu"
    }

    fn cpu_fwd(&self, xs: &CpuStorage, xl: &Layout, a_s: &CpuStorage, al: &Layout) -> Result<(CpuStorage, Shape)> {
        let (_, c, s) = planes(xl.dims())?;
        let (x, a) = (slice(xs, xl, "prelu input")?, slice(a_s, al, "prelu slope")?);
        if a.len() != c {
            candle_core::bail!("prelu: {} slopes for {c} channels", a.len());
        }
        let mut y = vec![0f32; x.len()];
        y.par_chunks_mut((c * s).max(1)).zip(x.par_chunks((c * s).max(1))).for_each(|(yi, xi)| {
            for ch in 0..c {
                let slope = a[ch];
                for (o, &v) in yi[ch * s..(ch + 1) * s].iter_mut().zip(&xi[ch * s..(ch + 1) * s]) {
                    *o = if v > 0.0 { v } else { slope * v };
                }
            }
        });
        Ok((CpuStorage::F32(y), xl.shape().clone()))
    }

    fn bwd(&self, x: &Tensor, a: &Tensor, _y: &Tensor, dy: &Tensor) -> Result<(Option<Tensor>, Option<Tensor>)> {
        let packed = dy.contiguous()?.apply_op3_no_bwd(x, a, &PReluGrad)?;
        let n = x.elem_count();
        let dx = packed.narrow(0, 0, n)?.reshape(x.shape())?;
        let da = packed.narrow(0, n, a.elem_count())?;
        Ok((Some(dx), Some(da)))
    }
}

/// [dx | da]: dx = dy·(x > 0 ? 1 : a_c), da_c = Σ dy·x over x ≤ 0, summed chunk by chunk.
struct PReluGrad;

impl CustomOp3 for PReluGrad {
    fn name(&self) -> &'static str {
        "fast-prelu-grad"
    }

    fn cpu_fwd(&self, dys: &CpuStorage, dyl: &Layout, xs: &CpuStorage, xl: &Layout, a_s: &CpuStorage, al: &Layout) -> Result<(CpuStorage, Shape)> {
        let (b, c, s) = planes(xl.dims())?;
        let (dy, x, a) = (slice(dys, dyl, "prelu output gradient")?, slice(xs, xl, "prelu input")?, slice(a_s, al, "prelu slope")?);
        let per = c * s;
        let mut out = vec![0f32; x.len() + c];
        let chunks = chunking(b, 1);
        let (dx, _) = out.split_at_mut(x.len());
        let mut parts: Vec<&mut [f32]> = Vec::with_capacity(chunks.len());
        let mut rest = &mut dx[..];
        for &(_, count) in &chunks {
            let (head, tail) = rest.split_at_mut(count * per);
            parts.push(head);
            rest = tail;
        }
        let partials: Vec<Vec<f32>> = chunks
            .par_iter()
            .zip(parts)
            .map(|(&(first, count), dxc)| {
                let mut da = vec![0f32; c];
                for img in 0..count {
                    let base = (first + img) * per;
                    for ch in 0..c {
                        let (slope, mut acc) = (a[ch], 0f32);
                        let range = base + ch * s..base + (ch + 1) * s;
                        for ((o, &g), &v) in dxc[img * per + ch * s..img * per + (ch + 1) * s].iter_mut().zip(&dy[range.clone()]).zip(&x[range]) {
                            if v > 0.0 {
                                *o = g;
                            } else {
                                *o = g * slope;
                                acc += g * v;
                            }
                        }
                        da[ch] += acc;
                    }
                }
                da
            })
            .collect();
        let da = &mut out[x.len()..];
        for p in &partials {
            for (t, v) in da.iter_mut().zip(p) {
                *t += v;
            }
        }
        Ok((CpuStorage::F32(out), Shape::from(x.len() + c)))
    }
}

/// PReLU with one slope per channel (dim 1) with the fast CPU kernels.
pub fn prelu(x: &Tensor, slope: &Tensor) -> Result<Tensor> {
    x.contiguous()?.apply_op2(&slope.contiguous()?, PRelu)
}

fn pool_dims(dims: &[usize]) -> Result<(usize, usize)> {
    match dims {
        &[_, _, h, w] if h >= 2 && w >= 2 => Ok((h, w)),
        _ => candle_core::bail!("max_pool2: expected [B, C, H, W] with H, W ≥ 2, got {dims:?}"),
    }
}

/// The index (0..4) of the first largest value of the 2×2 window at (oy, ox).
#[inline]
fn window_argmax(plane: &[f32], w: usize, oy: usize, ox: usize) -> (usize, f32) {
    let i = 2 * oy * w + 2 * ox;
    let cand = [plane[i], plane[i + 1], plane[i + w], plane[i + w + 1]];
    let mut best = 0;
    for k in 1..4 {
        if cand[k] > cand[best] {
            best = k;
        }
    }
    (best, cand[best])
}

/// 2×2 max-pooling, stride 2, floor rounding.
struct MaxPool2;

impl CustomOp1 for MaxPool2 {
    fn name(&self) -> &'static str {
        "fast-max-pool2"
    }

    fn cpu_fwd(&self, xs: &CpuStorage, xl: &Layout) -> Result<(CpuStorage, Shape)> {
        let (h, w) = pool_dims(xl.dims())?;
        let x = slice(xs, xl, "max_pool2 input")?;
        let (oh, ow) = (h / 2, w / 2);
        let mut y = vec![0f32; x.len() / (h * w) * oh * ow];
        y.par_chunks_mut(oh * ow).zip(x.par_chunks(h * w)).for_each(|(yo, xi)| {
            for oy in 0..oh {
                for ox in 0..ow {
                    yo[oy * ow + ox] = window_argmax(xi, w, oy, ox).1;
                }
            }
        });
        let d = xl.dims();
        Ok((CpuStorage::F32(y), Shape::from((d[0], d[1], oh, ow))))
    }

    fn bwd(&self, x: &Tensor, _y: &Tensor, dy: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(dy.contiguous()?.apply_op2_no_bwd(x, &MaxPool2Grad)?))
    }
}

/// dx: each window's gradient goes to its first largest input (an exact sub-gradient; candle's
/// own max-pool backward gives it to every tied input).
struct MaxPool2Grad;

impl CustomOp2 for MaxPool2Grad {
    fn name(&self) -> &'static str {
        "fast-max-pool2-grad"
    }

    fn cpu_fwd(&self, dys: &CpuStorage, dyl: &Layout, xs: &CpuStorage, xl: &Layout) -> Result<(CpuStorage, Shape)> {
        let (h, w) = pool_dims(xl.dims())?;
        let (dy, x) = (slice(dys, dyl, "max_pool2 output gradient")?, slice(xs, xl, "max_pool2 input")?);
        let (oh, ow) = (h / 2, w / 2);
        let mut dx = vec![0f32; x.len()];
        dx.par_chunks_mut(h * w).zip(x.par_chunks(h * w)).zip(dy.par_chunks(oh * ow)).for_each(|((dxi, xi), dyi)| {
            for oy in 0..oh {
                for ox in 0..ow {
                    let (k, _) = window_argmax(xi, w, oy, ox);
                    dxi[(2 * oy + k / 2) * w + 2 * ox + k % 2] = dyi[oy * ow + ox];
                }
            }
        });
        Ok((CpuStorage::F32(dx), xl.shape().clone()))
    }
}

/// 2×2/2 max-pooling with the fast CPU kernels.
pub fn max_pool2(x: &Tensor) -> Result<Tensor> {
    x.contiguous()?.apply_op1(MaxPool2)
}
