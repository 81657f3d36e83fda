//! Integration tests of keymaster-keys against published vectors and BIND.

mod bind_interop;
mod presentation;
mod vectors;
