//! The client address: the TCP peer, or the rightmost untrusted forwarded hop
//! when (and only when) the peer is a trusted proxy.

use std::net::IpAddr;

use actix_web::http::header::HeaderMap;
use ipnet::IpNet;

/// Resolves the address a request is from.
///
/// Proxies append to `X-Forwarded-For` (or `Forwarded`), so hops are read right
/// to left: each trusted proxy is skipped and the first address that is not a
/// trusted proxy is the client. A hop that does not parse ends the walk at the
/// proxy that reported it, so garbage never becomes somebody else's key. When
/// every hop is trusted, the leftmost one is used.
pub fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &[IpNet]) -> IpAddr {
    let peer = canonical(peer);
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let hops = forwarded_hops(headers);
    let mut current = peer;
    for hop in hops.iter().rev() {
        match hop {
            Some(ip) => {
                current = canonical(*ip);
                if !is_trusted(&current) {
                    return current;
                }
            }
            None => return current,
        }
    }
    current
}

/// The hops of `X-Forwarded-For`, else of `Forwarded`, in order; `None` where a
/// hop is not an IP address (`unknown`, an obfuscated identifier, garbage).
fn forwarded_hops(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let xff: Vec<&str> = headers.get_all("x-forwarded-for").filter_map(|v| v.to_str().ok()).collect();
    if !xff.is_empty() {
        return xff.iter().flat_map(|v| v.split(',')).map(|hop| parse_hop(hop.trim())).collect();
    }
    headers
        .get_all("forwarded")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|element| {
            element
                .split(';')
                .filter_map(|pair| pair.split_once('='))
                .find(|(k, _)| k.trim().eq_ignore_ascii_case("for"))
                .and_then(|(_, v)| parse_hop(v.trim().trim_matches('"')))
        })
        .collect()
}

/// `203.0.113.7`, `203.0.113.7:4711`, `2001:db8::1`, `[2001:db8::1]:4711`.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    if let Ok(ip) = hop.parse() {
        return Some(ip);
    }
    if let Some(rest) = hop.strip_prefix('[') {
        return rest.split(']').next()?.parse().ok();
    }
    let (host, port) = hop.rsplit_once(':')?;
    port.parse::<u16>().ok()?;
    host.parse::<std::net::Ipv4Addr>().ok().map(IpAddr::V4)
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(IpAddr::V6(v6)),
        v4 => v4,
    }
}

/// The rate-limit key: an IPv4 address, or an IPv6 address's /64 (one
/// subscriber usually holds a whole /64).
pub fn rate_key(ip: IpAddr) -> u128 {
    match canonical(ip) {
        IpAddr::V4(v4) => u128::from(u32::from(v4)),
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            // Mapped IPv4 occupies ::ffff:0:0/96, inside ::/64: set a bit no /64
            // key of a global address can have, to keep the two apart.
            if prefix == 0 {
                1 << 127
            } else {
                prefix
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use actix_web::http::header::{HeaderName, HeaderValue};

    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (k, v) in pairs {
            map.append(HeaderName::from_bytes(k.as_bytes()).unwrap(), HeaderValue::from_str(v).unwrap());
        }
        map
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    const PROXIES: &str = "10.0.0.0/8";

    #[test]
    fn untrusted_peer_is_the_client_whatever_it_claims() {
        let trusted: Vec<IpNet> = vec![PROXIES.parse().unwrap()];
        let h = headers(&[("x-forwarded-for", "1.2.3.4"), ("forwarded", "for=5.6.7.8")]);
        assert_eq!(client_address(ip("198.51.100.9"), &h, &trusted), ip("198.51.100.9"));
    }

    #[test]
    fn trusted_proxy_yields_rightmost_untrusted_hop() {
        let trusted: Vec<IpNet> = vec![PROXIES.parse().unwrap()];
        let h = headers(&[("x-forwarded-for", "6.6.6.6, 203.0.113.7, 10.0.0.2")]);
        assert_eq!(client_address(ip("10.0.0.1"), &h, &trusted), ip("203.0.113.7"));
        let h = headers(&[("x-forwarded-for", "6.6.6.6"), ("x-forwarded-for", "203.0.113.8:5555")]);
        assert_eq!(client_address(ip("10.0.0.1"), &h, &trusted), ip("203.0.113.8"));
    }

    #[test]
    fn forwarded_header_is_understood() {
        let trusted: Vec<IpNet> = vec![PROXIES.parse().unwrap()];
        let h = headers(&[("forwarded", "for=6.6.6.6, for=\"[2001:db8:cafe::17]:4711\";proto=https")]);
        assert_eq!(client_address(ip("10.0.0.1"), &h, &trusted), ip("2001:db8:cafe::17"));
    }

    #[test]
    fn garbage_hop_stops_at_the_reporting_proxy() {
        let trusted: Vec<IpNet> = vec![PROXIES.parse().unwrap()];
        let h = headers(&[("x-forwarded-for", "6.6.6.6, not-an-ip, 10.0.0.3")]);
        assert_eq!(client_address(ip("10.0.0.1"), &h, &trusted), ip("10.0.0.3"));
        let none = headers(&[]);
        assert_eq!(client_address(ip("10.0.0.1"), &none, &trusted), ip("10.0.0.1"));
    }

    #[test]
    fn ipv6_keys_by_64_and_mapped_ipv4_is_ipv4() {
        assert_eq!(rate_key(ip("2001:db8:1:2:aaaa::1")), rate_key(ip("2001:db8:1:2:bbbb::2")));
        assert_ne!(rate_key(ip("2001:db8:1:2::1")), rate_key(ip("2001:db8:1:3::1")));
        assert_eq!(rate_key(ip("::ffff:192.0.2.1")), rate_key(ip("192.0.2.1")));
        assert_ne!(rate_key(ip("::1")), rate_key(ip("0.0.0.1")));
    }
}
