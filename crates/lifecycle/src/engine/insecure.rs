//! Going insecure: turning DNSSEC off for a zone whose parent may serve a
//! DS (RFC 8078 section 4).
//!
//! `Request::GoInsecure` publishes the CDS and CDNSKEY delete form,
//! requests the removal of every DS at the parent and makes every DS
//! record unretentive.
//! The engine then waits until the parent serves no DS at any server:
//! observed (`Observations::secure_delegation == Some(false)`) with
//! `parent_ds_check = "all-parent-servers"`, confirmed by a `Request::Step`
//! with "manual", or assumed after the parent propagation delay with
//! "none". From then on it waits the parent's DS TTL (the larger of the old
//! and new TTL while both may be cached), the parent propagation delay and
//! the retire safety margin. Only then does it return `Action::Unsign` and
//! remove every key, because a resolver that still holds a DS would find
//! the unsigned zone bogus. No rollover starts while the zone goes
//! insecure.

use keymaster_api::RecordState;
use keymaster_policy::ParentDsCheck;

use super::Engine;
use crate::state::{GoingInsecure, Key};
use crate::types::{Action, Wait};

impl Engine<'_> {
    /// Starts going insecure, or publishes the zone unsigned at once when
    /// the parent serves no DS and none can be cached.
    pub(super) fn start_going_insecure(&mut self) {
        if self.state.is_unsigned() || self.state.going_insecure.is_some() {
            return;
        }
        let gone_now = self.observations.secure_delegation == Some(false);
        let cached = self.state.keys.iter().any(|key| self.ds_may_be_cached(key));
        if gone_now && !cached {
            self.unsign();
            return;
        }
        self.state.going_insecure = Some(GoingInsecure {
            requested: self.now,
            ds_gone: gone_now.then_some(self.now),
            ds_ttl: self.effective_ds_ttl(),
        });
        for key in &mut self.state.keys {
            if matches!(
                key.ds.state,
                RecordState::Rumoured | RecordState::Omnipresent
            ) {
                key.ds.set(RecordState::Unretentive, self.now);
                key.ds_seen = None;
                key.ds_gone = None;
            }
        }
        self.state.cds_published.clear();
        self.actions.push(Action::PublishCdsDelete);
    }

    /// Returns true if resolvers may hold the DS of `key`: the parent was
    /// seen serving it, or is assumed to serve it without a check.
    fn ds_may_be_cached(&self, key: &Key) -> bool {
        match key.ds.state {
            RecordState::Hidden => false,
            RecordState::Omnipresent | RecordState::Unretentive => true,
            RecordState::Rumoured => {
                key.ds_seen.is_some() || self.policy.parent_ds_check == ParentDsCheck::None
            }
        }
    }

    /// Stops going insecure. The DS of every SEP key that stays in the zone
    /// is requested again and must be seen at the parent anew, and the CDS
    /// and CDNSKEY RRsets replace the delete form.
    pub(super) fn cancel_going_insecure(&mut self) {
        if self.state.going_insecure.take().is_none() {
            return;
        }
        for key in &mut self.state.keys {
            let stays = key.is_sep() && key.goal == crate::state::Goal::Omnipresent;
            if stays && key.ds.state == RecordState::Unretentive {
                key.ds.set(RecordState::Rumoured, self.now);
                key.ds_seen = None;
                key.ds_gone = None;
            }
        }
        self.force_cds = true;
    }

    /// Moves records whose waits have passed and publishes the zone
    /// unsigned once no cache can hold a DS.
    pub(super) fn advance_going_insecure(&mut self) {
        let ttl = self.effective_ds_ttl();
        if let Some(going) = &mut self.state.going_insecure {
            going.ds_ttl = going.ds_ttl.max(ttl);
        }
        self.finish_waits();
        let Some(going) = self.state.going_insecure else {
            return;
        };
        let ready = self
            .insecure_ready_at(&going)
            .is_some_and(|at| at <= self.now);
        let ds_hidden = self
            .state
            .keys
            .iter()
            .all(|key| key.ds.state == RecordState::Hidden);
        if ready && ds_hidden {
            self.unsign();
        }
    }

    /// Time from which no cache can hold a DS for the zone, once the
    /// parent's removal of every DS is known. The wait uses the largest DS
    /// TTL the parent served since the request.
    pub(super) fn insecure_ready_at(&self, going: &GoingInsecure) -> Option<u64> {
        let policy = self.policy;
        let gone = match policy.parent_ds_check {
            ParentDsCheck::None => going
                .ds_gone
                .unwrap_or(going.requested + policy.parent_propagation_delay),
            ParentDsCheck::AllParentServers | ParentDsCheck::Manual => going.ds_gone?,
        };
        let ttl = going.ds_ttl.max(self.effective_ds_ttl());
        Some(gone + policy.parent_propagation_delay + policy.ds_retire_wait(ttl))
    }

    /// Publishes the zone unsigned and removes every key. Later steps do
    /// nothing until a `Request::Sign`.
    pub(super) fn unsign(&mut self) {
        self.actions.push(Action::Unsign);
        for key in std::mem::take(&mut self.state.keys) {
            self.actions.push(Action::RemoveKey { id: key.id });
        }
        self.state.going_insecure = None;
        self.state.unsigned_since = Some(self.now);
        self.state.denial = None;
        self.state.cds_published.clear();
        self.state.requests.clear();
    }

    /// Describes the progress of going insecure, if the zone is on its way.
    pub(super) fn going_insecure_wait(&self) -> Option<Wait> {
        let going = self.state.going_insecure?;
        let wait = match self.insecure_ready_at(&going) {
            Some(until) => Wait {
                what: "going insecure: the zone is published unsigned once no cache \
                       can hold a DS for it"
                    .to_string(),
                since: going.ds_gone.unwrap_or(going.requested),
                until: Some(until),
            },
            None if self.policy.parent_ds_check == ParentDsCheck::Manual => Wait {
                what: "going insecure: the CDS and CDNSKEY delete form is published; \
                       run `keymaster key step` once no parent server serves a DS for \
                       the zone"
                    .to_string(),
                since: going.requested,
                until: None,
            },
            None => Wait {
                what: "going insecure: the CDS and CDNSKEY delete form is published, \
                       and every parent server must stop serving a DS for the zone"
                    .to_string(),
                since: going.requested,
                until: None,
            },
        };
        Some(wait)
    }
}
