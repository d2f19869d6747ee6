//! nginx's value syntax for directive arguments: sizes (`4096`, `8k`, `1m`), times
//! (`500ms`, `10s`, `1m 30s`, a bare number meaning seconds), numbers and flags.
//! Same rules as nginx's own parsers, so a config that nginx-rtmp-module accepted is
//! read the same way here.

/// Parses a size: decimal digits with an optional `k`/`K` (KiB) or `m`/`M` (MiB) suffix.
pub fn parse_size(s: &str) -> Option<u64> {
    let (digits, scale) = match s.as_bytes().last()? {
        b'k' | b'K' => (&s[..s.len() - 1], 1024),
        b'm' | b'M' => (&s[..s.len() - 1], 1024 * 1024),
        _ => (s, 1),
    };
    parse_num(digits)?.checked_mul(scale)
}

/// Parses a non-negative decimal number (no sign, no spaces).
pub fn parse_num(s: &str) -> Option<u64> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// Parses `on` / `off` (any case, as nginx does).
pub fn parse_flag(s: &str) -> Option<bool> {
    if s.eq_ignore_ascii_case("on") {
        Some(true)
    } else if s.eq_ignore_ascii_case("off") {
        Some(false)
    } else {
        None
    }
}

/// Parses an nginx time into milliseconds: a sequence of `<number><unit>` parts with units
/// in decreasing order (`M` months, `w`, `d`, `h`, `m`, `s`, `ms`), optionally separated by
/// spaces; a final bare number counts as seconds.
pub fn parse_msec(s: &str) -> Option<u64> {
    parse_time(s, false)
}

/// Parses an nginx time into whole seconds (`y` allowed, `ms` not).
pub fn parse_sec(s: &str) -> Option<u64> {
    parse_time(s, true)
}

fn parse_time(s: &str, seconds: bool) -> Option<u64> {
    // (unit, size in ms); the order is the order units must appear in.
    const UNITS: [(&str, u64); 8] = [
        ("y", 365 * 86_400_000),
        ("M", 30 * 86_400_000),
        ("w", 7 * 86_400_000),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1000),
        ("ms", 1),
    ];
    let mut rest = s;
    let mut total: u64 = 0;
    let mut next_unit = if seconds { 0 } else { 1 };
    let mut any = false;
    while !rest.is_empty() {
        let end = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        let value: u64 = if end == 0 { return None } else { rest[..end].parse().ok()? };
        any = true;
        rest = &rest[end..];
        let unit = if rest.is_empty() || rest.starts_with(' ') {
            // A bare number: seconds, and nothing may follow it.
            if !rest.trim_start_matches(' ').is_empty() {
                return None;
            }
            6
        } else if let Some(r) = rest.strip_prefix("ms") {
            rest = r;
            7
        } else {
            let u = UNITS.iter().position(|(name, _)| rest.starts_with(name))?;
            rest = &rest[1..];
            u
        };
        if unit < next_unit || (seconds && unit == 7) {
            return None;
        }
        next_unit = unit + 1;
        total = total.checked_add(value.checked_mul(UNITS[unit].1)?)?;
        rest = rest.trim_start_matches(' ');
    }
    if !any || total > i64::MAX as u64 {
        return None;
    }
    Some(if seconds { total / 1000 } else { total })
}

/// A path as written, taken from nginx's `prefix` when it is relative (as nginx resolves
/// its own paths; an empty prefix leaves it as it is).
pub fn full_path(prefix: &str, p: &str) -> String {
    if p.starts_with('/') || prefix.is_empty() {
        p.to_owned()
    } else {
        format!("{}/{p}", prefix.trim_end_matches('/'))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("4096"), Some(4096));
        assert_eq!(parse_size("8k"), Some(8192));
        assert_eq!(parse_size("1M"), Some(1 << 20));
        for bad in ["", "k", "-1", "1g", "1.5m", " 1", "1 k", "99999999999999999999"] {
            assert_eq!(parse_size(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn times() {
        assert_eq!(parse_msec("60"), Some(60_000));
        assert_eq!(parse_msec("500ms"), Some(500));
        assert_eq!(parse_msec("10s"), Some(10_000));
        assert_eq!(parse_msec("1m 30s"), Some(90_000));
        assert_eq!(parse_msec("1m30s"), Some(90_000));
        assert_eq!(parse_msec("1h"), Some(3_600_000));
        assert_eq!(parse_msec("2d 1"), Some(2 * 86_400_000 + 1000));
        assert_eq!(parse_sec("1y"), Some(365 * 86_400));
        for bad in ["", "s", "10x", "1s 1m", "1s1s", "1y", "-5s", "1.5s", "10 10", "1ms1s"] {
            assert_eq!(parse_msec(bad), None, "{bad:?}");
        }
        assert_eq!(parse_sec("500ms"), None);
    }

    #[test]
    fn flags_and_numbers() {
        assert_eq!(parse_flag("on"), Some(true));
        assert_eq!(parse_flag("OFF"), Some(false));
        assert_eq!(parse_flag("yes"), None);
        assert_eq!(parse_num("0"), Some(0));
        assert_eq!(parse_num("+1"), None);
        assert_eq!(parse_num(""), None);
    }
}
