//! The key-lifecycle engine: when to introduce, activate, retire and remove
//! DNSSEC keys so that no validating resolver ever sees a bogus answer.
//!
//! The engine is pure. [`step`] takes the stored [`EngineState`], the
//! [`LifecyclePolicy`], the [`Observations`] made since the last call and
//! the current time, and returns the new state, the [`Action`]s that bring
//! the zone there, the next time it wants to be called and the waits in
//! progress. It reads no clock, does no I/O and draws no random numbers, so
//! the server calls it with the real clock and [`sim`] with a virtual one.
//!
//! # The model
//!
//! The engine follows the key-state model of Mekking, van Rijswijk-Deij et
//! al., "Flexible and Robust Key Rollover in DNSSEC", with the timing terms
//! of RFC 7583. Each key has four *records* that resolvers can cache: its
//! DNSKEY, its signatures over the DNSKEY RRset (KRRSIG), its signatures over
//! other zone data (ZRRSIG) and its DS at the parent. A KSK uses DNSKEY,
//! KRRSIG and DS, a ZSK uses DNSKEY and ZRRSIG, a CSK uses all four. Each
//! record is in one of four states:
//!
//! - *hidden*: no cache has it;
//! - *rumoured*: it is published, but some caches may not hold it yet;
//! - *omnipresent*: every cache that has the RRset has it;
//! - *unretentive*: it is withdrawn, but some caches may still hold it.
//!
//! Every key has a *goal*, omnipresent or hidden. A rollover is nothing more
//! than a new key with goal omnipresent and old keys with goal hidden; the
//! records then move towards the goals, one transition at a time:
//!
//! - hidden to rumoured, and omnipresent (or rumoured) to unretentive, are
//!   the engine's choices. It takes them only when the rollover method
//!   allows (for example, ZSK pre-publication signs with a key only once its
//!   DNSKEY is omnipresent) and when every view resolvers may then hold
//!   still validates;
//! - rumoured to omnipresent and unretentive to hidden happen when the wait
//!   has passed: TTL plus propagation delay plus the publish or retire
//!   safety margin, using the DNSKEY TTL, the maximum zone TTL or the
//!   parent's DS TTL. A DS change waits first for the parent to serve it at
//!   all its servers (or for the operator to confirm it), unless the policy
//!   turns that check off, in which case the parent propagation delay is
//!   assumed.
//!
//! A *view* is one snapshot of an RRset a resolver may still hold: for each
//! record kind, the published set just before each pending change and just
//! after it. The engine checks every combination of a DS view, a DNSKEY view
//! and a zone-signature view with [`validity::validate`], and among the
//! transitions the methods allow it takes the largest set that keeps every
//! combination valid. That is how swaps happen in one zone version: the new
//! ZSK's signatures replace the old ones at once, or the parent's DS RRset
//! moves from the old KSK to the new one in one request.
//!
//! Rollover methods: ZSK pre-publication and double signature, KSK
//! double-KSK and double-DS, CSK rollover, and algorithm rollover (RFC 6781
//! section 4.1.4: signatures of the new algorithm first, then its DNSKEYs,
//! then the DS, then removal of the old algorithm). With RFC 5011 enabled
//! every KSK rollover is a double-KSK rollover. The new KSK's DS waits for
//! the policy's add hold-down (30 days by default), counted from the moment
//! its DNSKEY is in every cache. The old KSK is then published with the
//! REVOKE bit for the remove hold-down (30 days by default, and at least
//! until every cache has the revoked key) before it leaves.
//!
//! Going insecure (RFC 8078 section 4) starts with [`Request::GoInsecure`]:
//! the CDS and CDNSKEY delete form is published and the parent is asked to
//! remove every DS. The zone is published unsigned ([`Action::Unsign`])
//! only once the parent serves no DS and no cache can hold one. A zone
//! published unsigned stays so until [`Request::Sign`], which keeps the
//! key id counter so that new keys never reuse an old id.
//!
//! [`plan::forecast`] runs the engine forward on a virtual clock to list
//! the key events ahead, and [`plan::next_transitions`] gives each key's
//! next events. [`sim::run`] drives the engine against a model parent and
//! model resolver caches for years, and reports bogus seconds, a timeline
//! and stalls.
//!
//! # Contracts
//!
//! - Keys are always looked up by id, never by key tag, because tags
//!   collide and change with the REVOKE bit.
//! - When the key store is unreadable the engine halts key management for
//!   the zone, reports it once and changes nothing until the store can be
//!   read again. It never generates a key because another looked missing.
//!   Requests that arrive meanwhile wait in the state.
//! - A rollover request while a rollover of the same role runs is queued.
//!   No rollover starts while the zone goes insecure.
//! - A key added by hand with no record in the zone becomes the successor
//!   at the next rollover of its role, so it causes no extra rollover.
//! - A TTL change uses the larger of the old and new TTL in waits until
//!   records published with the old one have left every cache. A wait that
//!   started in that time keeps the larger TTL to its end.
//! - A leaving DS is hidden only after the parent stopped serving it (seen
//!   at all servers, confirmed, or assumed after the parent propagation
//!   delay) and its TTL and the retire safety margin have passed. A parent
//!   that serves no DS at all counts as having stopped serving it.
//! - DS records at the parent that match no key are listed in a [`Wait`].
//!   With `unknown_parent_ds = "block"` no DS of the zone's keys becomes
//!   omnipresent or leaves while the parent serves them.
//! - [`LifecyclePolicy::check`] rejects a key lifetime shorter than the
//!   rollover that replaces the key, hold-downs included.
//!
//! # Limitations
//!
//! - Denial-of-existence changes take effect in one zone version; the
//!   engine assumes every algorithm in use can sign NSEC3 chains, which is
//!   true for the algorithms keymaster generates (8, 10, 13 to 16).
//! - The RFC 5011 add hold-down counts from the moment the new DNSKEY is in
//!   every cache. A resolver that refreshes its trust anchors less often
//!   than the DNSKEY TTL (RFC 5011 section 2.3 sets a one-hour floor) may
//!   start its hold-down later. The DS swap that follows must cover that
//!   difference.
//! - After a swap, an old key's DNSKEY may leave once the new record is
//!   omnipresent, which takes the publish safety margin, before the old
//!   record is hidden, which takes the retire safety margin. Both margins
//!   come on top of the TTL, and the simulations find no bogus second.
//! - Going insecure removes the DS at the parent only. A resolver that
//!   holds the zone's key as a configured or RFC 5011 trust anchor finds
//!   the unsigned zone bogus.
//! - Going insecure assumes the parent handles DS requests in order, so an
//!   earlier request for a DS cannot take effect after the request for no
//!   DS.

pub mod engine;
mod events;
pub mod plan;
pub mod policy;
pub mod sim;
pub mod state;
pub mod testing;
pub mod types;
pub mod validity;

pub use engine::step;
pub use plan::{forecast, next_transitions, PlannedEvent};
pub use policy::{DenialSettings, LifecyclePolicy, LifetimeTooShort};
pub use state::{EngineState, Goal, GoingInsecure, Key, Record, RecordKind, Request};
pub use types::{Action, Observations, ParentDs, Step, Wait};
