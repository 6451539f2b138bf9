//! Writing shared by the export files: CSV writers, boolean cells and the SHA-256 of every
//! byte written.

use std::io::Write;

use sha2::{Digest, Sha256};

/// A boolean cell: `TRUE` or `FALSE`, the one spelling that both pandas (`read_csv`, as
/// bool) and R (`read.csv`, as logical) convert without options; R 4.2 keeps `true` as text.
pub fn bool_cell(value: bool) -> &'static str {
    if value {
        "TRUE"
    } else {
        "FALSE"
    }
}

/// A CSV writer with RFC 4180 output: CRLF line ends, fields quoted only when they contain
/// the delimiter, a quote or a line break, and quotes doubled.
pub fn csv_writer<W: Write>(out: W) -> csv::Writer<W> {
    csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(out)
}

/// Writes an integer as one CSV field, through the reusable `cell` buffer.
pub fn write_number<W: Write>(writer: &mut csv::Writer<W>, cell: &mut String, value: i64) -> csv::Result<()> {
    use std::fmt::Write as _;
    cell.clear();
    let _ = write!(cell, "{value}");
    writer.write_field(cell.as_bytes())
}

/// A writer that passes bytes through and keeps their SHA-256 and count.
pub struct HashingWriter<W> {
    inner: W,
    hasher: Sha256,
    bytes: u64,
}

impl<W: Write> HashingWriter<W> {
    pub fn new(inner: W) -> Self {
        HashingWriter {
            inner,
            hasher: Sha256::new(),
            bytes: 0,
        }
    }

    /// The hex SHA-256 and the size in bytes of everything written.
    pub fn finish(self) -> (String, u64) {
        (hex::encode(self.hasher.finalize()), self.bytes)
    }
}

impl<W: Write> Write for HashingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let written = self.inner.write(buf)?;
        self.hasher.update(&buf[..written]);
        self.bytes += written as u64;
        Ok(written)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hashing_writer_matches_digest() {
        let mut writer = HashingWriter::new(Vec::new());
        writer.write_all(b"abc").unwrap();
        let (digest, bytes) = writer.finish();
        assert_eq!(bytes, 3);
        assert_eq!(
            digest,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
