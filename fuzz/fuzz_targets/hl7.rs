//! Arbitrary bytes through the HL7 batch splitter, the message parser, the ADT mapper (and
//! its request builder), the acknowledgement builder and the MLLP decoder: none may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

use pole_ingest::hl7::{
    build_ack, build_ack_for_bytes, map_adt, split_batch, to_request, AckCode, AckError, Message, MllpDecoder, NewEntities,
};
use pole_model::Timestamp;

fuzz_target!(|data: &[u8]| {
    let at = Timestamp::from_micros(0);
    if let Ok(batch) = split_batch(data) {
        for item in &batch.messages {
            match Message::parse(&item.text) {
                Ok(message) => {
                    // What was parsed must encode to text that parses to the same message.
                    let again = Message::parse(&message.encode());
                    assert_eq!(again.as_ref().ok(), Some(&message), "encode round trip");
                    match map_adt(&message, None) {
                        Ok(record) => {
                            let _ = to_request(&record, |_| None, &[], &NewEntities::refs());
                            let ack = build_ack(&message, AckCode::Accept, None, "F1", at);
                            assert!(Message::parse(&ack).is_ok(), "ACK parses: {ack:?}");
                        }
                        Err(e) => {
                            let ack = build_ack(&message, AckCode::Error, Some(&AckError::from(&e)), "F2", at);
                            assert!(Message::parse(&ack).is_ok(), "ACK parses: {ack:?}");
                        }
                    }
                }
                Err(e) => {
                    let _ =
                        build_ack_for_bytes(item.text.as_bytes(), AckCode::Reject, Some(&AckError::from(&e)), "F3", at);
                }
            }
        }
    }
    // The same bytes as a stream, cut into reads at a point the input chooses.
    let mut decoder = MllpDecoder::new(4096);
    let cut = data.first().map_or(0, |b| usize::from(*b)).min(data.len());
    for piece in [&data[..cut], &data[cut..]] {
        decoder.push(piece);
        loop {
            match decoder.next_frame() {
                Ok(Some(frame)) => {
                    let _ = Message::parse_bytes(&frame);
                }
                Ok(None) => break,
                // Dropped an oversized frame; the decoder has moved past it.
                Err(_) => {}
            }
        }
    }
});
