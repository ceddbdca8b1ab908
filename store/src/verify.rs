//! Offline verification of a data directory's journal: every frame's checksum, sequence and
//! hash chain, read-only, without opening the store (a store that is open elsewhere can be
//! verified, and a damaged one is never "repaired" by looking at it).

use std::path::Path;

use pole_audit::{Chain, ChainVerifier, Hash};
use serde::Serialize;

use crate::codec::decode_transaction;
use crate::journal::{list_segments, FrameProblem, SegmentReader};
use crate::Result;

/// The outcome of [`verify`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VerifyReport {
    pub ok: bool,
    /// Transactions whose frame, sequence and hash checked out, in order.
    pub transactions: u64,
    pub head_hash: Hash,
    /// The first bad transaction's sequence (or the one it should have had).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first_bad_seq: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
}

/// Walks the journal of `data_dir` from the first frame to the last.
pub fn verify(data_dir: &Path, mut progress: impl FnMut(u64)) -> Result<VerifyReport> {
    let journal = data_dir.join("journal");
    let mut chain = ChainVerifier::new(Chain::Journal);
    let mut expected_seq = 1u64;
    let fail = |chain: &ChainVerifier, seq: u64, problem: String| VerifyReport {
        ok: false,
        transactions: chain.checked(),
        head_hash: chain.last(),
        first_bad_seq: Some(seq),
        problem: Some(problem),
    };
    for (first_seq, path) in list_segments(&journal)? {
        let name = path.display().to_string();
        if first_seq != expected_seq {
            return Ok(fail(
                &chain,
                expected_seq,
                format!("{name} starts at seq {first_seq}, expected {expected_seq}"),
            ));
        }
        let mut reader = match SegmentReader::open(&path) {
            Ok(reader) => reader,
            Err(e) => return Ok(fail(&chain, expected_seq, e.to_string())),
        };
        loop {
            match reader.next_frame() {
                Ok(frame) => {
                    if frame.seq != expected_seq {
                        return Ok(fail(
                            &chain,
                            expected_seq,
                            format!("{name} byte {}: frame says seq {}", frame.location.offset, frame.seq),
                        ));
                    }
                    if let Err(e) = chain.check(frame.seq, &frame.prev, &frame.hash, &frame.payload) {
                        return Ok(fail(&chain, expected_seq, format!("{name} byte {}: {e}", frame.location.offset)));
                    }
                    if let Err(e) = decode_transaction(&frame.payload, frame.seq) {
                        return Ok(fail(&chain, expected_seq, format!("{name} byte {}: {e}", frame.location.offset)));
                    }
                    expected_seq += 1;
                    if expected_seq.is_multiple_of(10_000) {
                        progress(expected_seq);
                    }
                }
                Err(FrameProblem::End) => break,
                Err(FrameProblem::Invalid { offset, reason }) => {
                    return Ok(fail(&chain, expected_seq, format!("{name} byte {offset}: {reason}")));
                }
            }
        }
    }
    Ok(VerifyReport {
        ok: true,
        transactions: chain.checked(),
        head_hash: chain.last(),
        first_bad_seq: None,
        problem: None,
    })
}
