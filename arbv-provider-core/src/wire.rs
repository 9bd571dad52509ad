//! The hub protocol beyond its messages (those are in [`proto`](crate::proto)): the metadata by
//! which a hub hands the provider its next task in the answer to `SubmitTaskResult`, saving a
//! `GetTask` round trip.
//!
//! Both sides must say so: a provider raises [`ACCEPT_HAND_BACK`] on a result it sends while it
//! takes work, and a hub raises [`HAND_BACK`] on an answer that carries a task. Any other answer
//! is not work, whatever it holds, so a hub that does not know the rule (one that echoes the
//! submitted task, say) cannot make a provider run a task twice.
//!
//! ```
//! use arbv_provider_core::wire::{ACCEPT_HAND_BACK, hand_back_flag_raised, raise_hand_back_flag};
//! let mut request = tonic::Request::new(());
//! raise_hand_back_flag(request.metadata_mut(), ACCEPT_HAND_BACK);
//! assert!(hand_back_flag_raised(request.metadata(), ACCEPT_HAND_BACK));
//! ```

use tonic::metadata::{MetadataMap, MetadataValue};

/// Request metadata a provider sends on `SubmitTaskResult` when it will run a task handed back
/// in the answer (value [`HAND_BACK_VALUE`]). Without it a hub must not hand work back there.
pub const ACCEPT_HAND_BACK: &str = "x-arbv-accept-hand-back";
/// Response metadata a hub sets on a `SubmitTaskResult` answer that carries a handed-back task
/// (value [`HAND_BACK_VALUE`]). Without it the answer is ignored, whatever it holds.
pub const HAND_BACK: &str = "x-arbv-hand-back";
/// The value of [`ACCEPT_HAND_BACK`] and [`HAND_BACK`].
pub const HAND_BACK_VALUE: &str = "1";

/// Raises a hand-back flag ([`ACCEPT_HAND_BACK`] on a request, [`HAND_BACK`] on an answer).
pub fn raise_hand_back_flag(metadata: &mut MetadataMap, flag: &'static str) {
    metadata.insert(flag, MetadataValue::from_static(HAND_BACK_VALUE));
}

/// Whether a hand-back flag ([`ACCEPT_HAND_BACK`] or [`HAND_BACK`]) is raised.
pub fn hand_back_flag_raised(metadata: &MetadataMap, flag: &str) -> bool {
    metadata
        .get(flag)
        .is_some_and(|value| value == HAND_BACK_VALUE)
}
