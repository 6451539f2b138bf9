//! Image decoding with limits, and the derived copies graders look at.
//!
//! Every upload goes through [`process`]: the format is taken from the bytes (never the file
//! name), the header's dimensions are checked against [`ImageLimits`] before any pixel
//! buffer is allocated, EXIF orientation is applied, and two derived copies are made: an
//! 8-bit display copy at most [`DISPLAY_MAX_SIDE`] pixels on its longer side, and a
//! thumbnail. The original bytes are kept unchanged (content-addressed by sha256) so the
//! full-resolution image, 16-bit TIFFs included, stays available.

pub mod import;
pub mod storage;

use std::io::Cursor;

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader};
use sha2::{Digest, Sha256};

/// Longer side of the display copy, in pixels.
pub const DISPLAY_MAX_SIDE: u32 = 2048;
/// Longer side of the thumbnail, in pixels.
pub const THUMBNAIL_MAX_SIDE: u32 = 256;
const JPEG_QUALITY: u8 = 90;

/// Upper bounds checked before an image is decoded.
#[derive(Debug, Clone, Copy)]
pub struct ImageLimits {
    /// Largest accepted file, in bytes.
    pub max_file_bytes: u64,
    /// Largest accepted width x height.
    pub max_pixels: u64,
    /// Largest accepted width or height.
    pub max_side: u32,
}

impl Default for ImageLimits {
    /// 200 MB files and 100 megapixels: above the largest fundus camera and OCT exports in
    /// clinical use, while bounding the memory one decode may take (about 1.2 GB for a 16-bit
    /// RGB image of that size).
    fn default() -> Self {
        ImageLimits { max_file_bytes: 200 * 1024 * 1024, max_pixels: 100_000_000, max_side: 40_000 }
    }
}

/// Why an image was rejected.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ImageError {
    #[error("file is {size} bytes, above the limit of {limit} bytes")]
    TooLarge { size: u64, limit: u64 },
    #[error("image is {width}x{height} pixels, above the limit of {limit} pixels (or {max_side} per side)")]
    TooManyPixels { width: u32, height: u32, limit: u64, max_side: u32 },
    #[error("not a supported image: the content is not JPEG, PNG or TIFF")]
    UnknownFormat,
    #[error("image format {0} is not supported; use JPEG, PNG or TIFF")]
    UnsupportedFormat(String),
    #[error("image could not be decoded (truncated or corrupt file): {0}")]
    Corrupt(String),
    #[error("image is empty (0 pixels)")]
    Empty,
    #[error("could not write the derived copy: {0}")]
    Encode(String),
}

/// An accepted image, fully decoded and re-encoded in memory; nothing is on disk yet.
pub struct ProcessedImage {
    pub sha256: String,
    pub format: ImageFormat,
    /// Width and height after EXIF orientation.
    pub width: u32,
    pub height: u32,
    pub display_jpeg: Vec<u8>,
    pub thumbnail_jpeg: Vec<u8>,
}

/// The lowercase extension stored for a format.
pub fn format_extension(format: ImageFormat) -> &'static str {
    match format {
        ImageFormat::Jpeg => "jpg",
        ImageFormat::Png => "png",
        ImageFormat::Tiff => "tif",
        _ => "bin",
    }
}

