//! Index files: written so a crash never leaves a half-written index under
//! the real name, and checked before anything trusts their contents.
//!
//! A save goes to a temporary file in the same folder, is flushed to disk,
//! renamed over the target, and the folder itself is flushed so the rename
//! survives a power cut. A reader therefore sees the old file or the new one,
//! never a mix. The rename only replaces atomically within one file system,
//! hence the temporary file beside the target rather than in `/tmp`.
//!
//! The index's bytes travel inside a small envelope (magic, format version,
//! dimension, vector count and a CRC-32 of the payload and of the header),
//! and are parsed only once the checksums match, so damage is reported as
//! damage rather than as whatever the parser trips over first. (The parser
//! checks every count and slot number as well: a file written by a buggy
//! build must not make a search read out of bounds either.) A truncated,
//! damaged or foreign file is an error the caller answers by rebuilding.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use super::VectorError;

const MAGIC: [u8; 8] = *b"AGDVECTR";
const FORMAT_VERSION: u32 = 1;
const HEADER_LEN: usize = 48;

/// What the envelope says about the index inside it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    /// Which engine wrote the payload ([`ENGINE_HNSW`]).
    pub engine: u32,
    pub dimension: u64,
    /// Vectors present.
    pub count: u64,
}

/// The payload is an HNSW graph of unit vectors (`Graph::to_bytes`).
pub(crate) const ENGINE_HNSW: u32 = 1;

impl Header {
    fn encode(&self, payload: &[u8]) -> [u8; HEADER_LEN] {
        let mut bytes = [0u8; HEADER_LEN];
        bytes[0..8].copy_from_slice(&MAGIC);
        bytes[8..12].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        bytes[12..16].copy_from_slice(&self.engine.to_le_bytes());
        bytes[16..24].copy_from_slice(&self.dimension.to_le_bytes());
        bytes[24..32].copy_from_slice(&self.count.to_le_bytes());
        bytes[32..40].copy_from_slice(&(payload.len() as u64).to_le_bytes());
        bytes[40..44].copy_from_slice(&crc32fast::hash(payload).to_le_bytes());
        let header_crc = crc32fast::hash(&bytes[..44]);
        bytes[44..48].copy_from_slice(&header_crc.to_le_bytes());
        bytes
    }
}

/// Writes `header` and `payload` to `path`, replacing what was there only
/// once the new contents are on disk.
pub(crate) fn save(path: &Path, header: &Header, payload: &[u8]) -> Result<(), VectorError> {
    static SAVES: AtomicU64 = AtomicU64::new(0);
    let name = path
        .file_name()
        .ok_or_else(|| VectorError::io("save to", path, std::io::Error::other("the path names no file")))?;
    let folder = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let temporary = folder.join(format!(
        ".{}.{}-{}.partial",
        name.to_string_lossy(),
        std::process::id(),
        SAVES.fetch_add(1, Ordering::Relaxed)
    ));

    let written = write_synced(&temporary, &header.encode(payload), payload)
        .and_then(|()| fs::rename(&temporary, path).map_err(|e| VectorError::io("rename into place", path, e)));
    if let Err(error) = written {
        let _ = fs::remove_file(&temporary);
        return Err(error);
    }
    sync_folder(&folder)
}

fn write_synced(path: &Path, header: &[u8], payload: &[u8]) -> Result<(), VectorError> {
    let mut file =
        OpenOptions::new().write(true).create_new(true).open(path).map_err(|e| VectorError::io("create", path, e))?;
    file.write_all(header).and_then(|()| file.write_all(payload)).map_err(|e| VectorError::io("write", path, e))?;
    file.sync_all().map_err(|e| VectorError::io("flush to disk", path, e))
}

/// Makes a rename inside `folder` durable. Folders cannot be opened as
/// files on Windows, where renames are made durable by the file system.
fn sync_folder(folder: &Path) -> Result<(), VectorError> {
    #[cfg(unix)]
    File::open(folder).and_then(|f| f.sync_all()).map_err(|e| VectorError::io("flush to disk", folder, e))?;
    #[cfg(not(unix))]
    let _ = (folder, File::open);
    Ok(())
}

/// Reads a file [`save`] wrote, checking the envelope and the payload's
/// checksum; returns the header and the payload.
pub(crate) fn load(path: &Path) -> Result<(Header, Vec<u8>), VectorError> {
    let mut bytes = fs::read(path).map_err(|e| VectorError::io("read", path, e))?;
    let corrupt = |reason: String| VectorError::corrupt(path, reason);
    if bytes.len() < HEADER_LEN {
        return Err(corrupt(format!("{} bytes, shorter than the {HEADER_LEN}-byte header", bytes.len())));
    }
    if bytes[0..8] != MAGIC {
        return Err(corrupt("not an agentd vector index file".into()));
    }
    let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"));
    let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"));
    let version = u32_at(8);
    if version != FORMAT_VERSION {
        return Err(corrupt(format!("format version {version}; this build reads version {FORMAT_VERSION}")));
    }
    if crc32fast::hash(&bytes[..44]) != u32_at(44) {
        return Err(corrupt("the header's checksum does not match".into()));
    }
    let header = Header { engine: u32_at(12), dimension: u64_at(16), count: u64_at(24) };
    let payload_len = u64_at(32);
    let present = (bytes.len() - HEADER_LEN) as u64;
    if payload_len != present {
        return Err(corrupt(format!("the header announces {payload_len} bytes of index, the file holds {present}")));
    }
    let payload_crc = u32_at(40);
    bytes.drain(..HEADER_LEN);
    if crc32fast::hash(&bytes) != payload_crc {
        return Err(corrupt("the index's checksum does not match".into()));
    }
    Ok((header, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: Header = Header { engine: ENGINE_HNSW, dimension: 3, count: 2 };

    #[test]
    fn roundtrips_and_leaves_no_temporary_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.bin");
        save(&path, &HEADER, b"payload").unwrap();
        save(&path, &HEADER, b"second payload").unwrap();
        assert_eq!(load(&path).unwrap(), (HEADER, b"second payload".to_vec()));
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn any_damage_is_an_error() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("index.bin");
        save(&path, &HEADER, b"payload").unwrap();
        let good = fs::read(&path).unwrap();
        for cut in 0..good.len() {
            fs::write(&path, &good[..cut]).unwrap();
            assert!(matches!(load(&path), Err(VectorError::Corrupt { .. })), "cut at {cut}");
        }
        for at in 0..good.len() {
            let mut bad = good.clone();
            bad[at] ^= 0x10;
            fs::write(&path, &bad).unwrap();
            assert!(matches!(load(&path), Err(VectorError::Corrupt { .. })), "flipped byte {at}");
        }
        assert!(matches!(load(&dir.path().join("absent")), Err(VectorError::Io { .. })));
    }
}
