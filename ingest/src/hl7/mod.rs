//! HL7 v2 (being written).
