//! Image files to model input: decode, resize to a square, normalise per channel.
//!
//! The image is squeezed to `resolution` × `resolution` without cropping, because fundus
//! photographs are close to square and every image is distorted the same way. It is converted
//! to RGB, and each channel is normalised with the ImageNet mean and standard deviation. The
//! pretrained backbones expect that, and it centres the from-scratch model's input as well. The result is a
//! (3, resolution, resolution) f32 tensor, channels first.

use std::path::Path;

use candle_core::{Device, Tensor};
use image::imageops::FilterType;
use sha2::{Digest, Sha256};

use super::MlError;

/// ImageNet per-channel mean of RGB values scaled to 0..1.
const MEAN: [f32; 3] = [0.485, 0.456, 0.406];
/// ImageNet per-channel standard deviation of RGB values scaled to 0..1.
const STD: [f32; 3] = [0.229, 0.224, 0.225];

/// An image file's bytes and their sha256, read once for hashing and decoding.
pub(crate) struct ImageFile {
    pub bytes: Vec<u8>,
    pub sha256: String,
}

/// Reads an image file and hashes its content.
pub(crate) fn read_image(path: &Path) -> Result<ImageFile, MlError> {
    let bytes = std::fs::read(path).map_err(|error| MlError::Image {
        path: path.to_path_buf(),
        message: format!("cannot read the file: {error}"),
    })?;
    let sha256 = hex::encode(Sha256::digest(&bytes));
    Ok(ImageFile { bytes, sha256 })
}

/// Decodes image bytes into a normalised (3, resolution, resolution) tensor.
pub(crate) fn decode(path: &Path, bytes: &[u8], resolution: u32, device: &Device) -> Result<Tensor, MlError> {
    let image = image::load_from_memory(bytes).map_err(|error| MlError::Image {
        path: path.to_path_buf(),
        message: format!("cannot decode the image: {error}"),
    })?;
    let side = resolution as usize;
    let rgb = image.resize_exact(resolution, resolution, FilterType::Triangle).to_rgb8();

    let mut values = vec![0f32; 3 * side * side];
    for (index, pixel) in rgb.pixels().enumerate() {
        for channel in 0..3 {
            let scaled = f32::from(pixel[channel]) / 255.0;
            values[channel * side * side + index] = (scaled - MEAN[channel]) / STD[channel];
        }
    }
    Ok(Tensor::from_vec(values, (3, side, side), device)?)
}

/// Reads, hashes and decodes one image file.
pub(crate) fn load(path: &Path, resolution: u32, device: &Device) -> Result<(String, Tensor), MlError> {
    let file = read_image(path)?;
    let tensor = decode(path, &file.bytes, resolution, device)?;
    Ok((file.sha256, tensor))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decode_normalises_channels() {
        // A 4×2 pure red PNG resized to 2×2: red channel (1 − 0.485) / 0.229 = 2.2489...,
        // green (0 − 0.456) / 0.224 = −2.0357..., blue (0 − 0.406) / 0.225 = −1.8044...
        let image = image::RgbImage::from_pixel(4, 2, image::Rgb([255, 0, 0]));
        let mut bytes = Vec::new();
        image::DynamicImage::ImageRgb8(image)
            .write_to(&mut std::io::Cursor::new(&mut bytes), image::ImageFormat::Png)
            .unwrap();
        let tensor = decode(Path::new("red.png"), &bytes, 2, &Device::Cpu).unwrap();
        assert_eq!(tensor.dims(), &[3, 2, 2]);
        let values = tensor.flatten_all().unwrap().to_vec1::<f32>().unwrap();
        assert!((values[0] - 2.248_908).abs() < 1e-4, "{}", values[0]);
        assert!((values[4] + 2.035_714).abs() < 1e-4, "{}", values[4]);
        assert!((values[8] + 1.804_444).abs() < 1e-4, "{}", values[8]);
    }

    #[test]
    fn decode_rejects_non_image() {
        let error = decode(Path::new("notes.txt"), b"not an image", 8, &Device::Cpu).unwrap_err();
        let message = error.to_string();
        assert!(message.contains("notes.txt"), "{message}");
        assert!(message.contains("cannot decode"), "{message}");
    }

    #[test]
    fn missing_file_named() {
        let message = read_image(Path::new("/nonexistent/photo.jpg")).err().unwrap().to_string();
        assert!(message.contains("/nonexistent/photo.jpg"), "{message}");
    }
}
