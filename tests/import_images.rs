//! Image import: good files land, bad ones are reported by name and leave nothing behind.

mod common;

use std::io::Write;
use std::path::Path;

use common::{TestBackend, TestDatabase};
use quorum::imaging::import::import_images;
use quorum::imaging::ImageLimits;
use quorum::store::projects::{create_project, ProjectSpec};

fn seed_jpeg() -> Vec<u8> {
    std::fs::read(Path::new(env!("CARGO_MANIFEST_DIR")).join("seed/idrid-segmentation-subset/images/IDRiD_01.jpg"))
        .expect("seed photograph")
}

fn small_png(shade: u8) -> Vec<u8> {
    let image = image::DynamicImage::ImageRgb8(image::RgbImage::from_pixel(64, 48, image::Rgb([shade, 30, 30])));
    let mut out = Vec::new();
    image.write_to(&mut std::io::Cursor::new(&mut out), image::ImageFormat::Png).expect("encode");
    out
}

fn push_png_chunk(png: &mut Vec<u8>, kind: &[u8; 4], data: &[u8]) {
    let mut body = kind.to_vec();
    body.extend_from_slice(data);
    png.extend_from_slice(&(data.len() as u32).to_be_bytes());
    png.extend_from_slice(&body);
    png.extend_from_slice(&crc32fast::hash(&body).to_be_bytes());
}

