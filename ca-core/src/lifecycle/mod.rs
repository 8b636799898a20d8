//! The certificate lifecycle after issuance: suspension (certificateHold), release and final
//! revocation — the states, the transitions and the typed request. Who may ask for a change
//! is the registration authority's decision (`ra::lifecycle`).
//!
//! ```text
//!   active ──suspend──▶ suspended ──release──▶ active
//!     │                     │
//!     └──────revoke─────────┴──────▶ revoked (final)
//! ```
//! Expiry is derived from notAfter and ends every transition. Each transition is one durable
//! row with its time, reason, actor and request id, written with its audit record in one
//! transaction; a request id seen before answers with the first outcome instead of applying
//! twice.

mod reason;
mod request;
mod rules;

pub use reason::RevocationReason;
pub use request::{LifecycleAction, LifecycleRequest, RequestId};
pub use rules::{is_live, next_status};
