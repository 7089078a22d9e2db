//! The ironfaas vocabulary: everything the other crates agree on, with no I/O beyond reading
//! files. The stack.yml model, the OpenFaaS wire types with their exact JSON names, function name
//! rules, Go-style durations, and the [`provider::Provider`] trait the gateway drives.

pub mod duration;
pub mod names;
pub mod provider;
pub mod retry;
pub mod routes;
pub mod scaling;
pub mod stack;
pub mod template;
pub mod timestamp;
pub mod wire;
