//! The central directory of a zip archive held in memory (a memory map), enough to slice the
//! data of its *stored* (uncompressed) entries in place.
//!
//! PyTorch's `torch.save` writes its zip checkpoints with every record stored, so a reader
//! never needs to inflate anything: it finds each entry's local header through the central
//! directory and slices the bytes that follow. Every offset and length is checked against the
//! buffer before use; zip64 end records and extra fields are understood (checkpoints over
//! 4 GiB need them); multi-disk, encrypted and compressed entries are reported, not read.

use std::collections::HashMap;
use std::path::Path;

use crate::error::{Error, Result};

/// Most entries a directory may list (a checkpoint has one per storage plus a few records).
pub const MAX_ENTRIES: u64 = 1 << 22;

const EOCD_SIG: u32 = 0x0605_4b50;
const EOCD_LEN: usize = 22;
const ZIP64_LOCATOR_SIG: u32 = 0x0706_4b50;
const ZIP64_LOCATOR_LEN: usize = 20;
const ZIP64_EOCD_SIG: u32 = 0x0606_4b50;
const ZIP64_EOCD_LEN: usize = 56;
const CENTRAL_SIG: u32 = 0x0201_4b50;
const CENTRAL_LEN: usize = 46;
const LOCAL_SIG: u32 = 0x0403_4b50;
const LOCAL_LEN: usize = 30;
/// Largest archive comment (its length is a u16).
const MAX_COMMENT: usize = u16::MAX as usize;

/// How an entry's data is stored.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// Stored as is.
    Stored,
    /// Deflate-compressed.
    Deflated,
    /// Any other method, by its number.
    Other(u16),
}

/// One entry of the archive, validated against the buffer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The entry's name as stored (UTF-8, lossily decoded).
    pub name: String,
    /// Compression method.
    pub method: Method,
    /// Offset of the entry's data in the buffer (just past its local header).
    pub data_start: u64,
    /// Bytes of (possibly compressed) data.
    pub compressed_size: u64,
    /// Bytes once uncompressed.
    pub size: u64,
}

/// The entries of a zip archive, by name.
#[derive(Debug)]
pub struct ZipDir {
    entries: Vec<Entry>,
    by_name: HashMap<String, usize>,
}

fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(
        b.get(at..at.checked_add(2)?)?.try_into().ok()?,
    ))
}

fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(
        b.get(at..at.checked_add(4)?)?.try_into().ok()?,
    ))
}

fn u64_at(b: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(
        b.get(at..at.checked_add(8)?)?.try_into().ok()?,
    ))
}