/// A well-formed PNG whose header claims 100000 x 100000 RGB pixels (30 GB decoded) while
/// its data chunk holds a few bytes.
fn png_claiming_huge_size() -> Vec<u8> {
    let mut ihdr = Vec::new();
    ihdr.extend_from_slice(&100_000u32.to_be_bytes());
    ihdr.extend_from_slice(&100_000u32.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    push_png_chunk(&mut png, b"IHDR", &ihdr);
    // A zlib stream holding one empty stored block.
    push_png_chunk(&mut png, b"IDAT", &[0x78, 0x01, 0x01, 0x00, 0x00, 0xFF, 0xFF, 0x00, 0x00, 0x00, 0x01]);
    push_png_chunk(&mut png, b"IEND", &[]);
    png
}

fn zip_with(entries: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut out = std::io::Cursor::new(Vec::new());
    {
        let mut writer = zip::ZipWriter::new(&mut out);
        for (name, bytes) in entries {
            writer.start_file(*name, zip::write::SimpleFileOptions::default()).expect("zip entry");
            writer.write_all(bytes).expect("zip write");
        }
        writer.finish().expect("zip finish");
    }
    out.into_inner()
}

fn count_files(dir: &Path) -> usize {
    if !dir.exists() {
        return 0;
    }
    let mut count = 0;
    for entry in std::fs::read_dir(dir).expect("read dir") {
        let entry = entry.expect("entry");
        if entry.file_type().expect("type").is_dir() {
            count += count_files(&entry.path());
        } else {
            count += 1;
        }
    }
    count
}

fn bad_files_are_reported(backend: TestBackend) {
    let database = TestDatabase::new(backend);
    let settings = database.settings();
    let db = database.open();
    let project = {
        let mut conn = db.conn().expect("connection");
        let (guideline, _) = quorum::store::guidelines::store_guideline(&mut conn, quorum::demo::DR_GUIDELINE).expect("guideline");
        let spec = ProjectSpec {
            slug: "import-test",
            name: "Import test",
            guideline_id: guideline.id,
            overlap: 3,
            policy: quorum::domain::roles::ResolutionPolicy::MajorityVote,
            policy_params: serde_json::json!({}),
        };
        create_project(&mut conn, &spec).expect("project")
    };

    let source = tempfile::tempdir().expect("source folder");
    let jpeg = seed_jpeg();
    std::fs::write(source.path().join("good.jpg"), &jpeg).expect("write");
    std::fs::write(source.path().join("good.png"), small_png(10)).expect("write");
    std::fs::write(source.path().join("truncated.jpg"), &jpeg[..jpeg.len() / 3]).expect("write");
    std::fs::write(source.path().join("huge.png"), png_claiming_huge_size()).expect("write");
    std::fs::write(source.path().join("notes.jpg"), b"These are notes, not a photograph.\n").expect("write");
    std::fs::write(
        source.path().join("bundle.zip"),
        zip_with(&[("../evil.jpg", small_png(200)), ("inside/good.png", small_png(90))]),
    )
    .expect("write");

    let report = import_images(&db, &settings, &project, source.path(), None, ImageLimits::default(), None).expect("import");

    let mut imported: Vec<&str> = report.imported.iter().map(|(name, _)| name.as_str()).collect();
    imported.sort_unstable();
    assert_eq!(imported, ["bundle.zip/inside/good.png", "good.jpg", "good.png"]);

    let reason_of = |name: &str| {
        report
            .failed
            .iter()
            .find(|(failed, _)| failed == name)
            .map(|(_, reason)| reason.clone())
            .unwrap_or_else(|| panic!("{name} is not reported as failed: {:?}", report.failed))
    };
    assert!(reason_of("truncated.jpg").contains("could not be decoded"), "{}", reason_of("truncated.jpg"));
    assert!(reason_of("huge.png").contains("100000x100000"), "{}", reason_of("huge.png"));
    assert!(reason_of("notes.jpg").contains("not a supported image"), "{}", reason_of("notes.jpg"));
    assert!(reason_of("bundle.zip/../evil.jpg").contains("unsafe path"), "{}", reason_of("bundle.zip/../evil.jpg"));
    assert_eq!(report.failed.len(), 4, "{:?}", report.failed);

    let mut conn = db.conn().expect("connection");
    assert_eq!(quorum::store::items::count_in_project(&mut conn, project.id).expect("count"), 3);
    // One original, one display copy and one thumbnail per imported image, nothing else.
    assert_eq!(count_files(&settings.images_dir()), 3);
    assert_eq!(count_files(&settings.derived_dir()), 6);
    assert!(!settings.data_dir().parent().expect("parent").join("evil.jpg").exists());
}

#[test]
fn sqlite_bad_files_are_reported() {
    bad_files_are_reported(TestBackend::Sqlite);
}

#[test]
#[cfg_attr(not(quorum_postgres_tests), ignore = "needs PostgreSQL: set QUORUM_TEST_POSTGRES_URL=postgres://postgres@127.0.0.1:5432/test")]
fn postgres_bad_files_are_reported() {
    bad_files_are_reported(TestBackend::Postgres);
}

#[test]
fn huge_header_is_rejected_before_decoding() {
    let error = quorum::imaging::process(&png_claiming_huge_size(), ImageLimits::default()).err();
    assert!(matches!(error, Some(quorum::imaging::ImageError::TooManyPixels { width: 100_000, height: 100_000, .. })));
}

#[test]
fn exif_orientation_is_applied() {
    // A 40x20 JPEG tagged with EXIF orientation 6 (rotate 90 degrees clockwise) is 20x40 upright.
    let image = image::DynamicImage::ImageRgb8(image::RgbImage::from_pixel(40, 20, image::Rgb([120, 60, 30])));
    let mut jpeg = Vec::new();
    image.write_to(&mut std::io::Cursor::new(&mut jpeg), image::ImageFormat::Jpeg).expect("encode");
    let exif: &[u8] = &[
        b'E', b'x', b'i', b'f', 0, 0, // Exif header
        b'M', b'M', 0, 42, 0, 0, 0, 8, // TIFF header, big endian, IFD at 8
        0, 1, // one entry
        0x01, 0x12, 0, 3, 0, 0, 0, 1, 0, 6, 0, 0, // Orientation = 6
        0, 0, 0, 0, // no next IFD
    ];
    let mut tagged = jpeg[..2].to_vec();
    tagged.extend_from_slice(&[0xFF, 0xE1]);
    tagged.extend_from_slice(&((exif.len() + 2) as u16).to_be_bytes());
    tagged.extend_from_slice(exif);
    tagged.extend_from_slice(&jpeg[2..]);
    let processed = quorum::imaging::process(&tagged, ImageLimits::default()).expect("valid image");
    assert_eq!((processed.width, processed.height), (20, 40));
}
