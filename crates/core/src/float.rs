//! Reading decimal text as `f64`, correctly rounded, without Rust's float parser.
//!
//! `str::parse::<f64>` is fast because it carries a table of 128-bit powers of five, which with its
//! code is about 15 KB of the gzipped WebAssembly; Slicelab reads a handful of numbers typed or pasted
//! by people (durations, rates, YAML floats, iptables probabilities). This reader does exact integer
//! arithmetic instead: the digits times a power of ten, or divided by one, to enough bits, then
//! rounded half to even, so it returns the same `f64` as `str::parse` for every input (a property
//! test compares the two on hundreds of thousands of texts) and accepts the same grammar: an optional
//! sign, digits with an optional point, an optional exponent, or `inf`, `infinity`, `nan` in any case.

/// `text` as an `f64`, exactly as `text.parse::<f64>().ok()` would give it.
pub fn parse(text: &str) -> Option<f64> {
    let (neg, body) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let special = if body.eq_ignore_ascii_case("inf") || body.eq_ignore_ascii_case("infinity") {
        Some(f64::INFINITY)
    } else if body.eq_ignore_ascii_case("nan") {
        Some(f64::NAN)
    } else {
        None
    };
    let v = match special {
        Some(v) => v,
        None => decimal(body)?,
    };
    Some(if neg { -v } else { v })
}

/// Whether `text` reads as an `f64` (as `text.parse::<f64>().is_ok()`), without converting it.
pub fn is_number(text: &str) -> bool {
    let body = text.strip_prefix(['+', '-']).unwrap_or(text);
    if ["inf", "infinity", "nan"].iter().any(|w| body.eq_ignore_ascii_case(w)) {
        return true;
    }
    let b = body.as_bytes();
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - start
    };
    let mut i = 0;
    let mut n = digits(&mut i);
    if i < b.len() && b[i] == b'.' {
        i += 1;
        n += digits(&mut i);
    }
    if n == 0 {
        return false;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        if i < b.len() && (b[i] == b'+' || b[i] == b'-') {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len()
}

/// How many significant digits are kept: more than the 767 that can decide a rounding; a nonzero
/// digit dropped after them is kept as a final 1, which breaks a tie the same way.
const MAX_DIGITS: usize = 800;

fn decimal(s: &str) -> Option<f64> {
    let b = s.as_bytes();
    let mut i = 0;
    let mut digits: Vec<u8> = Vec::new();
    let mut exp10: i64 = 0;
    let mut any = false;
    let mut dropped_nonzero = false;
    let mut push = |d: u8, digits: &mut Vec<u8>, after_point: bool, exp10: &mut i64| {
        if digits.is_empty() && d == 0 {
            if after_point {
                *exp10 -= 1;
            }
            return;
        }
        if digits.len() < MAX_DIGITS {
            digits.push(d);
            if after_point {
                *exp10 -= 1;
            }
        } else {
            dropped_nonzero |= d != 0;
            if !after_point {
                *exp10 += 1;
            }
        }
    };
    while i < b.len() && b[i].is_ascii_digit() {
        push(b[i] - b'0', &mut digits, false, &mut exp10);
        any = true;
        i += 1;
    }
    if i < b.len() && b[i] == b'.' {
        i += 1;
        while i < b.len() && b[i].is_ascii_digit() {
            push(b[i] - b'0', &mut digits, true, &mut exp10);
            any = true;
            i += 1;
        }
    }
    if !any {
        return None;
    }
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        i += 1;
        let neg = match b.get(i) {
            Some(b'-') => {
                i += 1;
                true
            }
            Some(b'+') => {
                i += 1;
                false
            }
            _ => false,
        };
        let start = i;
        let mut e: i64 = 0;
        while i < b.len() && b[i].is_ascii_digit() {
            e = (e * 10 + i64::from(b[i] - b'0')).min(1_000_000_000);
            i += 1;
        }
        if i == start {
            return None;
        }
        exp10 += if neg { -e } else { e };
    }
    if i != b.len() {
        return None;
    }
    if dropped_nonzero {
        digits.push(1);
        exp10 -= 1;
    }
    if digits.is_empty() {
        return Some(0.0);
    }
    // The value is digits × 10^exp10. Far outside f64's range, say so at once.
    let magnitude = digits.len() as i64 + exp10;
    if magnitude > 310 {
        return Some(f64::INFINITY);
    }
    if magnitude < -330 {
        return Some(0.0);
    }
    // Up to 15 digits and a power of ten up to 22 are exact in an f64, and one multiplication or
    // division of exact values is correctly rounded: most texts take this path.
    if digits.len() <= 15 && exp10.abs() <= 22 {
        let m = digits.iter().fold(0u64, |acc, &d| acc * 10 + u64::from(d)) as f64;
        let p = POW10[exp10.unsigned_abs() as usize];
        return Some(if exp10 < 0 { m / p } else { m * p });
    }
    let mut n = Big::from_digits(&digits);
    if exp10 >= 0 {
        n.mul_pow5(exp10 as u32);
        Some(round(&n, exp10, false))
    } else {
        // digits / 10^k = digits / 5^k × 2^-k: divide by 5^k with enough quotient bits.
        let k = (-exp10) as u32;
        let mut d = Big::one();
        d.mul_pow5(k);
        let shift = (d.bits() + 66).saturating_sub(n.bits());
        n.shl(shift);
        let (q, exact) = n.div(&d);
        Some(round(&q, -(i64::from(k)) - shift as i64, !exact))
    }
}

