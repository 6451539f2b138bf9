//! Where image files live in the data folder.
//!
//! Originals are stored by content: `images/<first two hex digits>/<sha256>.<ext>`, so the
//! same photograph imported twice takes the disk once. Derived copies sit beside them under
//! `derived/<sha256>/display.jpg` and `thumb.jpg`. Files are written to a temporary name and
//! renamed, so a crash never leaves a half-written image under its final name.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Paths of one stored image, relative to the data folder.
#[derive(Debug, Clone)]
pub struct StoredPaths {
    pub original: PathBuf,
    pub display: PathBuf,
    pub thumbnail: PathBuf,
}

/// The relative paths for an image with this hash and extension.
pub fn paths_for(sha256: &str, extension: &str) -> StoredPaths {
    let prefix = &sha256[..2.min(sha256.len())];
    StoredPaths {
        original: PathBuf::from("images").join(prefix).join(format!("{sha256}.{extension}")),
        display: PathBuf::from("derived").join(sha256).join("display.jpg"),
        thumbnail: PathBuf::from("derived").join(sha256).join("thumb.jpg"),
    }
}

/// Files written by one import, so they can be removed if the import is rolled back.
#[derive(Debug, Default)]
pub struct WrittenFiles {
    paths: Vec<PathBuf>,
}

impl WrittenFiles {
    /// Removes every file written; used when the database rejects the item afterwards.
    pub fn remove_all(self) {
        for path in self.paths {
            if let Err(error) = fs::remove_file(&path) {
                tracing::warn!(path = %path.display(), %error, "could not remove file of a rejected image");
            }
        }
    }
}

/// Writes `bytes` to `data_dir/relative` unless a file is already there (same content, by
/// construction of the path). Records the path in `written` when this call created it.
pub fn write_if_absent(data_dir: &Path, relative: &Path, bytes: &[u8], written: &mut WrittenFiles) -> std::io::Result<()> {
    let target = data_dir.join(relative);
    if target.exists() {
        return Ok(());
    }
    let parent = target.parent().unwrap_or(data_dir);
    fs::create_dir_all(parent)?;
    let temporary = parent.join(format!(
        ".tmp-{}-{}",
        std::process::id(),
        target.file_name().and_then(|n| n.to_str()).unwrap_or("image")
    ));
    {
        let mut file = fs::File::create(&temporary)?;
        file.write_all(bytes)?;
        file.sync_all()?;
    }
    fs::rename(&temporary, &target)?;
    written.paths.push(target);
    Ok(())
}
