//! portcullis-session (being written).
