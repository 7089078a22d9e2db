#!/bin/sh
# Builds an ironfaas `rust` function into ./handler. ironfaas runs it from the build dir root
# (this template plus the function's folder in function/); everything left here is packed
# into the bundle, so the compiler's output is removed at the end.
set -eu

if ! command -v cargo >/dev/null 2>&1; then
    PATH="$PATH:${CARGO_HOME:-$HOME/.cargo}/bin"
    command -v cargo >/dev/null 2>&1 || {
        echo "rust template: cargo not found; install Rust (https://rustup.rs)" >&2
        exit 1
    }
fi

# A local build of the function in its own folder is not part of the bundle.
rm -rf function/target
# The function's lock file, if it has one, pins its crates.io dependencies here too.
if [ -f function/Cargo.lock ] && [ ! -f Cargo.lock ]; then
    cp function/Cargo.lock Cargo.lock
fi

export CARGO_TARGET_DIR="$PWD/target"
cargo build --release --quiet --bin ironfaas-rust-server
cp "$CARGO_TARGET_DIR/release/ironfaas-rust-server" handler.tmp
mv handler.tmp handler
rm -rf "$CARGO_TARGET_DIR"