impl ZipDir {
    /// Parse the central directory of `buf` (the whole file `path`, for messages).
    pub fn parse(path: &Path, buf: &[u8]) -> Result<Self> {
        let bad = |reason: String| Error::header(path, format!("zip: {reason}"));
        let len = buf.len();
        if len < EOCD_LEN {
            return Err(Error::Truncated {
                path: path.to_path_buf(),
                what: "the zip end-of-central-directory record".into(),
                needed: EOCD_LEN as u64,
                actual: len as u64,
            });
        }
        // The end record is the last thing in the file but for a comment of up to 64 KiB.
        let lowest = len.saturating_sub(EOCD_LEN + MAX_COMMENT);
        let eocd = (lowest..=len - EOCD_LEN)
            .rev()
            .find(|&p| {
                u32_at(buf, p) == Some(EOCD_SIG)
                    && u16_at(buf, p + 20).is_some_and(|c| p + EOCD_LEN + c as usize == len)
            })
            .ok_or_else(|| {
                bad("no end-of-central-directory record at the end of the file".into())
            })?;
        let field16 = |at: usize| u16_at(buf, eocd + at).unwrap_or(0);
        let field32 = |at: usize| u32_at(buf, eocd + at).unwrap_or(0);
        let (disk, cd_disk) = (field16(4), field16(6));
        let mut count = u64::from(field16(10));
        let mut on_disk = u64::from(field16(8));
        let mut cd_size = u64::from(field32(12));
        let mut cd_offset = u64::from(field32(16));
        let mut disks_differ = disk != 0 || cd_disk != 0;
        let zip64 = count == 0xFFFF
            || on_disk == 0xFFFF
            || cd_size == 0xFFFF_FFFF
            || cd_offset == 0xFFFF_FFFF;
        if zip64 {
            let loc = eocd
                .checked_sub(ZIP64_LOCATOR_LEN)
                .filter(|&p| u32_at(buf, p) == Some(ZIP64_LOCATOR_SIG))
                .ok_or_else(|| bad("zip64 fields but no zip64 end-record locator".into()))?;
            let rec = u64_at(buf, loc + 8).unwrap_or(u64::MAX);
            let rec = usize::try_from(rec)
                .ok()
                .filter(|&r| r.checked_add(ZIP64_EOCD_LEN).is_some_and(|e| e <= loc))
                .filter(|&r| u32_at(buf, r) == Some(ZIP64_EOCD_SIG))
                .ok_or_else(|| bad(format!("zip64 end record offset {rec} is invalid")))?;
            disks_differ |= u32_at(buf, loc + 4) != Some(0)
                || u32_at(buf, rec + 16) != Some(0)
                || u32_at(buf, rec + 20) != Some(0);
            on_disk = u64_at(buf, rec + 24).unwrap_or(0);
            count = u64_at(buf, rec + 32).unwrap_or(0);
            cd_size = u64_at(buf, rec + 40).unwrap_or(0);
            cd_offset = u64_at(buf, rec + 48).unwrap_or(0);
        }
        if disks_differ || on_disk != count {
            return Err(bad("multi-disk (split) archives are not supported".into()));
        }
        if count > MAX_ENTRIES {
            return Err(bad(format!(
                "{count} entries, over the cap of {MAX_ENTRIES}"
            )));
        }
        let cd_end = cd_offset
            .checked_add(cd_size)
            .filter(|&e| e <= eocd as u64)
            .ok_or_else(|| {
                bad(format!(
                    "central directory ({cd_size} bytes at {cd_offset}) extends past its end record at {eocd}"
                ))
            })?;
        // Every entry takes at least CENTRAL_LEN bytes: bound the count before allocating.
        if count.saturating_mul(CENTRAL_LEN as u64) > cd_size {
            return Err(bad(format!(
                "{count} entries cannot fit in a {cd_size}-byte central directory"
            )));
        }
        let mut entries = Vec::with_capacity(count as usize);
        let mut by_name = HashMap::with_capacity(count as usize);
        let mut pos = cd_offset as usize;
        for i in 0..count {
            let e = Self::central_entry(path, buf, &mut pos, cd_end as usize, i)?;
            if by_name.insert(e.name.clone(), entries.len()).is_some() {
                return Err(bad(format!("entry {:?} appears twice", e.name)));
            }
            entries.push(e);
        }
        Ok(ZipDir { entries, by_name })
    }

