//! stack.yml (compat §5): `${VAR:-default}` substitution.

pub mod envsubst;
