//! stack.yml (compat §5): `${VAR:-default}` substitution and resource quantities.

pub mod envsubst;
pub mod quantity;
