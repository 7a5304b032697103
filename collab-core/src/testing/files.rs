//! Small real files built by hand, for tests of uploads: PNG, JPEG, GIF, WebP, ZIP entries,
//! PDFs. Each is well-formed enough for the sniffing, dimension and page-count checks.

use std::io::Write;

/// The CRC-32 PNG chunks carry.
pub fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// The Adler-32 checksum that ends a zlib stream.
pub fn adler32(bytes: &[u8]) -> u32 {
    let (mut a, mut b) = (1u32, 0u32);
    for &x in bytes {
        a = (a + u32::from(x)) % 65521;
        b = (b + a) % 65521;
    }
    (b << 16) | a
}

/// Appends a PNG chunk with its length and CRC.
pub fn png_chunk(out: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    out.extend_from_slice(
        &u32::try_from(data.len())
            .expect("a PNG chunk under 4 GiB")
            .to_be_bytes(),
    );
    let start = out.len();
    out.extend_from_slice(kind);
    out.extend_from_slice(data);
    let crc = crc32(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

/// An RGB PNG of `width` × `height` pixels, every pixel black. The IDAT holds the real rows only
/// for small images; for huge claimed sizes it holds one row, which is enough for a header check.
pub fn png(width: u32, height: u32) -> Vec<u8> {
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&width.to_be_bytes());
    ihdr.extend_from_slice(&height.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    png_chunk(&mut out, b"IHDR", &ihdr);
    let rows = if u64::from(width) * u64::from(height) <= 10_000 {
        height
    } else {
        1
    };
    let raw = vec![0u8; (1 + 3 * width.min(100) as usize) * rows as usize];
    // zlib with one stored (uncompressed) block.
    let mut idat = vec![0x78, 0x01, 0x01];
    let len = u16::try_from(raw.len()).expect("a stored zlib block under 64 KiB");
    idat.extend_from_slice(&len.to_le_bytes());
    idat.extend_from_slice(&(!len).to_le_bytes());
    idat.extend_from_slice(&raw);
    idat.extend_from_slice(&adler32(&raw).to_be_bytes());
    png_chunk(&mut out, b"IDAT", &idat);
    png_chunk(&mut out, b"IEND", &[]);
    out
}

/// A baseline JPEG header of `width` × `height` pixels (SOI, JFIF APP0, SOF0) and EOI: enough
/// for sniffing and dimensions.
pub fn jpeg(width: u16, height: u16) -> Vec<u8> {
    let mut out = vec![0xFF, 0xD8];
    out.extend_from_slice(&[0xFF, 0xE0, 0x00, 0x10]);
    out.extend_from_slice(b"JFIF\0\x01\x01\x00\x00\x01\x00\x01\x00\x00");
    out.extend_from_slice(&[0xFF, 0xC0, 0x00, 0x11, 0x08]);
    out.extend_from_slice(&height.to_be_bytes());
    out.extend_from_slice(&width.to_be_bytes());
    out.extend_from_slice(&[3, 1, 0x22, 0, 2, 0x11, 1, 3, 0x11, 1]);
    out.extend_from_slice(&[0xFF, 0xD9]);
    out
}

/// A GIF89a of `width` × `height` pixels, with one 1-bit-per-pixel image of the full size.
pub fn gif(width: u16, height: u16) -> Vec<u8> {
    let mut out = b"GIF89a".to_vec();
    out.extend_from_slice(&width.to_le_bytes());
    out.extend_from_slice(&height.to_le_bytes());
    out.extend_from_slice(&[0x80, 0, 0, 0, 0, 0, 0xFF, 0xFF, 0xFF]);
    out.push(0x2C);
    out.extend_from_slice(&[0, 0, 0, 0]);
    out.extend_from_slice(&width.to_le_bytes());
    out.extend_from_slice(&height.to_le_bytes());
    out.extend_from_slice(&[0, 2, 2, 0x4C, 0x01, 0, 0x3B]);
    out
}

/// A WebP container of `width` × `height` pixels, with a VP8X chunk, which carries the canvas
/// size.
pub fn webp(width: u32, height: u32) -> Vec<u8> {
    let mut chunk = b"VP8X".to_vec();
    chunk.extend_from_slice(&10u32.to_le_bytes());
    chunk.extend_from_slice(&[0, 0, 0, 0]);
    chunk.extend_from_slice(&(width - 1).to_le_bytes()[..3]);
    chunk.extend_from_slice(&(height - 1).to_le_bytes()[..3]);
    let mut out = b"RIFF".to_vec();
    out.extend_from_slice(
        &u32::try_from(4 + chunk.len())
            .expect("a small WebP chunk")
            .to_le_bytes(),
    );
    out.extend_from_slice(b"WEBP");
    out.extend_from_slice(&chunk);
    out
}

/// A ZIP local file entry named `name` holding `content` stored: how OOXML and ODF files start.
pub fn zip_entry(name: &str, content: &[u8]) -> Vec<u8> {
    let mut out = b"PK\x03\x04".to_vec();
    out.extend_from_slice(&[20, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
    out.extend_from_slice(&crc32(content).to_le_bytes());
    let len = u32::try_from(content.len())
        .expect("a ZIP entry under 4 GiB")
        .to_le_bytes();
    out.extend_from_slice(&len);
    out.extend_from_slice(&len);
    out.extend_from_slice(
        &u16::try_from(name.len())
            .expect("a ZIP entry name under 64 KiB")
            .to_le_bytes(),
    );
    out.extend_from_slice(&[0, 0]);
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(content);
    out
}

/// A PDF of the given objects (numbered from 1, the first being the catalog) with a correct
/// cross-reference table.
pub fn pdf(objects: &[String]) -> Vec<u8> {
    let mut out = b"%PDF-1.7\n%\xE2\xE3\xCF\xD3\n".to_vec();
    let mut offsets = Vec::new();
    for (i, object) in objects.iter().enumerate() {
        offsets.push(out.len());
        write!(out, "{} 0 obj\n{object}\nendobj\n", i + 1).expect("writing to a Vec cannot fail");
    }
    let xref = out.len();
    write!(out, "xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).expect("writing to a Vec cannot fail");
    for offset in offsets {
        writeln!(out, "{offset:010} 00000 n ").expect("writing to a Vec cannot fail");
    }
    write!(
        out,
        "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
        objects.len() + 1
    )
    .expect("writing to a Vec cannot fail");
    out
}

/// A PDF stream object holding `content`.
pub fn stream(content: &str) -> String {
    format!("<< /Length {} >>\nstream\n{content}\nendstream", content.len())
}

/// A valid PDF of `pages` pages in one flat page tree, each showing its number.
pub fn pdf_with_pages(pages: usize) -> Vec<u8> {
    pdf_with_page_contents(pages, |_| String::new())
}

/// A valid PDF of `pages` pages in one flat page tree, each showing its number in large type
/// (font `/F1`) followed by the content stream operators `more(i)` gives page `i` (from 0).
pub fn pdf_with_page_contents(pages: usize, more: impl Fn(usize) -> String) -> Vec<u8> {
    // Objects: 1 catalog, 2 page tree, then the pages, their contents, and one font.
    let page = |i: usize| i + 3;
    let contents = |i: usize| pages + i + 3;
    let font = 2 * pages + 3;
    let kids: Vec<String> = (0..pages).map(|i| format!("{} 0 R", page(i))).collect();
    let mut objects = vec![
        "<< /Type /Catalog /Pages 2 0 R >>".to_owned(),
        format!("<< /Type /Pages /Kids [{}] /Count {pages} >>", kids.join(" ")),
    ];
    for i in 0..pages {
        objects.push(format!(
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {} 0 R \
             /Resources << /Font << /F1 {font} 0 R >> >> >>",
            contents(i)
        ));
    }
    for i in 0..pages {
        objects.push(stream(&format!(
            "BT /F1 64 Tf 72 650 Td (Page {}) Tj ET{}",
            i + 1,
            more(i)
        )));
    }
    objects.push("<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>".to_owned());
    pdf(&objects)
}

/// One file of a [`zip_of`] archive: its name, compression method (0 stored, 8 deflated), the
/// bytes as stored and the size they claim to inflate to.
#[derive(Clone, Copy, Debug)]
pub struct ZipFile<'a> {
    /// The entry's name.
    pub name: &'a str,
    /// The compression method.
    pub method: u16,
    /// The bytes as stored.
    pub data: &'a [u8],
    /// The size the bytes inflate to.
    pub size: u32,
}

/// A ZIP archive of `files` stored uncompressed, with its central directory.
pub fn zip(files: &[(&str, &[u8])]) -> Vec<u8> {
    let files: Vec<ZipFile<'_>> = files
        .iter()
        .map(|&(name, data)| ZipFile {
            name,
            method: 0,
            data,
            size: u32::try_from(data.len()).expect("a ZIP entry under 4 GiB"),
        })
        .collect();
    zip_of(&files)
}

/// A ZIP archive of `files` with its central directory, as written (no CRC check is made of
/// deflated entries: their CRC is 0).
pub fn zip_of(files: &[ZipFile<'_>]) -> Vec<u8> {
    let u16_of = |n: usize| u16::try_from(n).expect("a ZIP field under 64 Ki").to_le_bytes();
    let u32_of = |n: usize| u32::try_from(n).expect("a ZIP field under 4 Gi").to_le_bytes();
    let mut out = Vec::new();
    let mut directory = Vec::new();
    for file in files {
        let crc = if file.method == 0 { crc32(file.data) } else { 0 };
        let mut common = vec![20, 0, 0, 0];
        common.extend_from_slice(&file.method.to_le_bytes());
        common.extend_from_slice(&[0, 0, 0, 0]);
        common.extend_from_slice(&crc.to_le_bytes());
        common.extend_from_slice(&u32_of(file.data.len()));
        common.extend_from_slice(&file.size.to_le_bytes());
        common.extend_from_slice(&u16_of(file.name.len()));
        common.extend_from_slice(&[0, 0]);
        let offset = out.len();
        out.extend_from_slice(b"PK\x03\x04");
        out.extend_from_slice(&common);
        out.extend_from_slice(file.name.as_bytes());
        out.extend_from_slice(file.data);
        directory.extend_from_slice(b"PK\x01\x02\x14\x00");
        directory.extend_from_slice(&common);
        // Comment length, disk, internal and external attributes.
        directory.extend_from_slice(&[0; 10]);
        directory.extend_from_slice(&u32_of(offset));
        directory.extend_from_slice(file.name.as_bytes());
    }
    let directory_offset = out.len();
    out.extend_from_slice(&directory);
    out.extend_from_slice(b"PK\x05\x06\0\0\0\0");
    out.extend_from_slice(&u16_of(files.len()));
    out.extend_from_slice(&u16_of(files.len()));
    out.extend_from_slice(&u32_of(directory.len()));
    out.extend_from_slice(&u32_of(directory_offset));
    out.extend_from_slice(&[0, 0]);
    out
}

/// A raw deflate stream (one fixed-Huffman block) of `len` zero bytes, about 160 times smaller
/// than what it inflates to: the payload of a ZIP bomb.
pub fn deflated_zeros(len: usize) -> Vec<u8> {
    struct Bits {
        out: Vec<u8>,
        used: u32,
    }
    impl Bits {
        fn push(&mut self, value: u32, count: u32, msb_first: bool) {
            for i in 0..count {
                let bit = if msb_first {
                    (value >> (count - 1 - i)) & 1
                } else {
                    (value >> i) & 1
                };
                if self.used.is_multiple_of(8) {
                    self.out.push(0);
                }
                if bit == 1 {
                    *self.out.last_mut().expect("a byte was pushed") |= 1 << (self.used % 8);
                }
                self.used += 1;
            }
        }
    }
    let mut bits = Bits {
        out: Vec::new(),
        used: 0,
    };
    // Final block, fixed Huffman codes.
    bits.push(0b011, 3, false);
    let literal_zero = |bits: &mut Bits| bits.push(0x30, 8, true);
    if len > 0 {
        literal_zero(&mut bits);
        let rest = len - 1;
        for _ in 0..rest / 258 {
            // Length 258 (symbol 285), distance 1 (code 0).
            bits.push(0b1100_0101, 8, true);
            bits.push(0, 5, true);
        }
        for _ in 0..rest % 258 {
            literal_zero(&mut bits);
        }
    }
    // End of block.
    bits.push(0, 7, true);
    bits.out
}

/// The entries of a ZIP archive as Python's `zipfile` reads them (every CRC checked): a reader
/// that is not ours. Panics, saying so, when `python3` is missing or the archive is broken.
pub fn read_zip_with_python(archive: &[u8]) -> Vec<(String, Vec<u8>)> {
    static ARCHIVES: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let n = ARCHIVES.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("collab-zip-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("a temporary folder");
    let path = dir.join("archive.zip");
    std::fs::write(&path, archive).expect("write the archive");
    let script = "import base64, json, sys, zipfile\n\
        z = zipfile.ZipFile(sys.argv[1])\n\
        bad = z.testzip()\n\
        assert bad is None, bad\n\
        print(json.dumps([[i.filename, base64.b64encode(z.read(i)).decode()] for i in z.infolist()]))";
    let output = std::process::Command::new("python3")
        .args(["-c", script])
        .arg(&path)
        .output()
        .expect("python3 is needed to read the archives back (CI has it)");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(
        output.status.success(),
        "python3's zipfile refused the archive: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let entries: Vec<(String, String)> = serde_json::from_slice(&output.stdout).expect("python's answer");
    entries
        .into_iter()
        .map(|(name, bytes)| (name, base64_decode(&bytes)))
        .collect()
}

fn base64_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = Vec::with_capacity(text.len() / 4 * 3);
    let (mut bits, mut count) = (0u32, 0);
    for byte in text.bytes().filter(|&b| b != b'=') {
        let value = ALPHABET.iter().position(|&a| a == byte).expect("base64") as u32;
        bits = (bits << 6) | value;
        count += 6;
        if count >= 8 {
            count -= 8;
            out.push((bits >> count) as u8);
        }
    }
    out
}
