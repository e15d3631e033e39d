//! Ports for test servers that are restarted on the same address.

/// A free port below the kernel's ephemeral range: the same picker the demo server uses
/// ([`ambulance_epr::local_server::pick_port`]), so a restart cannot lose the port to a
/// TCP self-connect from retries made while the server was down.
pub fn free_port_below_ephemeral() -> u16 {
    let port = ambulance_epr::local_server::pick_port();
    assert_ne!(port, 0, "no free port below the ephemeral range");
    port
}
