//! Just enough of Kubernetes' `resource.Quantity` to read allocatable CPU as milli-CPU
//! (`MilliValue()`, which rounds up).

/// Parse a quantity such as `4`, `100m`, `1.5`, `2k` or `500u` into milli-units, rounding up like
/// `Quantity.MilliValue()`. `None` when the string is not a quantity.
pub fn parse_milli(s: &str) -> Option<i64> {
    let s = s.trim();
    if s.is_empty() {
        return None;
    }
    let split = s.find(|c: char| !(c.is_ascii_digit() || c == '.' || c == '+' || c == '-')).unwrap_or(s.len());
    let (num, suffix) = s.split_at(split);
    // (multiplier numerator, denominator) relative to milli-units.
    let (mul, div): (i128, i128) = match suffix {
        "" => (1000, 1),
        "n" => (1, 1_000_000),
        "u" => (1, 1000),
        "m" => (1, 1),
        "k" => (1_000_000, 1),
        "M" => (1_000_000_000, 1),
        "G" => (1_000_000_000_000, 1),
        "T" => (1_000_000_000_000_000, 1),
        "Ki" => (1024 * 1000, 1),
        "Mi" => (1024 * 1024 * 1000, 1),
        "Gi" => (1024 * 1024 * 1024 * 1000, 1),
        _ => return None,
    };
    let (neg, num) = match num.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, num.strip_prefix('+').unwrap_or(num)),
    };
    let (int_part, frac_part) = num.split_once('.').unwrap_or((num, ""));
    if int_part.is_empty() && frac_part.is_empty() {
        return None;
    }
    if !int_part.bytes().all(|b| b.is_ascii_digit()) || !frac_part.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    if int_part.len() + frac_part.len() > 30 {
        return None;
    }
    let digits = format!("{int_part}{frac_part}");
    let value: i128 = digits.parse().ok()?;
    let scale: i128 = 10i128.checked_pow(frac_part.len() as u32)?;
    let numer = value.checked_mul(mul)?;
    let denom = scale.checked_mul(div)?;
    let mut milli = numer / denom;
    if numer % denom != 0 {
        milli += 1; // MilliValue rounds up
    }
    let milli = if neg { -milli } else { milli };
    i64::try_from(milli).ok()
}

#[cfg(test)]
mod tests {
    use super::parse_milli;

    #[test]
    fn parses_cpu_forms() {
        assert_eq!(parse_milli("4"), Some(4000));
        assert_eq!(parse_milli("100m"), Some(100));
        assert_eq!(parse_milli("1.5"), Some(1500));
        assert_eq!(parse_milli("2k"), Some(2_000_000));
        assert_eq!(parse_milli("1500u"), Some(2));
        assert_eq!(parse_milli("0"), Some(0));
        assert_eq!(parse_milli("abc"), None);
        assert_eq!(parse_milli(""), None);
        assert_eq!(parse_milli("1x"), None);
    }
}
