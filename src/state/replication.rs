//! Where the segment catalog and memberships come from: written here by the
//! triggers and the API, or received from a publisher by a logical
//! subscription (README, Durability: "A logical subscriber").
//!
//! A subscriber receives memberships and counts as rows, written by the
//! publisher's maintenance; its apply worker fires no statement trigger, so
//! it could not maintain them itself. A membership, count or segment written
//! locally as well would collide with the rows the publisher sends (the
//! subscription stops on a duplicate key; counts are added twice), so
//! nothing here writes them while a subscription feeds schema `segments`.

use crate::pg::error::{fail_hint, Code};
use crate::pg::spi;

/// The subscription that writes tables of schema `segments` in this
/// database, if any.
pub fn subscription() -> Option<String> {
    spi::get::<String>(
        "SELECT s.subname::pg_catalog.text
           FROM pg_catalog.pg_subscription_rel r
           JOIN pg_catalog.pg_subscription s ON s.oid OPERATOR(pg_catalog.=) r.srsubid
           JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) r.srrelid
          WHERE c.relnamespace OPERATOR(pg_catalog.=) 'segments'::pg_catalog.regnamespace
          ORDER BY s.subname LIMIT 1",
        &[],
    )
}

/// 25006 when the segments of this database are a subscriber's copy: they
/// change on the publisher, and arrive here with its memberships.
pub fn require_origin() {
    if let Some(name) = subscription() {
        fail_hint(
            Code::ERRCODE_READ_ONLY_SQL_TRANSACTION,
            format!("the segments of this database are replicated by subscription \"{name}\""),
            "change segments on the publisher: registrations, segments and memberships arrive here from it",
        );
    }
}