const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20,
    1e21, 1e22,
];

/// `q × 2^e2` (plus something below its last bit when `sticky`) rounded to the nearest `f64`,
/// ties to even.
fn round(q: &Big, e2: i64, sticky: bool) -> f64 {
    let bits = q.bits() as i64;
    if bits == 0 {
        return 0.0;
    }
    // Drop bits so that 53 remain, or fewer where the result is subnormal (exponent -1074 at least).
    let shift = (bits - 53).max(-1074 - e2).max(0);
    let exp = e2 + shift;
    let mut m = q.bits_from(shift as usize);
    if shift > 0 {
        let half = q.bit(shift as usize - 1);
        let below = sticky || q.any_below(shift as usize - 1);
        if half && (below || m & 1 == 1) {
            m += 1;
        }
    }
    let (m, exp) = if m >> 53 != 0 { (m >> 1, exp + 1) } else { (m, exp) };
    if m == 0 {
        return 0.0;
    }
    // m < 2^53, value m × 2^exp.
    if m >> 52 == 0 {
        // Subnormal (exp is -1074 here), or exactly representable with a shorter mantissa.
        if exp == -1074 {
            return f64::from_bits(m);
        }
        return scale(m as f64, exp);
    }
    let biased = exp + 52 + 1023;
    if biased >= 2047 {
        return f64::INFINITY;
    }
    f64::from_bits(((biased as u64) << 52) | (m & ((1 << 52) - 1)))
}

/// `x × 2^e` for an `x` whose product is exactly representable.
fn scale(mut x: f64, mut e: i64) -> f64 {
    while e > 0 {
        let s = e.min(1000);
        x *= f64::from_bits(((1023 + s) as u64) << 52);
        e -= s;
    }
    while e < 0 {
        let s = (-e).min(1000);
        x /= f64::from_bits(((1023 + s) as u64) << 52);
        e += s;
    }
    x
}

/// A nonnegative integer of any size: 32-bit limbs, least significant first.
#[derive(Clone, Debug, PartialEq)]
struct Big(Vec<u32>);

impl Big {
    fn one() -> Big {
        Big(vec![1])
    }

    fn from_digits(digits: &[u8]) -> Big {
        let mut n = Big(Vec::new());
        for chunk in digits.chunks(9) {
            let mut v = 0u32;
            for &d in chunk {
                v = v * 10 + u32::from(d);
            }
            n.mul_add(10u32.pow(chunk.len() as u32), v);
        }
        n
    }

    fn mul_add(&mut self, m: u32, a: u32) {
        let mut carry = u64::from(a);
        for l in &mut self.0 {
            let v = u64::from(*l) * u64::from(m) + carry;
            *l = v as u32;
            carry = v >> 32;
        }
        if carry != 0 {
            self.0.push(carry as u32);
        }
    }

    fn mul_pow5(&mut self, mut k: u32) {
        while k > 0 {
            let s = k.min(13); // 5^13 < 2^32
            self.mul_add(5u32.pow(s), 0);
            k -= s;
        }
    }

    fn trim(&mut self) {
        while self.0.last() == Some(&0) {
            self.0.pop();
        }
    }

    fn bits(&self) -> u32 {
        match self.0.iter().rposition(|&l| l != 0) {
            Some(i) => i as u32 * 32 + (32 - self.0[i].leading_zeros()),
            None => 0,
        }
    }

    fn bit(&self, i: usize) -> bool {
        self.0.get(i / 32).is_some_and(|l| l >> (i % 32) & 1 == 1)
    }

    fn any_below(&self, i: usize) -> bool {
        let (limb, bit) = (i / 32, i % 32);
        self.0.iter().take(limb).any(|&l| l != 0) || self.0.get(limb).is_some_and(|l| l & ((1u32 << bit) - 1) != 0)
    }

    /// Bits `from..from + 64` as a number.
    fn bits_from(&self, from: usize) -> u64 {
        (0..64).filter(|j| self.bit(from + j)).fold(0, |acc, j| acc | 1 << j)
    }

