//! IP parsing the way Kubernetes does it (`ParseIPSloppy`): IPv4 octets with leading zeros are read as
//! decimal, IPv4-mapped IPv6 addresses are IPv4, and every address is written back in canonical form.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Parse an IP string leniently. Returns `None` for anything that is not an IP address.
pub fn parse_ip_sloppy(s: &str) -> Option<IpAddr> {
    if s.contains(':') {
        parse_ipv6_sloppy(s).map(|v6| match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(v6),
        })
    } else {
        parse_ipv4_sloppy(s).map(IpAddr::V4)
    }
}

fn parse_ipv4_sloppy(s: &str) -> Option<Ipv4Addr> {
    let mut octets = [0u8; 4];
    let mut parts = s.split('.');
    for o in octets.iter_mut() {
        let p = parts.next()?;
        if p.is_empty() || p.len() > 3 || !p.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        *o = p.parse::<u16>().ok().filter(|v| *v <= 255)? as u8;
    }
    if parts.next().is_some() {
        return None;
    }
    Some(Ipv4Addr::from(octets))
}

fn parse_ipv6_sloppy(s: &str) -> Option<Ipv6Addr> {
    if let Ok(a) = s.parse::<Ipv6Addr>() {
        return Some(a);
    }
    // An embedded IPv4 tail with leading zeros ("::ffff:010.001.000.001") is accepted by Go.
    let (head, tail) = s.rsplit_once(':')?;
    if tail.contains('.') {
        let v4 = parse_ipv4_sloppy(tail)?;
        return format!("{head}:{v4}").parse().ok();
    }
    None
}

/// `true` when the string is an IPv6 address in Kubernetes' sense (`utilnet.IsIPv6String`):
/// IPv4-mapped addresses count as IPv4.
pub fn is_ipv6_string(s: &str) -> bool {
    matches!(parse_ip_sloppy(s), Some(IpAddr::V6(_)))
}

/// Already the canonical text of an IPv4 address (four decimal octets, no leading zeros): then
/// parsing and printing it again gives it back unchanged, and both can be skipped.
pub fn is_canonical_ipv4(s: &str) -> bool {
    let mut n = 0;
    for p in s.split('.') {
        n += 1;
        let b = p.as_bytes();
        let ok = match b.len() {
            1 => b[0].is_ascii_digit(),
            2 => b[0] != b'0' && b.iter().all(u8::is_ascii_digit),
            3 => b[0] != b'0' && b.iter().all(u8::is_ascii_digit) && p <= "255",
            _ => false,
        };
        if !ok || n > 4 {
            return false;
        }
    }
    n == 4
}

/// The canonical text of an IP as Go's `net.IP.String()` prints it; `<nil>` for a string that does not
/// parse (what the real controller writes for such a pod IP).
pub fn canonical_ip(s: &str) -> String {
    match parse_ip_sloppy(s) {
        Some(ip) => ip.to_string(),
        None => "<nil>".to_string(),
    }
}

/// The IP family of an address string, if it parses.
pub fn family_of(s: &str) -> Option<crate::IpFamily> {
    match parse_ip_sloppy(s)? {
        IpAddr::V4(_) => Some(crate::IpFamily::V4),
        IpAddr::V6(_) => Some(crate::IpFamily::V6),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_canonical_ipv4_text_is_its_own_canonical_form() {
        let mut rng = crate::rng::Rng::new(7);
        let parts = ["0", "00", "1", "01", "9", "10", "010", "99", "100", "199", "200", "249", "250", "255", "256", "300", "999", "", "a", "1a"];
        for _ in 0..20_000 {
            let n = 3 + rng.below(3) as usize;
            let s: Vec<&str> = (0..n).map(|_| parts[rng.below(parts.len() as u64) as usize]).collect();
            let s = s.join(".");
            let canonical = canonical_ip(&s);
            assert_eq!(is_canonical_ipv4(&s), canonical == s, "{s} -> {canonical}");
        }
        assert!(is_canonical_ipv4("10.244.0.27") && !is_canonical_ipv4("10.244.0.027") && !is_canonical_ipv4("::1"));
    }

    #[test]
    fn canonicalises_like_go() {
        assert_eq!(canonical_ip("010.001.000.001"), "10.1.0.1");
        assert_eq!(canonical_ip("FD00:0010:0000:0000:0000:0000:0000:0001"), "fd00:10::1");
        assert_eq!(canonical_ip("1234::5678:0000:0000:9abc:def0"), "1234::5678:0:0:9abc:def0");
        assert_eq!(canonical_ip("::ffff:10.1.0.3"), "10.1.0.3");
        assert_eq!(canonical_ip("1.2.3.256"), "<nil>");
        assert_eq!(canonical_ip(""), "<nil>");
        assert_eq!(canonical_ip("1.2.3"), "<nil>");
    }

    #[test]
    fn families() {
        assert!(is_ipv6_string("fd00::1"));
        assert!(!is_ipv6_string("::ffff:1.2.3.4"));
        assert!(!is_ipv6_string("1.2.3.4"));
        assert!(!is_ipv6_string("garbage"));
    }
}
