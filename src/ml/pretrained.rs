//! Pretrained backbones from candle-transformers 0.11, used as frozen feature extractors.
//!
//! A backbone is found by file name in the models folder; the first of [`BACKBONES`] present
//! wins:
//!
//! | file | model | embedding width |
//! |---|---|---|
//! | `resnet18.safetensors` | ResNet-18 | 512 |
//! | `resnet34.safetensors` | ResNet-34 | 512 |
//! | `resnet50.safetensors` | ResNet-50 | 2048 |
//! | `convnext-atto.safetensors` … `convnext-base.safetensors` | ConvNeXt atto, femto, pico, nano, tiny, small, base | 320 to 1024 |
//!
//! The tensor names must be those that candle-transformers' `resnet` and `convnext` modules
//! read: the torchvision names for ResNet (`conv1.weight`, `bn1.running_mean`,
//! `layer1.0.conv1.weight`, …, the `fc` layer may be present and is ignored) and the timm names
//! for ConvNeXt (`stem.0.weight`, `stages.0.blocks.0.conv_dw.weight`, …), as in the
//! safetensors files that candle's examples use. Batch norm runs in evaluation mode with the
//! stored running statistics; no backbone weight is trained. The embedding is the globally
//! average-pooled last feature map.
//!
//! NOTE: the tests load randomly initialised ResNet-18 files written by candle itself; no
//! downloaded checkpoint and no ConvNeXt file has been run through this code.

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::{Func, VarBuilder};
use candle_transformers::models::{convnext, resnet};
use sha2::{Digest, Sha256};

use super::MlError;

/// Backbone names, in the order the models folder is searched; the file is `NAME.safetensors`.
pub const BACKBONES: [&str; 10] = [
    "resnet18",
    "resnet34",
    "resnet50",
    "convnext-atto",
    "convnext-femto",
    "convnext-pico",
    "convnext-nano",
    "convnext-tiny",
    "convnext-small",
    "convnext-base",
];

/// A loaded frozen backbone.
pub(crate) struct Backbone {
    pub name: &'static str,
    /// sha256 (hex) of the weight file and the input side.
    pub hash: String,
    model: Func<'static>,
}

impl Backbone {
    /// Embeddings (B, D) of images (B, 3, R, R).
    pub fn forward(&self, images: &Tensor) -> candle_core::Result<Tensor> {
        self.model.forward(images)
    }
}

/// Finds the first backbone file present in `models_dir`.
pub fn find_backbone(models_dir: &Path) -> Option<(&'static str, PathBuf)> {
    BACKBONES
        .iter()
        .map(|&name| (name, models_dir.join(format!("{name}.safetensors"))))
        .find(|(_, path)| path.is_file())
}

/// Loads the first backbone found in `models_dir`; `None` when there is none.
pub(crate) fn load_backbone(models_dir: &Path, resolution: u32, device: &Device) -> Result<Option<Backbone>, MlError> {
    let Some((name, path)) = find_backbone(models_dir) else {
        return Ok(None);
    };
    let weights_error = |message: String| MlError::Weights { path: path.clone(), message };

    let bytes = std::fs::read(&path).map_err(|error| weights_error(format!("cannot read the file: {error}")))?;
    let mut hasher = Sha256::new();
    hasher.update(format!("{name} {resolution}px").as_bytes());
    hasher.update(&bytes);
    let hash = hex::encode(hasher.finalize());

    let tensors = candle_core::safetensors::load_buffer(&bytes, device)
        .map_err(|error| weights_error(format!("not a readable safetensors file: {error}")))?;
    let vb = VarBuilder::from_tensors(tensors, DType::F32, device);
    let model = build(name, vb).map_err(|error| {
        weights_error(format!("the tensors do not match candle-transformers' {name}: {error}"))
    })?;
    Ok(Some(Backbone { name, hash, model }))
}

fn build(name: &str, vb: VarBuilder<'static>) -> candle_core::Result<Func<'static>> {
    match name {
        "resnet18" => resnet::resnet18_no_final_layer(vb),
        "resnet34" => resnet::resnet34_no_final_layer(vb),
        "resnet50" => resnet::resnet50_no_final_layer(vb),
        "convnext-atto" => convnext::convnext_no_final_layer(&convnext::Config::atto(), vb),
        "convnext-femto" => convnext::convnext_no_final_layer(&convnext::Config::femto(), vb),
        "convnext-pico" => convnext::convnext_no_final_layer(&convnext::Config::pico(), vb),
        "convnext-nano" => convnext::convnext_no_final_layer(&convnext::Config::nano(), vb),
        "convnext-tiny" => convnext::convnext_no_final_layer(&convnext::Config::tiny(), vb),
        "convnext-small" => convnext::convnext_no_final_layer(&convnext::Config::small(), vb),
        "convnext-base" => convnext::convnext_no_final_layer(&convnext::Config::base(), vb),
        other => candle_core::bail!("unknown backbone {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_nn::VarMap;

    #[test]
    fn resnet18_file_loads_and_embeds() {
        // Random ResNet-18 weights written under the expected name stand in for a download.
        let folder = tempfile::tempdir().unwrap();
        let device = Device::Cpu;
        let varmap = VarMap::new();
        resnet::resnet18_no_final_layer(VarBuilder::from_varmap(&varmap, DType::F32, &device)).unwrap();
        varmap.save(folder.path().join("resnet18.safetensors")).unwrap();

        let backbone = load_backbone(folder.path(), 32, &device).unwrap().expect("backbone found");
        assert_eq!(backbone.name, "resnet18");
        let images = Tensor::zeros((2, 3, 32, 32), DType::F32, &device).unwrap();
        assert_eq!(backbone.forward(&images).unwrap().dims(), &[2, 512]);
    }

    #[test]
    fn empty_folder_has_no_backbone() {
        let folder = tempfile::tempdir().unwrap();
        assert!(load_backbone(folder.path(), 32, &Device::Cpu).unwrap().is_none());
    }

    #[test]
    fn mismatched_weights_named() {
        // A safetensors file with one unrelated tensor under a ResNet name.
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("resnet34.safetensors");
        let tensor = Tensor::zeros(4, DType::F32, &Device::Cpu).unwrap();
        candle_core::safetensors::save(&std::collections::HashMap::from([("other".to_string(), tensor)]), &path).unwrap();
        let message = load_backbone(folder.path(), 32, &Device::Cpu).err().unwrap().to_string();
        assert!(message.contains("resnet34.safetensors"), "{message}");
        assert!(message.contains("do not match"), "{message}");
    }
}
