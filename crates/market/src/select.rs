//! Auction selection: from the offers a request collected, award the k best —
//! cheapest first, then the most reputable, then by node id so the choice is
//! deterministic. The user's `max_price` is the reserve: offers above it never win.

use peercloud_types::{Amount, NodeId, Offer, Signed};

/// An offer with what the requester knows of its node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    /// The signed offer.
    pub offer: Signed<Offer>,
    /// The node's ledger reputation.
    pub reputation: u32,
}

/// Not enough acceptable offers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the job needs {wanted} nodes, {acceptable} acceptable offers came ({received} in all)")]
pub struct SelectionError {
    /// Nodes wanted (the job's redundancy).
    pub wanted: usize,
    /// Offers at or under the reserve, with a valid signature, from distinct nodes.
    pub acceptable: usize,
    /// Offers received.
    pub received: usize,
}

/// Picks `k` offers: valid signature, price at most `reserve`, still valid at
/// `now_ms`, one per node; cheapest, then most reputable, then lowest node id.
pub fn select(
    candidates: &[Candidate],
    k: usize,
    reserve: Amount,
    now_ms: u64,
) -> Result<Vec<Candidate>, SelectionError> {
    let mut acceptable: Vec<&Candidate> = candidates
        .iter()
        .filter(|c| {
            c.offer.body.price <= reserve
                && c.offer.body.valid_until_ms >= now_ms
                && c.offer.signer == *c.offer.body.node.key()
                && c.offer.verify().is_ok()
        })
        .collect();
    acceptable.sort_by(|a, b| {
        (
            a.offer.body.price,
            std::cmp::Reverse(a.reputation),
            a.offer.body.node,
        )
            .cmp(&(
                b.offer.body.price,
                std::cmp::Reverse(b.reputation),
                b.offer.body.node,
            ))
    });
    let mut seen: Vec<NodeId> = Vec::with_capacity(k);
    let mut chosen = Vec::with_capacity(k);
    for c in acceptable {
        if chosen.len() == k {
            break;
        }
        if !seen.contains(&c.offer.body.node) {
            seen.push(c.offer.body.node);
            chosen.push(c.clone());
        }
    }
    if chosen.len() < k {
        return Err(SelectionError {
            wanted: k,
            acceptable: chosen.len(),
            received: candidates.len(),
        });
    }
    Ok(chosen)
}

#[cfg(test)]
mod tests {
    use super::*;
    use peercloud_types::{Hash32, JobId, Keypair};

    fn candidate(seed: u8, price: u128, reputation: u32) -> Candidate {
        let key = Keypair::from_seed(&[seed; 32]);
        let offer = Offer {
            job: JobId(Hash32::of(b"job")),
            node: key.node_id(),
            price: Amount::from_base_units(price),
            valid_until_ms: 1_000,
        };
        Candidate {
            offer: Signed::new(offer, &key),
            reputation,
        }
    }

    #[test]
    fn cheapest_then_most_reputable() {
        let offers = vec![
            candidate(1, 50, 9_000),
            candidate(2, 30, 1_000),
            candidate(3, 30, 8_000),
        ];
        let chosen = select(&offers, 2, Amount::from_base_units(100), 0).unwrap();
        let prices: Vec<_> = chosen
            .iter()
            .map(|c| (c.offer.body.price.base_units(), c.reputation))
            .collect();
        assert_eq!(prices, vec![(30, 8_000), (30, 1_000)]);
    }

    #[test]
    fn reserve_expiry_forgery_and_duplicates_are_filtered() {
        let mut forged = candidate(4, 1, 5_000);
        forged.offer.body.price = Amount::from_base_units(0);
        let offers = vec![
            candidate(1, 500, 5_000), // above reserve
            forged,                   // bad signature
            candidate(2, 10, 5_000),
            candidate(2, 10, 5_000), // same node twice
        ];
        let err = select(&offers, 2, Amount::from_base_units(100), 0).unwrap_err();
        assert_eq!(
            err,
            SelectionError {
                wanted: 2,
                acceptable: 1,
                received: 4
            }
        );
        assert!(
            select(&[candidate(5, 1, 0)], 1, Amount::from_base_units(9), 2_000).is_err(),
            "expired"
        );
    }
}
