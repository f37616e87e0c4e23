//! Llama 3.1's rope scaling as a GGUF stores it: llama.cpp's converter turns the Hugging Face
//! `rope_scaling` block (`"rope_type": "llama3"`) into `rope_freqs.weight`, one F32 divisor per
//! rotated pair, and ggml divides each pair's angle by it.

/// Parameters of the `llama3` rope scaling.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Llama3Rope {
    /// Divisor of the longest wavelengths.
    pub factor: f64,
    pub low_freq_factor: f64,
    pub high_freq_factor: f64,
    /// `original_max_position_embeddings`: the context before the extension.
    pub original_context: usize,
}

impl Llama3Rope {
    /// Llama 3.1 / 3.2's `rope_scaling`.
    pub const LLAMA_3_1: Llama3Rope =
        Llama3Rope { factor: 8.0, low_freq_factor: 1.0, high_freq_factor: 4.0, original_context: 8192 };

    /// The `rope_freqs.weight` values for `n_rot` rotated dimensions and base `theta`.
    ///
    /// Pair i turns by θ_i = theta^(−2i/n_rot) per position, a wavelength of 2π/θ_i positions.
    /// Wavelengths shorter than `original_context / high_freq_factor` keep factor 1, longer than
    /// `original_context / low_freq_factor` get `factor`, and in between the frequency is
    /// interpolated linearly in `original_context / wavelength` between θ_i/factor and θ_i,
    /// stored as the divisor that gives it.
    ///
    /// Computed in f64 with basic IEEE operations only when `n_rot / 2` is a power of two
    /// (θ_i from repeated square roots and products), so the f32 values, and with them the
    /// model bytes, are the same on every platform; other widths fall back to `powf`.
    pub fn freq_factors(&self, n_rot: usize, theta: f32) -> Vec<f32> {
        let orig = self.original_context as f64;
        let low_freq_wavelen = orig / self.low_freq_factor;
        let high_freq_wavelen = orig / self.high_freq_factor;
        wavelength_ratios(n_rot, theta as f64)
            .into_iter()
            .map(|ratio| {
                // 2π/θ_i = 2π·theta^(2i/n_rot).
                let wavelen = 2.0 * std::f64::consts::PI * ratio;
                let divisor = if wavelen < high_freq_wavelen {
                    1.0
                } else if wavelen > low_freq_wavelen {
                    self.factor
                } else {
                    let smooth =
                        (orig / wavelen - self.low_freq_factor) / (self.high_freq_factor - self.low_freq_factor);
                    1.0 / ((1.0 - smooth) / self.factor + smooth)
                };
                divisor as f32
            })
            .collect()
    }
}

/// theta^(2i/n_rot) for i in 0..n_rot/2.
fn wavelength_ratios(n_rot: usize, theta: f64) -> Vec<f64> {
    let pairs = n_rot / 2;
    if !pairs.is_power_of_two() {
        return (0..pairs).map(|i| theta.powf(i as f64 / pairs as f64)).collect();
    }
    // theta^(1/pairs) by log2(pairs) correctly rounded square roots, then its powers.
    let mut step = theta;
    for _ in 0..pairs.trailing_zeros() {
        step = step.sqrt();
    }
    let mut r = 1.0;
    (0..pairs)
        .map(|_| {
            let v = r;
            r *= step;
            v
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn llama_3_1_factors_span_one_to_eight() {
        // Llama 3.1 8B: 128-dim heads, theta 500000. The converter's tensor starts at 1, ends at
        // 8, and rises monotonically through a band of smoothed values.
        let f = Llama3Rope::LLAMA_3_1.freq_factors(128, 500000.0);
        assert_eq!(f.len(), 64);
        assert_eq!((f[0], f[63]), (1.0, 8.0));
        assert!(f.windows(2).all(|w| w[0] <= w[1]));
        assert!(f.iter().any(|&x| x > 1.0 && x < 8.0));
    }

    #[test]
    fn square_root_powers_match_powf() {
        for (n_rot, theta) in [(64, 10000.0), (128, 500000.0), (32, 1e6)] {
            for (i, r) in wavelength_ratios(n_rot, theta).into_iter().enumerate() {
                let want = theta.powf(2.0 * i as f64 / n_rot as f64);
                assert!((r - want).abs() <= 1e-12 * want, "{n_rot} {theta} {i}: {r} vs {want}");
            }
        }
    }
}
