//! A ZIP archive written as a stream: each entry stored as it comes (no compression, no seeking
//! back), its CRC-32 and size in a data descriptor after its bytes, and the central directory at
//! the end. ZIP64 records are written where a size, an offset or the number of entries passes
//! what the classic fields can hold. (APPNOTE.TXT 6.3, sections 4.3 and 4.5.3.)
//!
//! The writer only produces headers and counts the data: the caller sends each entry's bytes
//! itself, between [`ZipWriter::start_entry`] and [`ZipWriter::finish_entry`]. Memory: one
//! small record per entry, for the central directory.

const LOCAL_HEADER: u32 = 0x0403_4b50;
const DATA_DESCRIPTOR: u32 = 0x0807_4b50;
const CENTRAL_HEADER: u32 = 0x0201_4b50;
const ZIP64_END: u32 = 0x0606_4b50;
const ZIP64_LOCATOR: u32 = 0x0706_4b50;
const END: u32 = 0x0605_4b50;
/// Version 4.5: ZIP64.
const VERSION: u16 = 45;
/// Sizes in a data descriptor (bit 3), names in UTF-8 (bit 11).
const FLAGS: u16 = (1 << 3) | (1 << 11);
const STORED: u16 = 0;
const ZIP64_EXTRA: u16 = 0x0001;

/// An entry written, as the central directory describes it.
struct Entry {
    name: String,
    crc: u32,
    size: u64,
    offset: u64,
}

/// The entry being written.
struct Open {
    name: String,
    crc: crc32fast::Hasher,
    size: u64,
    offset: u64,
}

pub(crate) struct ZipWriter {
    /// Bytes of the archive so far.
    offset: u64,
    entries: Vec<Entry>,
    open: Option<Open>,
    date: u16,
    time: u16,
    /// The largest value the classic 32-bit fields hold; lower in tests, to write ZIP64.
    classic_max: u64,
}

impl ZipWriter {
    /// A writer whose entries carry the DOS `date` and `time`.
    pub(crate) fn new((date, time): (u16, u16)) -> Self {
        Self {
            offset: 0,
            entries: Vec::new(),
            open: None,
            date,
            time,
            classic_max: u64::from(u32::MAX),
        }
    }

    /// Starts an entry named `name` (a path with `/`), finishing the open one: the bytes to send.
    pub(crate) fn start_entry(&mut self, name: &str) -> Vec<u8> {
        let mut out = self.finish_entry();
        let descriptor = out.len();
        let offset = self.offset;
        put_u32(&mut out, LOCAL_HEADER);
        put_u16(&mut out, VERSION);
        put_u16(&mut out, FLAGS);
        put_u16(&mut out, STORED);
        put_u16(&mut out, self.time);
        put_u16(&mut out, self.date);
        // CRC-32 and sizes follow the data, in its descriptor.
        out.extend_from_slice(&[0; 12]);
        put_u16(&mut out, name_len(name));
        put_u16(&mut out, 0);
        out.extend_from_slice(&name.as_bytes()[..usize::from(name_len(name))]);
        self.offset = offset + (out.len() - descriptor) as u64;
        self.open = Some(Open {
            name: name.to_owned(),
            crc: crc32fast::Hasher::new(),
            size: 0,
            offset,
        });
        out
    }

    /// Counts `chunk`, sent by the caller as the open entry's next bytes.
    pub(crate) fn data(&mut self, chunk: &[u8]) {
        if let Some(open) = &mut self.open {
            open.crc.update(chunk);
            open.size += chunk.len() as u64;
            self.offset += chunk.len() as u64;
        }
    }

    /// Finishes the open entry, if any: its data descriptor, to send.
    pub(crate) fn finish_entry(&mut self) -> Vec<u8> {
        let Some(open) = self.open.take() else {
            return Vec::new();
        };
        let entry = Entry {
            name: open.name,
            crc: open.crc.finalize(),
            size: open.size,
            offset: open.offset,
        };
        let mut out = Vec::with_capacity(24);
        put_u32(&mut out, DATA_DESCRIPTOR);
        put_u32(&mut out, entry.crc);
        if entry.size > self.classic_max {
            put_u64(&mut out, entry.size);
            put_u64(&mut out, entry.size);
        } else {
            put_u32(&mut out, entry.size as u32);
            put_u32(&mut out, entry.size as u32);
        }
        self.offset += out.len() as u64;
        self.entries.push(entry);
        out
    }

