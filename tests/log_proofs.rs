//! The log's proofs against an independent recomputation: RFC 6962's own recursive
//! definitions of the tree hash (MTH), the audit path (PATH) and the consistency proof
//! (PROOF/SUBPROOF), written here from the RFC with SHA-256 from `ring`, and compared with
//! what the server computes from its stored subtree hashes for random trees appended in
//! random batches. Also: forged and oversized proofs are refused.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use ambulance_epr::transparency::{
    Checkpoint, HashMapReader, IntegrityError, LogHash, MAX_PROOF_HASHES, append,
    check_consistency, check_inclusion, prove_consistency, prove_inclusion,
};
use proptest::prelude::*;

fn sha256(parts: &[&[u8]]) -> [u8; 32] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    for p in parts {
        ctx.update(p);
    }
    let mut out = [0u8; 32];
    out.copy_from_slice(ctx.finish().as_ref());
    out
}

/// RFC 6962 2.1: MTH({d0}) = SHA-256(0x00 || d0); MTH(D[n]) = SHA-256(0x01 || MTH(D[0:k]) ||
/// MTH(D[k:n])) with k the largest power of two smaller than n.
fn mth(leaves: &[Vec<u8>]) -> [u8; 32] {
    match leaves.len() {
        0 => sha256(&[]),
        1 => sha256(&[&[0u8], &leaves[0]]),
        n => {
            let k = split(n);
            sha256(&[&[1u8], &mth(&leaves[..k]), &mth(&leaves[k..])])
        }
    }
}

fn split(n: usize) -> usize {
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

/// RFC 6962 2.1.1: PATH(m, D[n]).
fn path(m: usize, leaves: &[Vec<u8>]) -> Vec<[u8; 32]> {
    let n = leaves.len();
    if n <= 1 {
        return Vec::new();
    }
    let k = split(n);
    if m < k {
        let mut p = path(m, &leaves[..k]);
        p.push(mth(&leaves[k..]));
        p
    } else {
        let mut p = path(m - k, &leaves[k..]);
        p.push(mth(&leaves[..k]));
        p
    }
}

/// RFC 6962 2.1.2: PROOF(m, D[n]) = SUBPROOF(m, D[n], true).
fn subproof(m: usize, leaves: &[Vec<u8>], complete: bool) -> Vec<[u8; 32]> {
    let n = leaves.len();
    if m == n {
        return if complete {
            Vec::new()
        } else {
            vec![mth(leaves)]
        };
    }
    let k = split(n);
    if m <= k {
        let mut p = subproof(m, &leaves[..k], complete);
        p.push(mth(&leaves[k..]));
        p
    } else {
        let mut p = subproof(m - k, &leaves[k..], false);
        p.push(mth(&leaves[..k]));
        p
    }
}

fn leaf_data(i: usize, salt: u64) -> Vec<u8> {
    format!("{{\"i\":{i},\"salt\":{salt}}}").into_bytes()
}

fn raw(hashes: &[LogHash]) -> Vec<[u8; 32]> {
    hashes.iter().map(|h| h.0).collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 48, .. ProptestConfig::default() })]

    #[test]
    fn server_proofs_match_rfc6962(
        batches in prop::collection::vec(1usize..9, 1..12),
        salt in any::<u64>(),
        picks in prop::collection::vec(any::<prop::sample::Index>(), 1..6),
    ) {
        let mut leaves: Vec<Vec<u8>> = Vec::new();
        let mut store = HashMapReader::default();
        let mut checkpoints = Vec::new();
        for batch in &batches {
            let start = leaves.len();
            let new: Vec<Vec<u8>> = (start..start + batch).map(|i| leaf_data(i, salt)).collect();
            let hashes: Vec<LogHash> = new
                .iter()
                .map(|d| ambulance_epr::transparency::leaf_hash(d))
                .collect();
            let (_, root) = append(start as u64, &hashes, &mut store).unwrap();
            leaves.extend(new);
            prop_assert_eq!(root.0, mth(&leaves));
            checkpoints.push(Checkpoint { origin: "test/log".into(), size: leaves.len() as u64, root });
        }
        let n = leaves.len();
        let last = checkpoints.last().unwrap().clone();
        for pick in &picks {
            let m = pick.index(n);
            let proof = prove_inclusion(n as u64, m as u64, &store).unwrap();
            prop_assert_eq!(raw(&proof), path(m, &leaves));
            let leaf = ambulance_epr::transparency::leaf_hash(&leaves[m]);
            prop_assert!(check_inclusion(&proof, &last, m as u64, leaf).is_ok());
            // Any changed hash, a wrong index or a wrong leaf is refused.
            if let Some(first) = proof.first() {
                let mut forged = proof.clone();
                forged[0] = LogHash(sha256(&[&first.0]));
                prop_assert!(check_inclusion(&forged, &last, m as u64, leaf).is_err());
            }
            let other = ambulance_epr::transparency::leaf_hash(b"not a leaf");
            prop_assert!(check_inclusion(&proof, &last, m as u64, other).is_err());
            prop_assert!(check_inclusion(&proof, &last, n as u64, leaf).is_err());
        }
        for old in &checkpoints {
            let m = old.size as usize;
            let proof = prove_consistency(n as u64, old.size, &store).unwrap();
            prop_assert_eq!(raw(&proof), subproof(m, &leaves, true));
            prop_assert!(check_consistency(&proof, old, &last).is_ok());
            if m < n {
                // A different old root (a rewritten history) is refused with the same proof.
                let rewritten = Checkpoint { root: LogHash(sha256(&[b"other"])), ..old.clone() };
                prop_assert!(check_consistency(&proof, &rewritten, &last).is_err());
                // The log shown shorter than before is refused whatever the proof.
                let shortened = matches!(
                    check_consistency(&[], &last, old),
                    Err(IntegrityError::Shortened { .. })
                );
                prop_assert!(shortened);
            }
        }
    }
}

#[test]
fn oversized_and_malformed_proofs_are_refused_before_any_work() {
    let cp = Checkpoint {
        origin: "test/log".into(),
        size: 4,
        root: LogHash([7; 32]),
    };
    let long = vec![LogHash([1; 32]); MAX_PROOF_HASHES + 1];
    assert!(matches!(
        check_inclusion(&long, &cp, 0, LogHash([0; 32])),
        Err(IntegrityError::MalformedProof(_))
    ));
    let old = Checkpoint {
        size: 2,
        ..cp.clone()
    };
    assert!(matches!(
        check_consistency(&long, &old, &cp),
        Err(IntegrityError::MalformedProof(_))
    ));
    let texts: Vec<String> = vec!["not base64!".into()];
    assert!(ambulance_epr::transparency::parse_proof(&texts).is_err());
    let many: Vec<String> = vec![String::new(); MAX_PROOF_HASHES + 1];
    assert!(ambulance_epr::transparency::parse_proof(&many).is_err());
}
