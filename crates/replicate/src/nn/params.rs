//! Trainable parameters in a fixed order, initialised from the run's own seeded RNG.
//!
//! candle's CPU RNG cannot be seeded and `VarMap` iterates a `HashMap` in random order, so the
//! model keeps its own ordered list and draws every initial value from a ChaCha stream.

use candle_core::{DType, Device, Result, Tensor, Var};
use rand::Rng;
use rand_chacha::ChaCha8Rng;

/// What a parameter is: the optimiser decays only `Weight`s and gives `Bias`es Caffe's lr × 2;
/// a `Statistic` (batch normalisation's running averages) is set by the forward pass, never by
/// the optimiser.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    Weight,
    Bias,
    Slope,
    Statistic,
}

pub struct Param {
    pub name: String,
    pub var: Var,
    pub kind: ParamKind,
}

/// The model's parameters in creation order (the order the optimiser and checksums see).
#[derive(Default)]
pub struct Params {
    list: Vec<Param>,
}

impl Params {
    pub fn add(&mut self, name: impl Into<String>, value: Tensor, kind: ParamKind) -> Result<Var> {
        let name = name.into();
        if self.list.iter().any(|p| p.name == name) {
            candle_core::bail!("parameter {name} is defined twice");
        }
        let var = Var::from_tensor(&value)?;
        self.list.push(Param { name, var: var.clone(), kind });
        Ok(var)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Param> {
        self.list.iter()
    }

    pub fn len(&self) -> usize {
        self.list.len()
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// Total number of scalar parameters.
    pub fn count(&self) -> usize {
        self.list.iter().map(|p| p.var.elem_count()).sum()
    }
}

/// Creates named parameters from the run's seeded stream, in the order they are asked for.
pub struct Init<'a> {
    pub params: &'a mut Params,
    pub rng: &'a mut ChaCha8Rng,
    pub device: &'a Device,
}

impl Init<'_> {
    /// A weight drawn from Caffe's Xavier filler.
    pub fn xavier(&mut self, name: String, shape: &[usize], fan_in: usize) -> Result<Var> {
        let value = xavier_uniform(shape, fan_in, self.rng, self.device)?;
        self.params.add(name, value, ParamKind::Weight)
    }

    /// A parameter filled with `value` (biases at 0, PReLU slopes at 0.25).
    pub fn constant(&mut self, name: String, shape: &[usize], value: f32, kind: ParamKind) -> Result<Var> {
        let value = constant(shape, value, self.device)?;
        self.params.add(name, value, kind)
    }
}

/// Caffe's "xavier" filler (the one caffe-face uses): uniform on ±√(3 / fan_in).
pub fn xavier_uniform(shape: &[usize], fan_in: usize, rng: &mut ChaCha8Rng, device: &Device) -> Result<Tensor> {
    let bound = (3.0 / fan_in as f64).sqrt() as f32;
    let n: usize = shape.iter().product();
    let values: Vec<f32> = (0..n).map(|_| rng.random_range(-bound..bound)).collect();
    Tensor::from_vec(values, shape, device)
}

pub fn constant(shape: &[usize], value: f32, device: &Device) -> Result<Tensor> {
    Tensor::full(value, shape, device)?.to_dtype(DType::F32)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::rng_for;

    #[test]
    fn xavier_is_seeded_and_bounded() {
        let a = xavier_uniform(&[4, 3], 12, &mut rng_for(5, "init"), &Device::Cpu).unwrap();
        let b = xavier_uniform(&[4, 3], 12, &mut rng_for(5, "init"), &Device::Cpu).unwrap();
        let (va, vb): (Vec<f32>, Vec<f32>) =
            (a.flatten_all().unwrap().to_vec1().unwrap(), b.flatten_all().unwrap().to_vec1().unwrap());
        assert_eq!(va, vb);
        assert!(va.iter().all(|v| v.abs() <= 0.5));
    }

    #[test]
    fn duplicate_names_are_refused() {
        let mut p = Params::default();
        p.add("w", constant(&[1], 0.0, &Device::Cpu).unwrap(), ParamKind::Weight).unwrap();
        assert!(p.add("w", constant(&[1], 0.0, &Device::Cpu).unwrap(), ParamKind::Weight).is_err());
    }
}