    /// Finishes the archive: the open entry's descriptor, the central directory and the end
    /// records, to send.
    pub(crate) fn finish(mut self) -> Vec<u8> {
        let mut out = self.finish_entry();
        let directory_offset = self.offset;
        let directory_start = out.len();
        for entry in &self.entries {
            let big_size = entry.size > self.classic_max;
            let big_offset = entry.offset > self.classic_max;
            let mut extra = Vec::new();
            if big_size {
                put_u64(&mut extra, entry.size);
                put_u64(&mut extra, entry.size);
            }
            if big_offset {
                put_u64(&mut extra, entry.offset);
            }
            put_u32(&mut out, CENTRAL_HEADER);
            put_u16(&mut out, VERSION);
            put_u16(&mut out, VERSION);
            put_u16(&mut out, FLAGS);
            put_u16(&mut out, STORED);
            put_u16(&mut out, self.time);
            put_u16(&mut out, self.date);
            put_u32(&mut out, entry.crc);
            let size = if big_size { u32::MAX } else { entry.size as u32 };
            put_u32(&mut out, size);
            put_u32(&mut out, size);
            put_u16(&mut out, name_len(&entry.name));
            put_u16(&mut out, if extra.is_empty() { 0 } else { extra.len() as u16 + 4 });
            // Comment length, disk number, internal and external attributes.
            out.extend_from_slice(&[0; 10]);
            put_u32(&mut out, if big_offset { u32::MAX } else { entry.offset as u32 });
            out.extend_from_slice(&entry.name.as_bytes()[..usize::from(name_len(&entry.name))]);
            if !extra.is_empty() {
                put_u16(&mut out, ZIP64_EXTRA);
                put_u16(&mut out, extra.len() as u16);
                out.extend_from_slice(&extra);
            }
        }
        let directory_size = (out.len() - directory_start) as u64;
        let end_offset = directory_offset + directory_size;
        let count = self.entries.len() as u64;
        let zip64 = count >= u64::from(u16::MAX)
            || directory_offset > self.classic_max
            || directory_size > self.classic_max
            // A test's lowered limit writes the ZIP64 records too.
            || self.classic_max < u64::from(u32::MAX);
        if zip64 {
            put_u32(&mut out, ZIP64_END);
            // The record's size after this field.
            put_u64(&mut out, 44);
            put_u16(&mut out, VERSION);
            put_u16(&mut out, VERSION);
            // This disk, the directory's disk.
            out.extend_from_slice(&[0; 8]);
            put_u64(&mut out, count);
            put_u64(&mut out, count);
            put_u64(&mut out, directory_size);
            put_u64(&mut out, directory_offset);
            put_u32(&mut out, ZIP64_LOCATOR);
            put_u32(&mut out, 0);
            put_u64(&mut out, end_offset);
            put_u32(&mut out, 1);
        }
        put_u32(&mut out, END);
        out.extend_from_slice(&[0; 4]);
        let classic_count = if zip64 { u16::MAX } else { count as u16 };
        put_u16(&mut out, classic_count);
        put_u16(&mut out, classic_count);
        put_u32(&mut out, if zip64 { u32::MAX } else { directory_size as u32 });
        put_u32(&mut out, if zip64 { u32::MAX } else { directory_offset as u32 });
        put_u16(&mut out, 0);
        out
    }
}

/// A name's length in bytes, cut to what the field holds (the caller's names are short).
fn name_len(name: &str) -> u16 {
    u16::try_from(name.len()).unwrap_or(u16::MAX)
}

fn put_u16(out: &mut Vec<u8>, value: u16) {
    out.extend_from_slice(&value.to_le_bytes());
}

fn put_u32(out: &mut Vec<u8>, value: u32) {
    out.extend_from_slice(&value.to_le_bytes());
}

fn put_u64(out: &mut Vec<u8>, value: u64) {
    out.extend_from_slice(&value.to_le_bytes());
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An archive of `entries` written with `classic_max`, each entry's bytes in chunks.
    fn archive(entries: &[(&str, Vec<u8>)], classic_max: u64) -> Vec<u8> {
        let mut zip = ZipWriter::new((0x5a21, 0x4c00));
        zip.classic_max = classic_max;
        let mut out = Vec::new();
        for (name, bytes) in entries {
            out.extend(zip.start_entry(name));
            for chunk in bytes.chunks(1000) {
                zip.data(chunk);
                out.extend_from_slice(chunk);
            }
        }
        out.extend(zip.finish());
        out
    }

    fn sample() -> Vec<(&'static str, Vec<u8>)> {
        vec![
            ("events.jsonl", b"{\"seq\":1}\n".repeat(300)),
            ("empty.txt", Vec::new()),
            (
                "documents/3-r\u{e9}sum\u{e9}.pdf",
                (0..=255u8).cycle().take(5000).collect(),
            ),
        ]
    }

    #[test]
    fn another_reader_reads_back_what_was_written() {
        let expected: Vec<(String, Vec<u8>)> = sample().into_iter().map(|(n, b)| (n.to_owned(), b)).collect();
        assert_eq!(
            crate::testing::files::read_zip_with_python(&archive(&sample(), u64::from(u32::MAX))),
            expected
        );
    }

    #[test]
    fn zip64_records_are_read_back_too() {
        let expected: Vec<(String, Vec<u8>)> = sample().into_iter().map(|(n, b)| (n.to_owned(), b)).collect();
        // Every size and offset above 100 is written as ZIP64.
        let bytes = archive(&sample(), 100);
        assert!(bytes.windows(4).any(|w| w == ZIP64_END.to_le_bytes()));
        assert_eq!(crate::testing::files::read_zip_with_python(&bytes), expected);
    }
}
