//! What the language crate's test files share: a catalog shaped like the
//! demo CRM and a seedable generator.
#![allow(dead_code)]

pub mod catalog;
pub mod rng;
