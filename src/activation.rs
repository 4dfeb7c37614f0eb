//! Activation functions: a closed set, dispatched with `match`.

use serde::{Deserialize, Serialize};

/// Slope of [`Activation::LeakyRelu`] for negative inputs (PyTorch's default).
pub const LEAKY_SLOPE: f32 = 0.01;
pub(crate) const GELU_C: f32 = 0.797_884_6; // sqrt(2 / pi)
pub(crate) const GELU_K: f32 = 0.044_715;

/// Elementwise nonlinearity applied after a layer's affine map.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Activation {
    /// `y = z`.
    Identity,
    /// `y = max(z, 0)`.
    Relu,
    /// `y = z` for `z > 0`, else `0.01 z`.
    LeakyRelu,
    /// `y = z` for `z > 0`, else `exp(z) - 1`.
    Elu,
    /// `y = 1 / (1 + exp(-z))`.
    Sigmoid,
    /// `y = tanh(z)`.
    Tanh,
    /// GELU, tanh approximation: `0.5 z (1 + tanh(sqrt(2/pi) (z + 0.044715 z^3)))`.
    Gelu,
}

impl Activation {
    /// All activations, for help texts and tests.
    pub const ALL: [Activation; 7] = [
        Activation::Identity,
        Activation::Relu,
        Activation::LeakyRelu,
        Activation::Elu,
        Activation::Sigmoid,
        Activation::Tanh,
        Activation::Gelu,
    ];

    /// The name used in configs and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Activation::Identity => "identity",
            Activation::Relu => "relu",
            Activation::LeakyRelu => "leaky_relu",
            Activation::Elu => "elu",
            Activation::Sigmoid => "sigmoid",
            Activation::Tanh => "tanh",
            Activation::Gelu => "gelu",
        }
    }

    /// Parses a name as written by [`Activation::name`].
    pub fn from_name(s: &str) -> Option<Self> {
        Activation::ALL.into_iter().find(|a| a.name() == s)
    }

    /// Whether the derivative needs the pre-activation `z` (not only the output `y`).
    pub fn needs_preactivation(self) -> bool {
        matches!(self, Activation::Gelu)
    }

    /// Whether this is a ReLU-like unit (He initialization suits it).
    pub fn is_relu_like(self) -> bool {
        matches!(
            self,
            Activation::Relu | Activation::LeakyRelu | Activation::Elu | Activation::Gelu
        )
    }

    /// `y = f(z)` computed with the given exponential (the kernels pass a fast one).
    #[inline(always)]
    pub(crate) fn apply_with(self, z: f32, exp: impl Fn(f32) -> f32) -> f32 {
        match self {
            Activation::Identity => z,
            Activation::Relu => z.max(0.0),
            Activation::LeakyRelu => {
                if z > 0.0 {
                    z
                } else {
                    LEAKY_SLOPE * z
                }
            }
            Activation::Elu => {
                if z > 0.0 {
                    z
                } else {
                    exp(z.min(0.0)) - 1.0
                }
            }
            Activation::Sigmoid => 1.0 / (1.0 + exp(-z)),
            Activation::Tanh => tanh_with(z, &exp),
            Activation::Gelu => {
                let t = tanh_with(GELU_C * (z + GELU_K * z * z * z), &exp);
                0.5 * z * (1.0 + t)
            }
        }
    }

    /// `dy/dz` from the pre-activation `z` and the output `y` (either may be ignored).
    #[inline(always)]
    pub(crate) fn grad_with(self, z: f32, y: f32, exp: impl Fn(f32) -> f32) -> f32 {
        match self {
            Activation::Identity => 1.0,
            Activation::Relu => {
                if y > 0.0 {
                    1.0
                } else {
                    0.0
                }
            }
            Activation::LeakyRelu => {
                if y > 0.0 {
                    1.0
                } else {
                    LEAKY_SLOPE
                }
            }
            Activation::Elu => {
                if y > 0.0 {
                    1.0
                } else {
                    y + 1.0
                }
            }
            Activation::Sigmoid => y * (1.0 - y),
            Activation::Tanh => 1.0 - y * y,
            Activation::Gelu => {
                let u = GELU_C * (z + GELU_K * z * z * z);
                let t = tanh_with(u, &exp);
                0.5 * (1.0 + t) + 0.5 * z * (1.0 - t * t) * GELU_C * (1.0 + 3.0 * GELU_K * z * z)
            }
        }
    }

    /// `y = f(z)`, precise (standard library `exp`).
    pub fn apply(self, z: f32) -> f32 {
        self.apply_with(z, f32::exp)
    }

    /// `dy/dz`, precise.
    pub fn grad(self, z: f32, y: f32) -> f32 {
        self.grad_with(z, y, f32::exp)
    }
}

#[inline(always)]
fn tanh_with(u: f32, exp: &impl Fn(f32) -> f32) -> f32 {
    // tanh(u) = 1 - 2 / (exp(2u) + 1); saturates cleanly when exp overflows.
    1.0 - 2.0 / (exp(2.0 * u) + 1.0)
}

impl std::fmt::Display for Activation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.pad(self.name())
    }
}

impl std::str::FromStr for Activation {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Activation::from_name(s).ok_or_else(|| {
            let names: Vec<_> = Activation::ALL.iter().map(|a| a.name()).collect();
            format!("unknown activation `{s}`; expected one of {}", names.join(", "))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Finite-difference check of every activation's derivative, in f64 central differences.
    #[test]
    fn gradients_match_finite_differences() {
        for act in Activation::ALL {
            for &z in &[-3.1f32, -0.7, -0.05, 0.05, 0.4, 1.3, 2.9] {
                let h = 1e-3f64;
                let f = |v: f64| act.apply(v as f32) as f64;
                let numeric = (f(z as f64 + h) - f(z as f64 - h)) / (2.0 * h);
                let analytic = act.grad(z, act.apply(z)) as f64;
                assert!(
                    (numeric - analytic).abs() < 2e-3 * (1.0 + numeric.abs()),
                    "{act} at {z}: numeric {numeric} analytic {analytic}"
                );
            }
        }
    }

    #[test]
    fn names_round_trip() {
        for act in Activation::ALL {
            assert_eq!(act.name().parse::<Activation>().unwrap(), act);
        }
        assert!("swish".parse::<Activation>().is_err());
    }
}
