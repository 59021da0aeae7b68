//! portolan's network side (async, tokio): probing the planned flows from this host, and
//! listening for inbound ones. Reads only the checked [`portolan_core::plan::Plan`].
//!
//! Must never send traffic anywhere the plan does not name, and never more than it takes to
//! identify the protocol.

pub mod dns;
pub mod dns_proxy;
pub mod listen;
pub mod nfnl;
pub mod probe;
pub mod report;
pub mod sets;
pub mod sync;
