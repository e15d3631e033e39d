//! `epr-server`: the hosted server (placeholder until the server lands).
fn main() {
    eprintln!("epr-server: the hosted server is not built yet (see the server issue)");
    std::process::exit(2);
}
