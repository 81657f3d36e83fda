//! The key-lifecycle engine: when to introduce, activate, retire and remove
//! DNSSEC keys so that no validating resolver ever sees a bogus answer.
//!
//! Placeholder summary; the full model description follows below.

pub mod engine;
pub mod policy;
pub mod sim;
pub mod state;
pub mod types;
pub mod validity;

pub use engine::step;
pub use policy::{DenialSettings, LifecyclePolicy, LifetimeTooShort};
pub use state::{EngineState, Goal, Key, Record, RecordKind, Request};
pub use types::{Action, Observations, ParentDs, Step, Wait};
