//! Writes the seed corpus of the `bundle_unpack` fuzz target (`crates/store/fuzz`): bundles
//! made by the store's own packer, and hand-made hostile tars the unpacker must refuse.
//!
//! ```text
//! cargo run -p ironfaas-store --example fuzz_seeds -- crates/store/fuzz/corpus/bundle_unpack
//! ```
//!
//! The target reads its input's first byte as a mode: odd, the rest is a bundle as is
//! (zstd-compressed tar); even, the rest is a plain tar, which it compresses itself.

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::path::{Path, PathBuf};

use ironfaas_spec::template::{Listen, Mode};
use ironfaas_store::bundle::pack;
use ironfaas_store::manifest::{FORMAT, Manifest};

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// A raw tar entry: path, kind, contents, link target.
type Entry<'a> = (&'a str, tar::EntryType, &'a [u8], Option<&'a str>);

fn main() -> Result<()> {
    let out = PathBuf::from(
        std::env::args()
            .nth(1)
            .ok_or("usage: fuzz_seeds OUTPUT_DIR")?,
    );
    fs::create_dir_all(&out)?;

    let function = tempfile::tempdir()?;
    let root = function.path();
    Manifest {
        format: FORMAT,
        function: "hello".into(),
        template: "python3-http".into(),
        mode: Mode::Http,
        listen: Listen::Unix,
        fprocess: "python3 index.py".into(),
        environment: BTreeMap::from([("LOG_LEVEL".into(), "info".into())]),
        built_at: "2026-01-01T00:00:00Z".into(),
        start_fd: false,
    }
    .write_to(root)?;
    fs::create_dir_all(root.join("function/lib"))?;
    fs::write(
        root.join("function/handler.py"),
        "def handle(req):\n    return req\n",
    )?;
    fs::write(
        root.join("index.py"),
        "#!/usr/bin/env python3\nimport function.handler\n",
    )?;
    fs::set_permissions(root.join("index.py"), fs::Permissions::from_mode(0o755))?;
    symlink("../handler.py", root.join("function/lib/handler.py"))?;
    let bundle = fs::read(pack(root)?.file.path())?;
    write(&out, "packed-bundle", 1, &bundle)?;
    write(&out, "packed-tar", 0, &zstd::decode_all(&bundle[..])?)?;

    let empty = tempfile::tempdir()?;
    write(
        &out,
        "packed-empty",
        1,
        &fs::read(pack(empty.path())?.file.path())?,
    )?;

    use tar::EntryType::{Directory, Link, Regular, Symlink};
    let hostile: [(&str, &[Entry]); 5] = [
        ("parent-path", &[("a/../../evil", Regular, b"x", None)]),
        (
            "symlink-out",
            &[
                ("a", Directory, b"", None),
                ("a/l", Symlink, b"", Some("../../etc/passwd")),
            ],
        ),
        (
            "through-symlink",
            &[
                ("d", Directory, b"", None),
                ("l", Symlink, b"", Some("d")),
                ("l/f", Regular, b"x", None),
            ],
        ),
        (
            "hard-link",
            &[("f", Regular, b"x", None), ("h", Link, b"", Some("f"))],
        ),
        (
            "symlink-chain-out",
            &[
                ("a", Directory, b"", None),
                ("a/d", Symlink, b"", Some("..")),
                ("l", Symlink, b"", Some("a/d/..")),
            ],
        ),
    ];
    for (name, entries) in hostile {
        write(&out, name, 0, &raw_tar(entries)?)?;
    }
    Ok(())
}

fn write(dir: &Path, name: &str, mode: u8, bytes: &[u8]) -> Result<()> {
    let mut seed = vec![mode];
    seed.extend_from_slice(bytes);
    fs::write(dir.join(name), seed)?;
    Ok(())
}

/// A tar from hand-made GNU headers (`tar::Builder` itself refuses `..`).
fn raw_tar(entries: &[Entry]) -> Result<Vec<u8>> {
    let mut bytes = Vec::new();
    let mut builder = tar::Builder::new(&mut bytes);
    for (path, kind, data, link) in entries {
        let mut header = tar::Header::new_gnu();
        header.set_entry_type(*kind);
        header.set_mode(0o644);
        header.set_size(data.len() as u64);
        let name = &mut header.as_gnu_mut().ok_or("a GNU header")?.name;
        name.get_mut(..path.len())
            .ok_or("path too long")?
            .copy_from_slice(path.as_bytes());
        if let Some(link) = link {
            header.set_link_name(link)?;
        }
        header.set_cksum();
        builder.append(&header, *data)?;
    }
    builder.finish()?;
    drop(builder);
    Ok(bytes)
}
