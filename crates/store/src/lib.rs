//! ironfaas store.
