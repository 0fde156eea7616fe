//! Where a webhook may connect. A receiver's URL comes from configuration, but
//! its name resolves at delivery time, so the check runs on the resolved
//! addresses and the client connects to exactly those: a name that changes its
//! answer between check and connect (DNS rebinding) has nothing to slip through.

use std::fmt;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, ToSocketAddrs};

/// The AWS, GCP and Azure instance metadata service, and AWS's IPv6 one.
const METADATA_V4: Ipv4Addr = Ipv4Addr::new(169, 254, 169, 254);
const METADATA_V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254);

/// Why a receiver address is refused, or `None` when it is a public address.
pub fn refusal(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => refusal_v4(v4),
        IpAddr::V6(v6) => refusal_v6(v6),
    }
}

fn refusal_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, ..] = ip.octets();
    let why = if ip == METADATA_V4 {
        "a cloud metadata address"
    } else if a == 0 {
        "an unspecified address"
    } else if ip.is_loopback() {
        "a loopback address"
    } else if ip.is_private() {
        "a private (RFC 1918) address"
    } else if a == 100 && (64..128).contains(&b) {
        "a shared (CGNAT, RFC 6598) address"
    } else if ip.is_link_local() {
        "a link-local address"
    } else if ip.is_multicast() {
        "a multicast address"
    } else if a >= 240 {
        "a reserved address"
    } else {
        return None;
    };
    Some(why)
}

fn refusal_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let first = ip.segments()[0];
    let why = if ip == METADATA_V6 {
        "a cloud metadata address"
    } else if ip.is_unspecified() {
        "an unspecified address"
    } else if ip.is_loopback() {
        "a loopback address"
    } else if ip.is_multicast() {
        "a multicast address"
    } else if first & 0xffc0 == 0xfe80 {
        "a link-local address"
    } else if first & 0xfe00 == 0xfc00 {
        "a unique local address"
    } else {
        // `::ffff:a.b.c.d` and the deprecated `::a.b.c.d` reach the IPv4 address.
        return ip.to_ipv4().or_else(|| nat64(ip)).and_then(refusal_v4);
    };
    Some(why)
}

/// The IPv4 address behind the well-known NAT64 prefix `64:ff9b::/96`.
fn nat64(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = ip.segments();
    (s[..6] == [0x64, 0xff9b, 0, 0, 0, 0]).then(|| Ipv4Addr::from(((s[6] as u32) << 16) | s[7] as u32))
}

/// A receiver address that the rule refuses; carried inside the resolver's
/// `io::Error` so that the client can tell it from a DNS failure.
#[derive(Debug)]
pub struct Refused {
    pub ip: IpAddr,
    pub why: &'static str,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "the receiver resolves to {} ({}), and webhooks.allow_private_targets is false", self.ip, self.why)
    }
}

impl std::error::Error for Refused {}

/// The resolver every webhook connection goes through: ureq connects only to
/// the addresses it returns, and asks it again for every new connection.
pub struct GuardedResolver {
    pub allow_private: bool,
}

impl ureq::Resolver for GuardedResolver {
    fn resolve(&self, netloc: &str) -> io::Result<Vec<SocketAddr>> {
        let resolved: Vec<SocketAddr> = netloc.to_socket_addrs()?.collect();
        if self.allow_private {
            return Ok(resolved);
        }
        let (allowed, refused): (Vec<SocketAddr>, Vec<SocketAddr>) =
            resolved.into_iter().partition(|a| refusal(a.ip()).is_none());
        match (allowed.is_empty(), refused.first()) {
            (true, Some(first)) => {
                let why = refusal(first.ip()).unwrap_or_default();
                Err(io::Error::new(io::ErrorKind::PermissionDenied, Refused { ip: first.ip(), why }))
            }
            _ => Ok(allowed),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ureq::Resolver;

    fn why(ip: &str) -> Option<&'static str> {
        refusal(ip.parse().unwrap())
    }

    #[test]
    fn refuses_every_non_public_range() {
        let refused = [
            ("127.0.0.1", "loopback"),
            ("127.255.0.9", "loopback"),
            ("10.0.0.1", "private"),
            ("172.16.0.1", "private"),
            ("172.31.255.255", "private"),
            ("192.168.1.1", "private"),
            ("100.64.0.1", "CGNAT"),
            ("100.127.255.254", "CGNAT"),
            ("169.254.1.1", "link-local"),
            ("169.254.169.254", "metadata"),
            ("0.0.0.0", "unspecified"),
            ("0.1.2.3", "unspecified"),
            ("224.0.0.1", "multicast"),
            ("255.255.255.255", "reserved"),
            ("::1", "loopback"),
            ("::", "unspecified"),
            ("fe80::1", "link-local"),
            ("febf::1", "link-local"),
            ("fc00::1", "unique local"),
            ("fd12:3456::1", "unique local"),
            ("fd00:ec2::254", "metadata"),
            ("ff02::1", "multicast"),
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:10.1.2.3", "private"),
            ("::ffff:169.254.169.254", "metadata"),
            ("64:ff9b::a00:1", "private"),
        ];
        for (ip, expected) in refused {
            let reason = why(ip).unwrap_or_else(|| panic!("{ip} was allowed"));
            assert!(reason.contains(expected), "{ip}: {reason}");
        }
    }

    #[test]
    fn allows_public_addresses() {
        for ip in ["93.184.215.14", "100.63.255.255", "100.128.0.1", "172.32.0.1", "1.1.1.1", "2606:4700::1111"] {
            assert_eq!(why(ip), None, "{ip}");
        }
        assert_eq!(why("::ffff:8.8.8.8"), None);
        assert_eq!(why("64:ff9b::808:808"), None);
    }

    #[test]
    fn the_resolver_refuses_after_resolution_unless_allowed() {
        let guarded = GuardedResolver { allow_private: false };
        let error = guarded.resolve("localhost:80").unwrap_err();
        let refused = error.get_ref().and_then(|e| e.downcast_ref::<Refused>()).expect("a refusal");
        assert!(refused.ip.is_loopback());
        assert!(guarded.resolve("[::ffff:127.0.0.1]:80").is_err());
        let open = GuardedResolver { allow_private: true };
        assert!(open.resolve("localhost:80").unwrap().iter().all(|a| a.ip().is_loopback()));
    }
}
