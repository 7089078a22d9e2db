//! ironfaas runtime.
