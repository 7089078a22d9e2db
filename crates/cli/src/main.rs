//! The `ironfaas` command.

fn main() {}
