//! The client's address, for abuse limits: the socket peer; or, when the peer is one of the
//! operator's reverse proxies (`trusted_proxies`), the right-most address of the header they
//! set (`client_ip_header`) that is not itself a trusted proxy. Entries left of that one were
//! written by the client, who can put anything there.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use axum::{
    extract::{ConnectInfo, FromRef, FromRequestParts},
    http::{request::Parts, HeaderMap},
};

#[derive(Clone, Copy, Debug)]
pub struct ClientAddr(pub IpAddr);

/// Which proxies are believed, and the header they set: what a server's state gives
/// [`ClientAddr`].
#[derive(Clone, Debug, Default)]
pub struct ClientAddrSettings {
    pub header: Option<String>,
    pub trusted_proxies: Vec<ipnet::IpNet>,
}

impl<S> FromRequestParts<S> for ClientAddr
where
    ClientAddrSettings: FromRef<S>,
    S: Send + Sync,
{
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &S,
    ) -> Result<Self, std::convert::Infallible> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|c| c.0.ip())
            .unwrap_or(IpAddr::V4(Ipv4Addr::UNSPECIFIED));
        let settings = ClientAddrSettings::from_ref(state);
        Ok(ClientAddr(client_ip(
            peer,
            &parts.headers,
            settings.header.as_deref(),
            &settings.trusted_proxies,
        )))
    }
}

/// The client behind `peer`. Walks the header from the right while the hop is a trusted
/// proxy; the first address that is not one is the client. A hop that is not an address
/// (a proxy that passed the header on without appending) ends the walk at the last trusted
/// hop, which is then the best address known.
pub fn client_ip(
    peer: IpAddr,
    headers: &HeaderMap,
    header: Option<&str>,
    trusted: &[ipnet::IpNet],
) -> IpAddr {
    let peer = peer.to_canonical();
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    let Some(header) = header else {
        return peer;
    };
    if !is_trusted(&peer) {
        return peer;
    }
    let values: Vec<&str> = headers
        .get_all(header)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .collect();
    let mut client = peer;
    for hop in values.iter().rev() {
        let Ok(ip) = hop.trim().parse::<IpAddr>() else {
            break;
        };
        client = ip.to_canonical();
        if !is_trusted(&client) {
            break;
        }
    }
    client
}

impl ClientAddr {
    /// IPv6 clients get a /64 each from their provider: count the network, not the address.
    pub fn subject(&self) -> String {
        match self.0 {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => {
                let s = v6.segments();
                format!("{:x}:{:x}:{:x}:{:x}::/64", s[0], s[1], s[2], s[3])
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn nets(list: &[&str]) -> Vec<ipnet::IpNet> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn from(peer: &str, xff: &[&str], trusted: &[&str]) -> IpAddr {
        let mut headers = HeaderMap::new();
        for v in xff {
            headers.append("x-forwarded-for", v.parse().unwrap());
        }
        client_ip(ip(peer), &headers, Some("x-forwarded-for"), &nets(trusted))
    }

    #[test]
    fn the_header_counts_only_from_a_trusted_proxy() {
        let proxies = ["10.0.0.0/8"];
        assert_eq!(
            from("10.0.0.5", &["203.0.113.7"], &proxies),
            ip("203.0.113.7")
        );
        assert_eq!(
            from("198.51.100.9", &["203.0.113.7"], &proxies),
            ip("198.51.100.9"),
            "an untrusted peer's header is ignored"
        );
        assert_eq!(
            from("10.0.0.5", &["203.0.113.7"], &[]),
            ip("10.0.0.5"),
            "no trusted proxy, no header"
        );
    }

    #[test]
    fn the_right_most_address_that_is_no_proxy_is_the_client() {
        let proxies = ["10.0.0.0/8", "192.0.2.1/32"];
        // The client forged the first entry; two proxies appended after it.
        assert_eq!(
            from("10.0.0.5", &["1.2.3.4, 203.0.113.7, 192.0.2.1"], &proxies),
            ip("203.0.113.7")
        );
        // The same split over several header lines.
        assert_eq!(
            from(
                "10.0.0.5",
                &["1.2.3.4", "203.0.113.7", "192.0.2.1"],
                &proxies
            ),
            ip("203.0.113.7")
        );
        // Every hop a proxy: the left-most one is the best known.
        assert_eq!(
            from("10.0.0.5", &["10.9.9.9, 192.0.2.1"], &proxies),
            ip("10.9.9.9")
        );
        // Garbage where an address should be: the last trusted hop.
        assert_eq!(
            from("10.0.0.5", &["203.0.113.7, nonsense, 192.0.2.1"], &proxies),
            ip("192.0.2.1")
        );
        assert_eq!(from("10.0.0.5", &[], &proxies), ip("10.0.0.5"));
    }

    #[test]
    fn mapped_ipv6_addresses_count_as_ipv4() {
        assert_eq!(
            from("::ffff:10.0.0.5", &["::ffff:203.0.113.7"], &["10.0.0.0/8"]),
            ip("203.0.113.7")
        );
        assert_eq!(
            from("2001:db8::1", &["203.0.113.7"], &["2001:db8::/32"]),
            ip("203.0.113.7")
        );
    }
}
