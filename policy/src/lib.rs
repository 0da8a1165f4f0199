//! portcullis-policy (being written).
