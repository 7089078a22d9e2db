//! ironfaas gateway.