    fn shl(&mut self, by: u32) {
        let (limbs, bits) = ((by / 32) as usize, by % 32);
        if bits != 0 {
            let mut carry = 0;
            for l in &mut self.0 {
                let v = (*l << bits) | carry;
                carry = *l >> (32 - bits);
                *l = v;
            }
            if carry != 0 {
                self.0.push(carry);
            }
        }
        self.0.splice(0..0, std::iter::repeat_n(0, limbs));
    }

    fn cmp_shifted(&self, d: &Big, by: u32) -> std::cmp::Ordering {
        let mut s = d.clone();
        s.shl(by);
        s.trim();
        let mut me = self.clone();
        me.trim();
        me.0.len().cmp(&s.0.len()).then_with(|| me.0.iter().rev().cmp(s.0.iter().rev()))
    }

    fn sub_shifted(&mut self, d: &Big, by: u32) {
        let mut s = d.clone();
        s.shl(by);
        let mut borrow = 0i64;
        for i in 0..self.0.len() {
            let v = i64::from(self.0[i]) - i64::from(s.0.get(i).copied().unwrap_or(0)) - borrow;
            self.0[i] = v.rem_euclid(1 << 32) as u32;
            borrow = i64::from(v < 0);
        }
        self.trim();
    }

    /// The quotient by `d`, and whether the division is exact (restoring division, one quotient bit
    /// at a time: quotients here have tens of bits, a few thousand for the longest texts).
    fn div(mut self, d: &Big) -> (Big, bool) {
        self.trim();
        let mut q = Big(Vec::new());
        let top = self.bits().saturating_sub(d.bits());
        for b in (0..=top).rev() {
            if self.cmp_shifted(d, b) != std::cmp::Ordering::Less {
                self.sub_shifted(d, b);
                let limb = (b / 32) as usize;
                if q.0.len() <= limb {
                    q.0.resize(limb + 1, 0);
                }
                q.0[limb] |= 1 << (b % 32);
            }
        }
        let exact = self.bits() == 0;
        (q, exact)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn same(text: &str) {
        assert_eq!(is_number(text), text.parse::<f64>().is_ok(), "{text:?}");
        let want = text.parse::<f64>().ok();
        let got = parse(text);
        match (want, got) {
            (Some(w), Some(g)) => assert!(w.to_bits() == g.to_bits() || (w.is_nan() && g.is_nan()), "{text:?}: std {w:e} ours {g:e}"),
            (w, g) => assert_eq!(w.is_some(), g.is_some(), "{text:?}: std {w:?} ours {g:?}"),
        }
    }

    #[test]
    fn agrees_with_std_on_hard_and_odd_texts() {
        for t in [
            "0", "-0", "+0", "1", "1.", ".5", "0.1", "0.2", "0.3", "1e0", "1E5", "1e-5", "1.5e+3", "123456789012345678901234567890",
            "9007199254740993", "9007199254740992.5", "2.2250738585072011e-308", "2.2250738585072014e-308", "4.9e-324", "2.4e-324",
            "2.5e-324", "5e-324", "1e-400", "1.7976931348623157e308", "1.7976931348623158e308", "1.7976931348623159e308", "1e309",
            "0.0100000000", "0.33333333330", "0.5000000000", "inf", "-Infinity", "NaN", "nan", "INF", "", ".", "-", "+", "e5", "1e",
            "1e+", "1.2.3", "1_000", " 1", "1 ", "0x10", "1e1000000000000", "1e-1000000000000", "00000000000001.5",
            "0.000000000000000000000000000000000000000000001", "123.456e-7", "3.14159265358979323846264338327950288",
            "8.98846567431158e307", "1448997445238699", "1.00000000000000011102230246251565404236316680908203125",
            "1.00000000000000011102230246251565404236316680908203124", "1.00000000000000011102230246251565404236316680908203126",
        ] {
            same(t);
        }
        // Ties decided by a digit far beyond what is kept.
        let long_tie = format!("1.00000000000000011102230246251565404236316680908203125{}1", "0".repeat(900));
        same(&long_tie);
        same(&"9".repeat(1000));
        same(&format!("0.{}1", "0".repeat(330)));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(20_000))]
        #[test]
        fn agrees_with_std_on_decimal_texts(int in "[0-9]{0,20}", frac in proptest::option::of("[0-9]{0,25}"), exp in proptest::option::of(-340i32..320), sign in "[-+]?") {
            let mut t = format!("{sign}{int}");
            if let Some(f) = frac {
                t.push('.');
                t.push_str(&f);
            }
            if let Some(e) = exp {
                t.push_str(&format!("e{e}"));
            }
            same(&t);
        }

        #[test]
        fn reads_back_every_float_it_is_given(bits in any::<u64>()) {
            let x = f64::from_bits(bits);
            for t in [format!("{x}"), format!("{x:e}"), format!("{x:.3e}"), format!("{x:.20}")] {
                same(&t);
            }
        }
    }
}
