//! Small helpers for reading the CSV files people bring: text decoding and the delimiter.

/// Strips a UTF-8 byte-order mark and checks the rest is UTF-8.
///
/// Fails with the 1-based line of the first byte that is not UTF-8.
pub fn decode_utf8(bytes: &[u8]) -> anyhow::Result<&str> {
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    std::str::from_utf8(bytes).map_err(|error| {
        let line = bytes[..error.valid_up_to()].iter().filter(|&&b| b == b'\n').count() + 1;
        anyhow::anyhow!("line {line} is not valid UTF-8 text; save the file as UTF-8")
    })
}

/// Picks `,`, `;` or tab: whichever occurs most often in the header line.
pub fn detect_delimiter(text: &str) -> u8 {
    let header = text.lines().next().unwrap_or("");
    [b',', b';', b'\t']
        .into_iter()
        .max_by_key(|&d| (header.bytes().filter(|&b| b == d).count(), d == b','))
        .unwrap_or(b',')
}
