//! Reading multiaddrs: the IP one starts with, the peer it names, whether
//! it goes through a relay.

use libp2p::multiaddr::Protocol as AddrProtocol;
use libp2p::{Multiaddr, PeerId};

/// The IP an address starts with, if any.
pub(crate) fn ip_of(addr: &Multiaddr) -> Option<std::net::IpAddr> {
    addr.iter().find_map(|part| match part {
        AddrProtocol::Ip4(ip) => Some(ip.into()),
        AddrProtocol::Ip6(ip) => Some(ip.into()),
        _ => None,
    })
}

/// The peer an address names in its trailing `/p2p/<peer id>`, if any.
pub(crate) fn peer_of(addr: &Multiaddr) -> Option<PeerId> {
    match addr.iter().last() {
        Some(AddrProtocol::P2p(peer)) => Some(peer),
        _ => None,
    }
}

/// The address without its trailing `/p2p/<peer id>`.
pub(crate) fn without_peer(mut addr: Multiaddr) -> Multiaddr {
    if peer_of(&addr).is_some() {
        addr.pop();
    }
    addr
}

/// Whether an address goes through a relay.
pub(crate) fn is_relayed(addr: &Multiaddr) -> bool {
    addr.iter().any(|part| part == AddrProtocol::P2pCircuit)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peer_suffix_is_read_and_stripped() {
        let peer = crate::identity::keypair_of(&[1; 32]).public().to_peer_id();
        let base: Multiaddr = "/ip4/127.0.0.1/tcp/4001".parse().unwrap();
        let full = base.clone().with(AddrProtocol::P2p(peer));
        assert_eq!(peer_of(&full), Some(peer));
        assert_eq!(peer_of(&base), None);
        assert_eq!(without_peer(full), base);
        assert_eq!(without_peer(base.clone()), base);
    }

    #[test]
    fn relayed_addresses_are_told_apart() {
        let direct: Multiaddr = "/ip4/10.0.0.1/tcp/4001".parse().unwrap();
        assert!(!is_relayed(&direct));
        let peer = crate::identity::keypair_of(&[9; 32]).public().to_peer_id();
        let relayed = direct
            .clone()
            .with(AddrProtocol::P2p(peer))
            .with(AddrProtocol::P2pCircuit);
        assert!(is_relayed(&relayed));
        assert_eq!(ip_of(&relayed), Some("10.0.0.1".parse().unwrap()));
    }
}
