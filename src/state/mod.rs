//! What the extension keeps and reads below the maintenance protocols: the
//! segment catalog as the language sees it (`catalog`), who may do what
//! (`privilege`), backend caches and their invalidation (`cache`), member
//! counts (`counts`) and segment liveness (`liveness`).

pub mod cache;
pub mod catalog;
pub mod counts;
pub mod liveness;
pub mod privilege;
