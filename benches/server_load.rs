//! Server ingest load benchmark (filled in below).
fn main() {}