    fn central_entry(
        path: &Path,
        buf: &[u8],
        pos: &mut usize,
        cd_end: usize,
        index: u64,
    ) -> Result<Entry> {
        let bad = |reason: String| Error::header(path, format!("zip entry {index}: {reason}"));
        let p = *pos;
        let fixed = buf
            .get(p..p.saturating_add(CENTRAL_LEN).min(cd_end))
            .filter(|f| f.len() == CENTRAL_LEN)
            .ok_or_else(|| bad(format!("central directory record at {p} is truncated")))?;
        if u32_at(fixed, 0) != Some(CENTRAL_SIG) {
            return Err(bad(format!("no central directory signature at {p}")));
        }
        let f16 = |at| u16_at(fixed, at).unwrap_or(0);
        let f32 = |at| u32_at(fixed, at).unwrap_or(0);
        let flags = f16(8);
        let method = match f16(10) {
            0 => Method::Stored,
            8 => Method::Deflated,
            m => Method::Other(m),
        };
        let mut compressed_size = u64::from(f32(20));
        let mut size = u64::from(f32(24));
        let (name_len, extra_len, comment_len) = (f16(28) as usize, f16(30) as usize, f16(32));
        let disk = f16(34);
        let mut local = u64::from(f32(42));
        let name_at = p + CENTRAL_LEN;
        let extra_at = name_at + name_len;
        let next = extra_at + extra_len + comment_len as usize;
        if next > cd_end {
            return Err(bad(format!(
                "record at {p} runs past the end of the central directory"
            )));
        }
        let name_bytes = &buf[name_at..extra_at];
        let name = String::from_utf8_lossy(name_bytes).into_owned();
        let bad = |reason: String| Error::header(path, format!("zip entry {name:?}: {reason}"));
        if flags & 1 != 0 {
            return Err(bad("encrypted entries are not supported".into()));
        }
        // Zip64 extended information: the 0xFFFFFFFF fields, in this order.
        let extra = &buf[extra_at..extra_at + extra_len];
        let mut x = 0usize;
        while x + 4 <= extra.len() {
            let id = u16_at(extra, x).unwrap_or(0);
            let n = u16_at(extra, x + 2).unwrap_or(0) as usize;
            let body = extra
                .get(x + 4..x + 4 + n)
                .ok_or_else(|| bad("an extra field runs past its record".into()))?;
            if id == 1 {
                let mut at = 0;
                let mut take = |field: &mut u64| -> Result<()> {
                    if *field == 0xFFFF_FFFF {
                        *field = u64_at(body, at)
                            .ok_or_else(|| bad("zip64 extra field is too short".into()))?;
                        at += 8;
                    }
                    Ok(())
                };
                take(&mut size)?;
                take(&mut compressed_size)?;
                take(&mut local)?;
            }
            x += 4 + n;
        }
        if disk != 0 && disk != 0xFFFF {
            return Err(bad(format!("starts on disk {disk}")));
        }
        // The local header repeats the name and has its own extra field.
        let lp = usize::try_from(local)
            .ok()
            .filter(|&l| l.checked_add(LOCAL_LEN).is_some_and(|e| e <= buf.len()))
            .ok_or_else(|| bad(format!("local header offset {local} is outside the file")))?;
        if u32_at(buf, lp) != Some(LOCAL_SIG) {
            return Err(bad(format!("no local header signature at {lp}")));
        }
        let local_name_len = u16_at(buf, lp + 26).unwrap_or(0) as usize;
        let local_extra_len = u16_at(buf, lp + 28).unwrap_or(0) as usize;
        let data_start = lp + LOCAL_LEN + local_name_len + local_extra_len;
        if buf.get(lp + LOCAL_LEN..lp + LOCAL_LEN + local_name_len) != Some(name_bytes) {
            return Err(bad(format!(
                "the local header at {lp} names a different entry"
            )));
        }
        (data_start as u64)
            .checked_add(compressed_size)
            .filter(|&e| e <= buf.len() as u64)
            .ok_or_else(|| {
                bad(format!(
                    "{compressed_size} bytes of data at {data_start} run past the end of the file ({} bytes)",
                    buf.len()
                ))
            })?;
        if method == Method::Stored && compressed_size != size {
            return Err(bad(format!(
                "stored entry has compressed size {compressed_size} but size {size}"
            )));
        }
        *pos = next;
        Ok(Entry {
            name,
            method,
            data_start: data_start as u64,
            compressed_size,
            size,
        })
    }

    /// Every entry, in directory order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// The entry called `name`.
    pub fn get(&self, name: &str) -> Option<&Entry> {
        self.by_name.get(name).map(|&i| &self.entries[i])
    }

