//! Tests of the master-file reader and writer.

mod real;
mod suites;
mod units;

use keymaster_zone::{parse_name, Name};

/// Parses an absolute name written in a test.
pub(crate) fn name(text: &str) -> Name {
    parse_name(text, &Name::root()).expect("test names are valid")
}
