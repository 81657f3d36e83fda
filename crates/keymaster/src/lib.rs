//! keymaster's daemon and command-line tools.
//!
//! The `keymaster` binary is a thin `main` over this library: [`cli`]
//! defines the command line, [`config`] the configuration file, [`daemon`]
//! runs `keymaster serve` (zones, the Key Master duties, the control API),
//! [`client`] talks to a running daemon, [`offline`] signs and verifies
//! master files without one, and [`signing`] is the signing pipeline both
//! share.

pub mod cli;
pub mod client;
pub mod config;
pub mod daemon;
pub mod keyfiles;
pub mod offline;
pub mod parent;
pub mod signing;
