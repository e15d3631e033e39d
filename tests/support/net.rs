//! Ports for test servers that are restarted on the same address.

use rand::Rng;

/// A free port in 20000-31999: below Linux's ephemeral range (32768-60999), so connection
/// attempts made while the server is down cannot be handed the same port as their own
/// source (a TCP self-connect) and keep the server from listening again.
pub fn free_port_below_ephemeral() -> u16 {
    let mut rng = rand::rng();
    for _ in 0..1000 {
        let port = rng.random_range(20_000..32_000);
        if std::net::TcpListener::bind(("127.0.0.1", port)).is_ok() {
            return port;
        }
    }
    panic!("no free port below the ephemeral range");
}
