//! Embeddings on disk, so rescoring with the same feature extractor skips the trunk.
//!
//! Layout: `CACHE_DIR/MODEL_HASH/IMAGE_SHA256.f32`, each file the embedding as little-endian
//! f32 values. The model hash covers the extractor's weights and input size, the image hash the
//! file's bytes, so a changed image or model never reads a stale entry. A file is written under
//! a temporary name and renamed into place, so concurrent runs never read half a file. A file
//! of the wrong length is treated as missing and rewritten.
//!
//! NOTE: nothing removes the folders of models that are no longer used; each from-scratch
//! training run has a new hash and so a new folder.

use std::path::{Path, PathBuf};

use super::MlError;

pub(crate) struct EmbeddingCache {
    folder: PathBuf,
}

impl EmbeddingCache {
    /// Opens (creating it when needed) the folder of one model's embeddings.
    pub fn open(cache_dir: &Path, model_hash: &str) -> Result<Self, MlError> {
        let folder = cache_dir.join(model_hash);
        std::fs::create_dir_all(&folder).map_err(|source| MlError::Cache { path: folder.clone(), source })?;
        Ok(Self { folder })
    }

    fn path(&self, image_sha256: &str) -> PathBuf {
        self.folder.join(format!("{image_sha256}.f32"))
    }

    /// Returns the cached embedding of an image, if present with `width` values.
    pub fn get(&self, image_sha256: &str, width: usize) -> Option<Vec<f32>> {
        let bytes = std::fs::read(self.path(image_sha256)).ok()?;
        if bytes.len() != width * 4 {
            return None;
        }
        Some(bytes.chunks_exact(4).map(|chunk| f32::from_le_bytes([chunk[0], chunk[1], chunk[2], chunk[3]])).collect())
    }

    pub fn put(&self, image_sha256: &str, embedding: &[f32]) -> Result<(), MlError> {
        let path = self.path(image_sha256);
        let temporary = self.folder.join(format!("{image_sha256}.{}.tmp", std::process::id()));
        let bytes: Vec<u8> = embedding.iter().flat_map(|value| value.to_le_bytes()).collect();
        std::fs::write(&temporary, bytes).map_err(|source| MlError::Cache { path: temporary.clone(), source })?;
        std::fs::rename(&temporary, &path).map_err(|source| MlError::Cache { path, source })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_width_check() {
        let folder = tempfile::tempdir().unwrap();
        let cache = EmbeddingCache::open(folder.path(), "model").unwrap();
        assert_eq!(cache.get("abc", 3), None);
        cache.put("abc", &[1.5, -2.0, 0.25]).unwrap();
        assert_eq!(cache.get("abc", 3), Some(vec![1.5, -2.0, 0.25]));
        assert_eq!(cache.get("abc", 4), None);
        assert!(folder.path().join("model").join("abc.f32").is_file());
    }
}
