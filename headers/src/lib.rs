//! portcullis-headers (being written).
