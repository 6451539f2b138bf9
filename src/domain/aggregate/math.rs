//! Inlined `2^x` for the Dawid-Skene E-step, which needs one per item and class.
//!
//! The C library's `exp2` is a call that the compiler cannot inline or unroll. This one
//! splits off the integer and 1/32 parts of the exponent (a 32-entry table) and sums a
//! degree-6 Taylor series for the rest. The tests below check it against `f64::exp2` to
//! 4 ulp.

use std::f64::consts::LN_2;

/// Taylor coefficients `1/n!` of `e^t` for n = 6 down to 0, highest degree first.
const EXP_TAYLOR: [f64; 7] = [1.0 / 720.0, 1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 1.0 / 2.0, 1.0, 1.0];

/// `1.5 * 2^52`: adding and subtracting it rounds an `f64` below `2^51` in magnitude to an
/// integer, which then sits in the low bits of the sum.
const ROUNDING_SHIFTER: f64 = 6755399441055744.0;

/// Table of `2^(j/32)` for j = 0..32, used by [`exp2_nonpositive`].
pub(super) fn exp2_fractions() -> [f64; 32] {
    std::array::from_fn(|j| (j as f64 / 32.0).exp2())
}

/// `2^x` for `x <= 0`, and 0 below `2^-1022` and for NaN; `fractions` comes from [`exp2_fractions`].
///
/// The E-step only exponentiates shifted logarithms, which are at most 0. Values below
/// `2^-1022` are flushed to zero: they lie far under the 1e-10 floor that the score and
/// the result apply, and below the rounding error of any confusion count they join.
#[inline]
pub(super) fn exp2_nonpositive(x: f64, fractions: &[f64; 32]) -> f64 {
    let clamped = if x > -1022.0 { x } else { -1022.0 };

    // x = m/32 + r with m = round(32 x) and |r| <= 1/64, both parts exact. Then
    // 2^x = 2^(m div 32) * 2^((m mod 32)/32) * e^t with t = r ln 2 and |t| <= 0.0109,
    // where the degree-6 Taylor series is exact to below 1e-17.
    let shifted = clamped * 32.0 + ROUNDING_SHIFTER;
    let m = shifted - ROUNDING_SHIFTER;
    let t = (clamped - m / 32.0) * LN_2;
    let mut series = 0.0;
    for coefficient in EXP_TAYLOR {
        series = series * t + coefficient;
    }

    let m_bits = (shifted.to_bits() as i64).wrapping_sub(ROUNDING_SHIFTER.to_bits() as i64);
    let scale = f64::from_bits((((m_bits >> 5) + 1023) as u64) << 52);
    let value = series * fractions[(m_bits & 31) as usize] * scale;
    if x >= -1022.0 {
        value
    } else {
        0.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Distance in units in the last place between two positive finite numbers.
    fn ulp_distance(a: f64, b: f64) -> u64 {
        a.to_bits().abs_diff(b.to_bits())
    }

    #[test]
    fn exp2_matches_std_within_4_ulp() {
        let fractions = exp2_fractions();
        let mut x: f64 = 0.0;
        while x > -1022.0 {
            let expected = x.exp2();
            let actual = exp2_nonpositive(x, &fractions);
            assert!(ulp_distance(actual, expected) <= 4, "2^{x}: {actual} vs {expected}");
            x -= 0.0137;
        }
        assert_eq!(exp2_nonpositive(0.0, &fractions), 1.0);
        assert_eq!(exp2_nonpositive(-3.0, &fractions), 0.125);
    }

    #[test]
    fn exp2_flushes_below_min_normal() {
        let fractions = exp2_fractions();
        assert_eq!(exp2_nonpositive(-1022.5, &fractions), 0.0);
        assert_eq!(exp2_nonpositive(f64::NEG_INFINITY, &fractions), 0.0);
        assert_eq!(exp2_nonpositive(f64::NAN, &fractions), 0.0);
        assert_eq!(exp2_nonpositive(-1022.0, &fractions), f64::MIN_POSITIVE);
    }
}
