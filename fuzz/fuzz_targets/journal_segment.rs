//! Arbitrary bytes as a journal segment: the reader must return frames or a named problem,
//! never panic, and never hand out a frame whose checksum does not hold.
#![no_main]

use std::io::Cursor;
use std::path::Path;

use libfuzzer_sys::fuzz_target;
use pole_store::journal::{FrameProblem, SegmentReader};

fuzz_target!(|data: &[u8]| {
    let Ok(mut reader) = SegmentReader::from_reader(Cursor::new(data), data.len() as u64, Path::new("fuzz")) else {
        return;
    };
    loop {
        match reader.next_frame() {
            Ok(frame) => {
                let _ = pole_store::decode_transaction(&frame.payload, frame.seq);
            }
            Err(FrameProblem::End) | Err(FrameProblem::Invalid { .. }) => break,
        }
    }
});
