//! `exp` from basic IEEE operations only (+, −, ×, /, round), so it rounds the same on every
//! platform; `f64::exp` calls the platform's libm, whose last bit may differ (native vs wasm32).

// fdlibm's split of ln 2: LN2_HI has 32 trailing zero bits, so n·LN2_HI is exact for |n| < 2^20.
const LN2_HI: f64 = f64::from_bits(0x3FE6_2E42_FEE0_0000);
const LN2_LO: f64 = f64::from_bits(0x3DEA_39EF_3579_3C76);

/// e^x, relative error ≈ 1e-16. Underflows to 0 below −745; overflows to +inf above 709.
pub fn exp_f64(x: f64) -> f64 {
    if x.is_nan() {
        return x;
    }
    if x < -745.0 {
        return 0.0;
    }
    if x > 709.0 {
        return f64::INFINITY;
    }
    // x = n·ln2 + r, |r| <= ln2/2 (Cody–Waite split of ln2 keeps r accurate).
    let n = (x * std::f64::consts::LOG2_E).round();
    let r = (x - n * LN2_HI) - n * LN2_LO;
    // Taylor series to r^13: the remainder is below 1e-17 for |r| <= 0.35.
    let mut poly = 1.0;
    for k in (1..=13).rev() {
        poly = 1.0 + poly * r / k as f64;
    }
    // Scale by 2^n in two exact steps so subnormal results need no special case.
    let n = n as i32;
    let (a, b) = (n / 2, n - n / 2);
    poly * pow2(a) * pow2(b)
}

/// 2^k for −1022 <= k <= 1023, built from the bits.
fn pow2(k: i32) -> f64 {
    f64::from_bits(((k + 1023) as u64) << 52)
}

#[cfg(test)]
mod tests {
    use super::exp_f64;

    #[test]
    fn matches_libm_closely() {
        for i in -7450..=7090 {
            let x = i as f64 * 0.1;
            let (a, b) = (exp_f64(x), x.exp());
            assert!((a - b).abs() <= b * 1e-14, "{x}: {a} vs {b}");
        }
        assert_eq!(exp_f64(0.0), 1.0);
        assert_eq!(exp_f64(f64::NEG_INFINITY), 0.0);
    }
}
