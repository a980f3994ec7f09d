//! PReLU and 2×2/2 max-pooling on channels-last tensors: one pass forward, one pass backward.

use candle_core::{CpuStorage, CustomOp1, CustomOp2, CustomOp3, Layout, Result, Shape, Tensor};
use rayon::prelude::*;

use super::{chunking, par_written, slice};

/// Rows of C values: a channels-last tensor [..., C] seen as [rows, C].
fn channels_last(dims: &[usize]) -> Result<(usize, usize)> {
    match dims.split_last() {
        Some((&c, rest)) if !rest.is_empty() && c > 0 => Ok((rest.iter().product(), c)),
        _ => candle_core::bail!("prelu: expected a [..., C] tensor with C ≥ 1, got {dims:?}"),
    }
}

/// `if take { a } else { b }` as a bitwise blend. LLVM compiles the plain `if` on data into a
/// branch, which mispredicts on activations that are half negative (PReLU was 10× slower);
/// the blend vectorises. Unlike `max`/`min`, a select keeps a NaN.
#[inline(always)]
fn select(take: bool, a: f32, b: f32) -> f32 {
    let mask = (take as u32).wrapping_neg();
    f32::from_bits((a.to_bits() & mask) | (b.to_bits() & !mask))
}

/// The larger of two values, `a` on a tie, and NaN when either is NaN: `f32::max` would return
/// the other value and hide a diverging activation.
#[inline(always)]
fn larger_or_nan(a: f32, b: f32) -> f32 {
    select(b > a || b.is_nan(), b, a)
}

/// Rows per parallel task: about 16 K values.
fn rows_per_task(c: usize) -> usize {
    (16_384 / c).max(1)
}

/// y = x if x > 0, else a_c·x, with c the last dimension.
struct PRelu;

impl CustomOp2 for PRelu {
    fn name(&self) -> &'static str {
        "fast-prelu"
    }

    fn cpu_fwd(&self, xs: &CpuStorage, xl: &Layout, a_s: &CpuStorage, al: &Layout) -> Result<(CpuStorage, Shape)> {
        let (_, c) = channels_last(xl.dims())?;
        let (x, a) = (slice(xs, xl, "prelu input")?, slice(a_s, al, "prelu slope")?);
        if a.len() != c {
            candle_core::bail!("prelu: {} slopes for {c} channels", a.len());
        }
        let task = rows_per_task(c) * c;
        // SAFETY: every output row is written from its input row of the same length.
        let y = unsafe {
            par_written(x.len(), task, |offset, yo| {
                for (yr, xr) in yo.chunks_mut(c).zip(x[offset..].chunks(c)) {
                    for ((o, &v), &s) in yr.iter_mut().zip(xr).zip(a) {
                        o.write(select(v > 0.0, v, s * v));
                    }
                }
            })
        };
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

/// [dx | da]: dx = dy·(x > 0 ? 1 : a_c), da_c = Σ dy·x over x ≤ 0, summed task by task in order.
struct PReluGrad;

impl CustomOp3 for PReluGrad {
    fn name(&self) -> &'static str {
        "fast-prelu-grad"
    }

    fn cpu_fwd(
        &self,
        dys: &CpuStorage,
        dyl: &Layout,
        xs: &CpuStorage,
        xl: &Layout,
        a_s: &CpuStorage,
        al: &Layout,
    ) -> Result<(CpuStorage, Shape)> {
        let (rows, c) = channels_last(xl.dims())?;
        let (dy, x, a) =
            (slice(dys, dyl, "prelu output gradient")?, slice(xs, xl, "prelu input")?, slice(a_s, al, "prelu slope")?);
        let mut out = vec![0f32; x.len() + c];
        let (dx, da) = out.split_at_mut(x.len());
        let tasks = chunking(rows, rows_per_task(c));
        let task_len = tasks[0].1 * c;
        let partials: Vec<Vec<f32>> = dx
            .par_chunks_mut(task_len)
            .zip(dy.par_chunks(task_len))
            .zip(x.par_chunks(task_len))
            .map(|((dxo, dyi), xi)| {
                let mut acc = vec![0f32; c];
                for ((dr, gr), xr) in dxo.chunks_mut(c).zip(dyi.chunks(c)).zip(xi.chunks(c)) {
                    for ch in 0..c {
                        let (g, v) = (gr[ch], xr[ch]);
                        dr[ch] = select(v > 0.0, g, g * a[ch]);
                        acc[ch] += select(v > 0.0, 0.0, g * v);
                    }
                }
                acc
            })
            .collect();
        for p in &partials {
            for (t, v) in da.iter_mut().zip(p) {
                *t += v;
            }
        }
        Ok((CpuStorage::F32(out), Shape::from(x.len() + c)))
    }
}

/// PReLU with one slope per channel, the channels being the last dimension.
pub fn prelu_channels_last(x: &Tensor, slope: &Tensor) -> Result<Tensor> {
    x.contiguous()?.apply_op2(&slope.contiguous()?, PRelu)
}

