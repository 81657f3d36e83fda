//! Tests of keymaster-server: answers to built zones, the RFC 4035 and
//! RFC 5155 example responses, random packets, and the real sockets
//! queried with dig and kdig.

mod answers;
mod common;
mod fuzz;
mod rfc;
mod sockets;
