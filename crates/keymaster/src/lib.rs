//! keymaster's daemon and command-line tools.
//!
//! The `keymaster` binary is a thin `main` over this library: [`cli`]
//! defines the command line, [`config`] the configuration file, [`daemon`]
//! runs `keymaster serve` (zones, the Key Master duties, the control API),
//! [`cluster`] holds the cluster key and the link to the etcd store,
//! [`client`] talks to a running daemon, [`offline`] signs and verifies
//! master files without one, [`signing`] is the signing pipeline both
//! share, and [`schedule`] prints key plans and runs `simulate`.

pub mod cli;
pub mod client;
pub mod cluster;
pub mod config;
pub mod daemon;
pub mod keyfiles;
pub mod offline;
pub mod parent;
pub mod schedule;
pub mod signing;