fn pool_dims(dims: &[usize]) -> Result<(usize, usize, usize, usize)> {
    match dims {
        &[b, h, w, c] if h >= 2 && w >= 2 => Ok((b, h, w, c)),
        _ => candle_core::bail!("max_pool2: expected [B, H, W, C] with H, W ≥ 2, got {dims:?}"),
    }
}

/// 2×2 max-pooling, stride 2, floor rounding, on NHWC tensors.
struct MaxPool2;

impl CustomOp1 for MaxPool2 {
    fn name(&self) -> &'static str {
        "fast-max-pool2-nhwc"
    }

    fn cpu_fwd(&self, xs: &CpuStorage, xl: &Layout) -> Result<(CpuStorage, Shape)> {
        let (b, h, w, c) = pool_dims(xl.dims())?;
        let x = slice(xs, xl, "max_pool2 input")?;
        let (oh, ow) = (h / 2, w / 2);
        // SAFETY: each task is one image, and every (oy, ox, channel) of it is written.
        let y = unsafe {
            par_written(b * oh * ow * c, oh * ow * c, |offset, yo| {
                let xi = &x[offset / (oh * ow) * (h * w)..];
                for oy in 0..oh {
                    for ox in 0..ow {
                        let at = |dy: usize, dx: usize| &xi[((2 * oy + dy) * w + 2 * ox + dx) * c..][..c];
                        let (p00, p01, p10, p11) = (at(0, 0), at(0, 1), at(1, 0), at(1, 1));
                        let out = &mut yo[(oy * ow + ox) * c..][..c];
                        for ch in 0..c {
                            out[ch]
                                .write(larger_or_nan(larger_or_nan(larger_or_nan(p00[ch], p01[ch]), p10[ch]), p11[ch]));
                        }
                    }
                }
            })
        };
        Ok((CpuStorage::F32(y), Shape::from((b, oh, ow, c))))
    }

    fn bwd(&self, x: &Tensor, _y: &Tensor, dy: &Tensor) -> Result<Option<Tensor>> {
        Ok(Some(dy.contiguous()?.apply_op2_no_bwd(x, &MaxPool2Grad)?))
    }
}

/// dx: each window's gradient goes to its first largest input, in the order (0,0), (0,1),
/// (1,0), (1,1) — an exact sub-gradient.
struct MaxPool2Grad;

impl CustomOp2 for MaxPool2Grad {
    fn name(&self) -> &'static str {
        "fast-max-pool2-nhwc-grad"
    }

    fn cpu_fwd(&self, dys: &CpuStorage, dyl: &Layout, xs: &CpuStorage, xl: &Layout) -> Result<(CpuStorage, Shape)> {
        let (_, h, w, c) = pool_dims(xl.dims())?;
        let (dy, x) = (slice(dys, dyl, "max_pool2 output gradient")?, slice(xs, xl, "max_pool2 input")?);
        let (oh, ow) = (h / 2, w / 2);
        let mut dx = vec![0f32; x.len()];
        dx.par_chunks_mut(h * w * c).zip(x.par_chunks(h * w * c)).zip(dy.par_chunks(oh * ow * c)).for_each(
            |((dxi, xi), dyi)| {
                for oy in 0..oh {
                    for ox in 0..ow {
                        let at = |dy: usize, dx: usize| ((2 * oy + dy) * w + 2 * ox + dx) * c;
                        let (o00, o01, o10, o11) = (at(0, 0), at(0, 1), at(1, 0), at(1, 1));
                        let g = &dyi[(oy * ow + ox) * c..][..c];
                        for ch in 0..c {
                            let (v00, v01, v10, v11) = (xi[o00 + ch], xi[o01 + ch], xi[o10 + ch], xi[o11 + ch]);
                            // Which cell wins, as masks: a later cell only if strictly larger.
                            let t01 = v01 > v00;
                            let m01 = select(t01, v01, v00);
                            let t10 = v10 > m01;
                            let m10 = select(t10, v10, m01);
                            let t11 = v11 > m10;
                            let (w11, w10) = (t11, t10 && !t11);
                            let w01 = t01 && !t10 && !t11;
                            let w00 = !t01 && !t10 && !t11;
                            dxi[o00 + ch] = select(w00, g[ch], 0.0);
                            dxi[o01 + ch] = select(w01, g[ch], 0.0);
                            dxi[o10 + ch] = select(w10, g[ch], 0.0);
                            dxi[o11 + ch] = select(w11, g[ch], 0.0);
                        }
                    }
                }
            },
        );
        Ok((CpuStorage::F32(dx), xl.shape().clone()))
    }
}

/// 2×2/2 max-pooling of an NHWC tensor.
pub fn max_pool2_nhwc(x: &Tensor) -> Result<Tensor> {
    x.contiguous()?.apply_op1(MaxPool2)
}