/// Checks, decodes and derives the display copy and thumbnail of one image.
///
/// Fails without allocating pixels when the file or the header's dimensions exceed
/// `limits`, and with [`ImageError::Corrupt`] when decoding fails part-way (truncated file).
pub fn process(bytes: &[u8], limits: ImageLimits) -> Result<ProcessedImage, ImageError> {
    let size = bytes.len() as u64;
    if size > limits.max_file_bytes {
        return Err(ImageError::TooLarge { size, limit: limits.max_file_bytes });
    }

    let format = image::guess_format(bytes).map_err(|_| ImageError::UnknownFormat)?;
    if !matches!(format, ImageFormat::Jpeg | ImageFormat::Png | ImageFormat::Tiff) {
        return Err(ImageError::UnsupportedFormat(format!("{format:?}")));
    }
    if format == ImageFormat::Jpeg && !jpeg_is_complete(bytes) {
        return Err(ImageError::Corrupt("the JPEG ends before its end-of-image marker".into()));
    }

    // Read only the header first: the decoders allocate no pixel buffer until decoding.
    let mut probe = ImageReader::with_format(Cursor::new(bytes), format);
    probe.no_limits();
    let (width, height) = probe.into_dimensions().map_err(|e| ImageError::Corrupt(e.to_string()))?;
    if width == 0 || height == 0 {
        return Err(ImageError::Empty);
    }
    if u64::from(width) * u64::from(height) > limits.max_pixels || width > limits.max_side || height > limits.max_side {
        return Err(ImageError::TooManyPixels { width, height, limit: limits.max_pixels, max_side: limits.max_side });
    }

    let mut reader = ImageReader::with_format(Cursor::new(bytes), format);
    let mut decode_limits = image::Limits::default();
    decode_limits.max_image_width = Some(limits.max_side);
    decode_limits.max_image_height = Some(limits.max_side);
    // Room for the largest accepted image at 16 bits per channel with alpha.
    decode_limits.max_alloc = Some(limits.max_pixels.saturating_mul(8));
    reader.limits(decode_limits);
    let mut decoder = reader.into_decoder().map_err(|e| ImageError::Corrupt(e.to_string()))?;
    let orientation = decoder.orientation().ok();
    let mut image = DynamicImage::from_decoder(decoder).map_err(|e| ImageError::Corrupt(e.to_string()))?;
    if let Some(orientation) = orientation {
        image.apply_orientation(orientation);
    }

    let display = to_display_rgb(&image, DISPLAY_MAX_SIDE);
    let thumbnail = display.thumbnail(THUMBNAIL_MAX_SIDE, THUMBNAIL_MAX_SIDE);
    Ok(ProcessedImage {
        sha256: hex::encode(Sha256::digest(bytes)),
        format,
        width: image.width(),
        height: image.height(),
        display_jpeg: encode_jpeg(&display)?,
        thumbnail_jpeg: encode_jpeg(&thumbnail)?,
    })
}

/// True when a JPEG has an end-of-image marker after its last start-of-scan marker.
///
/// The JPEG decoder fills a truncated scan with grey instead of failing, so a file cut off in
/// transfer would otherwise import as a damaged photograph. Inside entropy-coded data every
/// 0xFF byte is followed by 0x00 or a restart marker, so 0xFFD9 there is always the real end.
fn jpeg_is_complete(bytes: &[u8]) -> bool {
    let last_scan = bytes.windows(2).rposition(|pair| pair == [0xFF, 0xDA]);
    match last_scan {
        Some(start) => bytes[start..].windows(2).any(|pair| pair == [0xFF, 0xD9]),
        None => false,
    }
}

/// An 8-bit RGB copy no larger than `max_side`; 16-bit and grey sources are converted.
fn to_display_rgb(image: &DynamicImage, max_side: u32) -> DynamicImage {
    let resized = if image.width() > max_side || image.height() > max_side {
        image.resize(max_side, max_side, image::imageops::FilterType::Triangle)
    } else {
        image.clone()
    };
    DynamicImage::ImageRgb8(resized.to_rgb8())
}

fn encode_jpeg(image: &DynamicImage) -> Result<Vec<u8>, ImageError> {
    let mut out = Vec::new();
    let encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, JPEG_QUALITY);
    image.write_with_encoder(encoder).map_err(|e| ImageError::Encode(e.to_string()))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn png_bytes(width: u32, height: u32) -> Vec<u8> {
        let image = DynamicImage::ImageRgb8(image::RgbImage::from_pixel(width, height, image::Rgb([200, 40, 10])));
        let mut out = Vec::new();
        image.write_to(&mut Cursor::new(&mut out), ImageFormat::Png).expect("encode png");
        out
    }

    #[test]
    fn small_png_is_processed() {
        let processed = process(&png_bytes(40, 30), ImageLimits::default()).expect("valid image");
        assert_eq!((processed.width, processed.height), (40, 30));
        assert_eq!(processed.format, ImageFormat::Png);
        assert!(processed.display_jpeg.starts_with(&[0xFF, 0xD8]));
    }

    #[test]
    fn text_is_not_an_image() {
        let error = process(b"hello, this is text", ImageLimits::default()).err();
        assert_eq!(error, Some(ImageError::UnknownFormat));
    }

    #[test]
    fn file_size_limit_applies() {
        let limits = ImageLimits { max_file_bytes: 10, ..ImageLimits::default() };
        assert!(matches!(process(&png_bytes(4, 4), limits), Err(ImageError::TooLarge { .. })));
    }

    #[test]
    fn pixel_limit_applies() {
        let limits = ImageLimits { max_pixels: 100, ..ImageLimits::default() };
        assert!(matches!(process(&png_bytes(20, 20), limits), Err(ImageError::TooManyPixels { .. })));
    }
}
