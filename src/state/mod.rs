//! What the extension keeps and reads below the maintenance protocols: the
//! registrations and the tables they name, as the language sees them (`registry`), who may do what
//! (`privilege`), backend caches and their invalidation (`cache`), member
//! counts (`counts`), segment liveness (`liveness`) and whether they are a
//! logical subscriber's copy (`replication`), and tenants (`tenant`).

pub mod cache;
pub mod registry;
pub mod counts;
pub mod liveness;
pub mod privilege;
pub mod replication;
pub mod tenant;