    /// The bytes of a stored entry; an error naming the entry for any other method.
    pub fn stored<'a>(&self, path: &Path, buf: &'a [u8], entry: &Entry) -> Result<&'a [u8]> {
        if entry.method != Method::Stored {
            return Err(Error::header(
                path,
                format!(
                    "zip entry {:?} is compressed ({:?}); only stored entries are read (torch.save never compresses)",
                    entry.name, entry.method
                ),
            ));
        }
        let lo = usize::try_from(entry.data_start).ok();
        let hi = lo.and_then(|l| l.checked_add(usize::try_from(entry.size).ok()?));
        lo.zip(hi).and_then(|(l, h)| buf.get(l..h)).ok_or_else(|| {
            Error::header(
                path,
                format!("zip entry {:?} lies outside the file", entry.name),
            )
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Write a zip archive of stored entries (test helper; no zip64, no comment).
    pub(crate) fn write_stored(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut out = Vec::new();
        let mut central = Vec::new();
        for (name, data) in entries {
            let offset = out.len() as u32;
            let header = |sig: u32, central: bool| {
                let mut h = Vec::new();
                h.extend(sig.to_le_bytes());
                if central {
                    h.extend(20u16.to_le_bytes()); // version made by
                }
                h.extend(20u16.to_le_bytes()); // version needed
                h.extend(0u16.to_le_bytes()); // flags
                h.extend(0u16.to_le_bytes()); // method: stored
                h.extend([0u8; 4]); // time, date
                h.extend(0u32.to_le_bytes()); // crc (not checked by the reader)
                h.extend((data.len() as u32).to_le_bytes());
                h.extend((data.len() as u32).to_le_bytes());
                h.extend((name.len() as u16).to_le_bytes());
                h.extend(0u16.to_le_bytes()); // extra
                if central {
                    h.extend(0u16.to_le_bytes()); // comment
                    h.extend(0u16.to_le_bytes()); // disk
                    h.extend(0u16.to_le_bytes()); // internal attributes
                    h.extend(0u32.to_le_bytes()); // external attributes
                    h.extend(offset.to_le_bytes());
                }
                h.extend(name.as_bytes());
                h
            };
            out.extend(header(LOCAL_SIG, false));
            out.extend(*data);
            central.extend(header(CENTRAL_SIG, true));
        }
        let cd_offset = out.len() as u32;
        out.extend(&central);
        out.extend(EOCD_SIG.to_le_bytes());
        out.extend([0u8; 4]);
        out.extend((entries.len() as u16).to_le_bytes());
        out.extend((entries.len() as u16).to_le_bytes());
        out.extend((central.len() as u32).to_le_bytes());
        out.extend(cd_offset.to_le_bytes());
        out.extend(0u16.to_le_bytes());
        out
    }

    fn p() -> &'static Path {
        Path::new("t.zip")
    }

    #[test]
    fn reads_stored_entries() {
        let buf = write_stored(&[("a/data.pkl", b"xyz"), ("a/data/0", &[1, 2, 3, 4])]);
        let dir = ZipDir::parse(p(), &buf).unwrap();
        assert_eq!(dir.entries().len(), 2);
        let e = dir.get("a/data/0").unwrap();
        assert_eq!(dir.stored(p(), &buf, e).unwrap(), &[1, 2, 3, 4]);
        assert_eq!(
            dir.stored(p(), &buf, dir.get("a/data.pkl").unwrap())
                .unwrap(),
            b"xyz"
        );
    }

    #[test]
    fn rejects_truncation_and_bad_offsets_without_panicking() {
        let buf = write_stored(&[("a/data.pkl", b"xyz"), ("a/data/0", &[1, 2, 3, 4])]);
        // Every truncation fails cleanly (the end record is gone or points past the end).
        for cut in 0..buf.len() {
            assert!(ZipDir::parse(p(), &buf[..cut]).is_err(), "cut at {cut}");
        }
        // A local header offset past the end of the file.
        let mut bad = buf.clone();
        let cd = u32::from_le_bytes(bad[bad.len() - 6..bad.len() - 2].try_into().unwrap()) as usize;
        bad[cd + 42..cd + 46].copy_from_slice(&u32::MAX.to_le_bytes()[..]);
        let e = ZipDir::parse(p(), &bad).unwrap_err().to_string();
        assert!(e.contains("t.zip") && e.contains("data.pkl"), "{e}");
        // A huge entry count.
        let mut bad = buf.clone();
        let n = bad.len();
        bad[n - 12..n - 10].copy_from_slice(&0xFFFEu16.to_le_bytes());
        bad[n - 14..n - 12].copy_from_slice(&0xFFFEu16.to_le_bytes());
        let e = ZipDir::parse(p(), &bad).unwrap_err().to_string();
        assert!(e.contains("cannot fit"), "{e}");
        // Data size larger than the file.
        let mut bad = buf.clone();
        bad[cd + 20..cd + 28].copy_from_slice(&[0xF0, 0xFF, 0xFF, 0x7F, 0xF0, 0xFF, 0xFF, 0x7F]);
        let e = ZipDir::parse(p(), &bad).unwrap_err().to_string();
        assert!(e.contains("run past the end"), "{e}");
    }

    #[test]
    fn refuses_compressed_entries_by_name() {
        let mut buf = write_stored(&[("a/data.pkl", b"xyz")]);
        let cd = u32::from_le_bytes(buf[buf.len() - 6..buf.len() - 2].try_into().unwrap()) as usize;
        buf[cd + 10] = 8; // deflated
        let dir = ZipDir::parse(p(), &buf).unwrap();
        let e = dir
            .stored(p(), &buf, dir.get("a/data.pkl").unwrap())
            .unwrap_err()
            .to_string();
        assert!(e.contains("compressed") && e.contains("a/data.pkl"), "{e}");
    }
}
