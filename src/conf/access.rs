//! `allow` / `deny` [publish|play] ADDRESS[/PREFIX] | all: who may publish and play.
//! Rules are checked in order, the first match decides; no match allows.

use std::net::IpAddr;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Action {
    Publish,
    Play,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    pub allow: bool,
    pub publish: bool,
    pub play: bool,
    /// `None` matches every address (`all`).
    pub net: Option<(IpAddr, u8)>,
}

impl Rule {
    /// Parses the arguments of `allow`/`deny` (without the name).
    pub fn parse(allow: bool, args: &[&str]) -> Result<Rule, String> {
        let (publish, play, addr) = match args {
            [addr] => (true, true, *addr),
            ["publish", addr] => (true, false, *addr),
            ["play", addr] => (false, true, *addr),
            [what, _] => return Err(format!("unexpected access specified: \"{what}\", must be \"publish\" or \"play\"")),
            _ => return Err("invalid number of arguments".into()),
        };
        let net = if addr == "all" { None } else { Some(parse_cidr(addr).ok_or_else(|| format!("invalid parameter \"{addr}\""))?) };
        Ok(Rule { allow, publish, play, net })
    }

    fn matches(&self, action: Action, ip: IpAddr) -> bool {
        let applies = match action {
            Action::Publish => self.publish,
            Action::Play => self.play,
        };
        applies && self.net.is_none_or(|(net, bits)| in_net(ip, net, bits))
    }
}

/// Whether `ip` may do `action` under `rules` (first match wins; none matching allows).
pub fn allowed(rules: &[Rule], action: Action, ip: IpAddr) -> bool {
    rules.iter().find(|r| r.matches(action, ip)).is_none_or(|r| r.allow)
}

fn parse_cidr(s: &str) -> Option<(IpAddr, u8)> {
    let (addr, bits) = match s.split_once('/') {
        Some((a, b)) => (a, Some(b)),
        None => (s, None),
    };
    let ip: IpAddr = addr.parse().ok()?;
    let max = if ip.is_ipv4() { 32 } else { 128 };
    let bits = match bits {
        None => max,
        Some(b) => super::value::parse_num(b).filter(|&n| n <= max as u64)? as u8,
    };
    // Low address bits beyond the prefix are meaningless; keep only the network.
    Some((mask(ip, bits), bits))
}

fn mask(ip: IpAddr, bits: u8) -> IpAddr {
    match ip {
        IpAddr::V4(a) => {
            let m = if bits == 0 { 0 } else { u32::MAX << (32 - bits) };
            IpAddr::V4((u32::from(a) & m).into())
        }
        IpAddr::V6(a) => {
            let m = if bits == 0 { 0 } else { u128::MAX << (128 - bits) };
            IpAddr::V6((u128::from(a) & m).into())
        }
    }
}

fn in_net(ip: IpAddr, net: IpAddr, bits: u8) -> bool {
    // An IPv4 client on an IPv6 socket arrives as ::ffff:a.b.c.d.
    let ip = match ip {
        IpAddr::V6(v6) if net.is_ipv4() => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        _ => ip,
    };
    ip.is_ipv4() == net.is_ipv4() && mask(ip, bits) == net
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn first_match_wins() {
        let rules = vec![
            Rule::parse(true, &["publish", "127.0.0.1"]).unwrap(),
            Rule::parse(false, &["publish", "all"]).unwrap(),
            Rule::parse(false, &["play", "10.0.0.0/8"]).unwrap(),
        ];
        assert!(allowed(&rules, Action::Publish, ip("127.0.0.1")));
        assert!(!allowed(&rules, Action::Publish, ip("127.0.0.2")));
        assert!(allowed(&rules, Action::Play, ip("127.0.0.2")));
        assert!(!allowed(&rules, Action::Play, ip("10.1.2.3")));
        assert!(!allowed(&rules, Action::Play, ip("::ffff:10.1.2.3")));
        assert!(allowed(&[], Action::Play, ip("::1")));
    }

    #[test]
    fn parsing() {
        let r = Rule::parse(true, &["192.168.1.77/24"]).unwrap();
        assert_eq!(r.net, Some((ip("192.168.1.0"), 24)));
        assert!(r.publish && r.play);
        assert!(Rule::parse(true, &["2001:db8::/32"]).is_ok());
        for bad in [&["publish", "x"][..], &["record", "all"], &["1.2.3.4/33"], &["::1/129"], &["host"]] {
            assert!(Rule::parse(true, bad).is_err(), "{bad:?}");
        }
    }
}
