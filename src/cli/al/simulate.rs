//! `quorum al simulate`: replays active learning on images whose labels are all known.
//!
//! 1. A test set is held out by group (seeded, stratified as far as groups allow, see
//!    [`crate::domain::active_learning::split`]); the rest is the pool.
//! 2. A seed set of `--initial` images is drawn from the pool at random, with at least one
//!    image of each class found in the pool when `--initial` allows.
//! 3. For each strategy, starting from the same seed set: train a model on the labeled images,
//!    score the rest of the pool, and record the test-set metrics against the number of labels.
//!    Then move the `--batch` pool images of highest priority into the labeled set and retrain,
//!    for `--rounds` rounds. Round r of every strategy trains with the same model seed, so the strategies
//!    differ only in which images they chose.
//!
//! Metrics per round: accuracy, balanced accuracy, quadratic weighted kappa, the ROC AUC of
//! P(class ≥ 1) for two-class fields, and the expected calibration error.

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{bail, Context};
use indicatif::{ProgressBar, ProgressStyle};
use rand::seq::{IndexedRandom, SliceRandom};
use rand::SeedableRng;

use super::curves::{write_curves_csv, write_curves_svg, RoundResult};
use super::SimulateArgs;
use crate::domain::active_learning::split_by_group;
use crate::ml::{self, LabeledImage, RunConfig, Strategy, UnlabeledImage};

/// The labeled images of a study and the field's classes.
#[derive(Debug, Clone)]
pub struct Study {
    pub classes: Vec<String>,
    pub images: Vec<LabeledImage>,
}

/// Settings of a simulation, apart from the images.
#[derive(Debug, Clone)]
pub struct SimulationSettings {
    pub strategies: Vec<Strategy>,
    pub seed: u64,
    pub initial: usize,
    pub batch: usize,
    pub rounds: usize,
    pub test_fraction: f64,
    pub resolution: u32,
    pub epochs: usize,
    pub models_dir: Option<PathBuf>,
    pub cache_dir: PathBuf,
}

pub fn run(args: &SimulateArgs) -> anyhow::Result<()> {
    let started = Instant::now();
    let study = read_study(args)?;
    std::fs::create_dir_all(&args.out).with_context(|| format!("cannot create the output folder {}", args.out.display()))?;
    let cache_dir = args.out.join("embedding-cache");
    let settings = SimulationSettings {
        strategies: args.strategies.clone(),
        seed: args.seed,
        initial: args.initial,
        batch: args.batch,
        rounds: args.rounds,
        test_fraction: args.test_fraction,
        resolution: args.resolution,
        epochs: args.epochs,
        models_dir: args.models.clone(),
        cache_dir: cache_dir.clone(),
    };

    let steps = (settings.strategies.len() * (settings.rounds + 1)) as u64;
    let bar = ProgressBar::new(steps).with_style(
        ProgressStyle::with_template("{elapsed_precise} [{bar:30}] {pos}/{len} trainings  {msg}")
            .expect("the progress template is valid")
            .progress_chars("=> "),
    );
    let results = simulate(&study, &settings, &mut |message: &str, finished: bool| {
        bar.set_message(message.to_string());
        if finished {
            bar.inc(1);
        }
    });
    bar.finish_and_clear();
    // The cache contains one folder per trained model, none of which is used again.
    let _ = std::fs::remove_dir_all(&cache_dir);
    let results = results?;

    let binary = study.classes.len() == 2;
    let csv_path = args.out.join("curves.csv");
    write_curves_csv(&csv_path, &results, binary)?;
    let svg_path = args.out.join("curves.svg");
    let title = format!("{} ({} images, seed {})", args.field, study.images.len(), args.seed);
    write_curves_svg(&svg_path, &title, &results, binary)?;
    println!(
        "wrote {} and {} in {:.1} s",
        csv_path.display(),
        svg_path.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Reads the labels file, resolving image paths and classes, with an error naming the row and
/// the fix for every problem.
pub fn read_study(args: &SimulateArgs) -> anyhow::Result<Study> {
    let bytes = std::fs::read(&args.labels).with_context(|| format!("cannot read labels file {}", args.labels.display()))?;
    let text = crate::csvio::decode_utf8(&bytes).with_context(|| format!("labels file {}", args.labels.display()))?;
    let mut reader = csv::ReaderBuilder::new()
        .delimiter(crate::csvio::detect_delimiter(text))
        .from_reader(text.as_bytes());
    let headers = reader.headers().context("cannot read the header row of the labels file")?.clone();
    let column = |name: &str, flag: &str| -> anyhow::Result<usize> {
        headers.iter().position(|header| header == name).with_context(|| {
            let found: Vec<&str> = headers.iter().collect();
            format!("the labels file has no column {name:?} (columns: {}); choose one with {flag}", found.join(", "))
        })
    };
    let image_column = column(&args.image_column, "--image-column")?;
    let field_column = column(&args.field, "--field")?;
    let group_column = args.group_column.as_deref().map(|name| column(name, "--group-column")).transpose()?;

    let mut rows = Vec::new();
    for (index, record) in reader.records().enumerate() {
        let line = index + 2;
        let record = record.with_context(|| format!("labels file line {line} is not valid CSV"))?;
        let file_name = record.get(image_column).unwrap_or("").trim();
        let label = record.get(field_column).unwrap_or("").trim();
        if file_name.is_empty() {
            bail!("labels file line {line}: the {:?} column is empty; every row needs an image file name", args.image_column);
        }
        if label.is_empty() {
            bail!("labels file line {line}: no {:?} label for {file_name}; a simulation needs every image labeled", args.field);
        }
        let path = args.images.join(file_name);
        if !path.is_file() {
            bail!("labels file line {line}: image {} not found; check --images and the {:?} column", path.display(), args.image_column);
        }
        let group = group_column.and_then(|column| record.get(column)).map(str::trim).filter(|g| !g.is_empty());
        rows.push((path, label.to_string(), group.map(str::to_string)));
    }

    let classes = match &args.classes {
        Some(classes) => classes.iter().map(|class| class.trim().to_string()).collect(),
        None => sorted_values(rows.iter().map(|(_, label, _)| label.as_str())),
    };
    if classes.len() < 2 {
        bail!("the field {:?} has {} distinct value(s): {:?}; a classifier needs at least two", args.field, classes.len(), classes);
    }
    let mut images = Vec::with_capacity(rows.len());
    for (index, (path, label, group)) in rows.into_iter().enumerate() {
        let class = classes.iter().position(|class| *class == label).with_context(|| {
            format!(
                "labels file line {}: label {label:?} is not one of the field's values {classes:?}; fix the label or pass --classes",
                index + 2
            )
        })?;
        images.push(LabeledImage { item_id: index as i64, path, class, group });
    }
    Ok(Study { classes, images })
}

/// Distinct values in ascending order: numerically when every value is a number, otherwise
/// as text.
fn sorted_values<'a>(values: impl Iterator<Item = &'a str>) -> Vec<String> {
    let distinct: BTreeSet<&str> = values.collect();
    let mut sorted: Vec<String> = distinct.into_iter().map(str::to_string).collect();
    let numbers: Option<Vec<f64>> = sorted.iter().map(|value| value.parse::<f64>().ok()).collect();
    if let Some(numbers) = numbers {
        let mut paired: Vec<(f64, String)> = numbers.into_iter().zip(sorted).collect();
        paired.sort_by(|a, b| a.0.total_cmp(&b.0));
        sorted = paired.into_iter().map(|(_, value)| value).collect();
    }
    sorted
}

/// Runs every strategy over every round. `on_step(message, finished)` is called before each
/// training (finished false) and after it (finished true).
pub fn simulate(
    study: &Study,
    settings: &SimulationSettings,
    on_step: &mut dyn FnMut(&str, bool),
) -> anyhow::Result<Vec<RoundResult>> {
    if settings.strategies.is_empty() {
        bail!("no strategy given; pass --strategies, for example entropy,bald,random");
    }
    if settings.initial == 0 {
        bail!("--initial must be at least 1");
    }
    let items: Vec<(Option<&str>, usize)> = study.images.iter().map(|image| (image.group.as_deref(), image.class)).collect();
    let split = split_by_group(&items, settings.test_fraction, settings.seed).context("cannot hold out a test set")?;
    let test: Vec<LabeledImage> = split.heldout.iter().map(|&index| study.images[index].clone()).collect();
    let pool = split.train;
    if pool.len() <= settings.initial {
        bail!(
            "{} images: {} are held out for testing, leaving {} for a seed set of {} plus images to choose from; lower --initial or --test-fraction, or add images",
            study.images.len(),
            test.len(),
            pool.len(),
            settings.initial
        );
    }
    let seed_set = choose_seed_set(&study.images, &pool, settings.initial, settings.seed);

    let mut results = Vec::new();
    for &strategy in &settings.strategies {
        let mut labeled: Vec<usize> = seed_set.clone();
        let mut remaining: Vec<usize> = pool.iter().copied().filter(|index| !seed_set.contains(index)).collect();
        for round in 0..=settings.rounds {
            on_step(&format!("{strategy} round {round}: training on {} images", labeled.len()), false);
            let config = RunConfig {
                classes: study.classes.clone(),
                strategy,
                resolution: settings.resolution,
                epochs: settings.epochs,
                diversity_batch: settings.batch,
                seed: settings.seed.wrapping_add(round as u64),
                models_dir: settings.models_dir.clone(),
                cache_dir: settings.cache_dir.clone(),
                ..RunConfig::default()
            };
            let train: Vec<LabeledImage> = labeled.iter().map(|&index| study.images[index].clone()).collect();
            let unlabeled: Vec<UnlabeledImage> = remaining
                .iter()
                .map(|&index| UnlabeledImage { item_id: study.images[index].item_id, path: study.images[index].path.clone() })
                .collect();
            let output = ml::run_with_split(&config, &train, &test, &unlabeled, &mut |_| {})
                .with_context(|| format!("{strategy} round {round}"))?;
            results.push(RoundResult::new(strategy, round, labeled.len(), &output.evaluation));
            on_step(&format!("{strategy} round {round}: accuracy {:.2}", output.evaluation.accuracy), true);

            if round < settings.rounds {
                let chosen = top_priorities(&output.scores, settings.batch);
                labeled.extend(remaining.iter().copied().filter(|&index| chosen.contains(&study.images[index].item_id)));
                remaining.retain(|&index| !chosen.contains(&study.images[index].item_id));
            }
        }
    }
    Ok(results)
}

/// Item ids of the `count` scores of highest priority.
fn top_priorities(scores: &[ml::ItemScore], count: usize) -> Vec<i64> {
    let mut ranked: Vec<&ml::ItemScore> = scores.iter().collect();
    ranked.sort_by(|a, b| b.priority.total_cmp(&a.priority));
    ranked.into_iter().take(count).map(|score| score.item_id).collect()
}

/// `initial` pool indices at random, starting with one image of each class in the pool (in
/// class order) while `initial` allows.
fn choose_seed_set(images: &[LabeledImage], pool: &[usize], initial: usize, seed: u64) -> Vec<usize> {
    let mut rng = rand_chacha::ChaCha8Rng::seed_from_u64(seed);
    let mut chosen = Vec::with_capacity(initial);
    let classes: BTreeSet<usize> = pool.iter().map(|&index| images[index].class).collect();
    for class in classes {
        if chosen.len() == initial {
            break;
        }
        let members: Vec<usize> = pool.iter().copied().filter(|&index| images[index].class == class).collect();
        chosen.push(*members.choose(&mut rng).expect("the class occurs in the pool"));
    }
    let mut rest: Vec<usize> = pool.iter().copied().filter(|index| !chosen.contains(index)).collect();
    rest.shuffle(&mut rng);
    chosen.extend(rest.into_iter().take(initial - chosen.len()));
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    /// Writes `count` 16 × 16 PNGs, dark for even and bright for odd indices, and a labels file
    /// with columns image, lesion (0 dark, 1 bright) and patient (two images each).
    fn study_folder(count: usize) -> tempfile::TempDir {
        let folder = tempfile::tempdir().unwrap();
        let mut csv = String::from("image,lesion,patient\n");
        for index in 0..count {
            let level = if index % 2 == 0 { 30 } else { 220 };
            let image = image::RgbImage::from_fn(16, 16, |x, y| image::Rgb([level, (x * 7 + y * 3 + index as u32) as u8, level]));
            image.save(folder.path().join(format!("{index}.png"))).unwrap();
            csv.push_str(&format!("{index}.png,{},p{}\n", index % 2, index / 2));
        }
        std::fs::write(folder.path().join("labels.csv"), csv).unwrap();
        folder
    }

    fn args(folder: &Path) -> SimulateArgs {
        SimulateArgs {
            images: folder.to_path_buf(),
            labels: folder.join("labels.csv"),
            field: "lesion".to_string(),
            classes: None,
            strategies: vec![Strategy::Entropy, Strategy::Random],
            seed: 2,
            out: folder.join("out"),
            image_column: "image".to_string(),
            group_column: Some("patient".to_string()),
            initial: 4,
            batch: 2,
            rounds: 2,
            test_fraction: 0.25,
            resolution: 16,
            epochs: 1,
            models: None,
        }
    }

    #[test]
    fn simulate_writes_curves() {
        let folder = study_folder(20);
        run(&args(folder.path())).unwrap();
        let csv = std::fs::read_to_string(folder.path().join("out/curves.csv")).unwrap();
        let rows: Vec<&str> = csv.lines().skip(1).collect();
        // Two strategies × three models (rounds 0, 1, 2) trained on 4, 6 and 8 images.
        assert_eq!(rows.len(), 6);
        assert!(rows[0].starts_with("entropy,0,4,"), "{}", rows[0]);
        assert!(rows[2].starts_with("entropy,2,8,"), "{}", rows[2]);
        assert!(rows[5].starts_with("random,2,8,"), "{}", rows[5]);
        assert!(folder.path().join("out/curves.svg").is_file());
        assert!(!folder.path().join("out/embedding-cache").exists());
    }

    #[test]
    fn study_errors_name_the_fix() {
        let folder = study_folder(6);
        let mut missing_column = args(folder.path());
        missing_column.field = "grade".to_string();
        let message = read_study(&missing_column).unwrap_err().to_string();
        assert!(message.contains("no column \"grade\""), "{message}");
        assert!(message.contains("--field"), "{message}");

        let mut wrong_classes = args(folder.path());
        wrong_classes.classes = Some(vec!["0".to_string(), "2".to_string()]);
        let message = read_study(&wrong_classes).unwrap_err().to_string();
        assert!(message.contains("label \"1\" is not one of the field's values"), "{message}");

        std::fs::remove_file(folder.path().join("3.png")).unwrap();
        let message = read_study(&args(folder.path())).unwrap_err().to_string();
        assert!(message.contains("line 5"), "{message}");
        assert!(message.contains("3.png not found"), "{message}");
    }

    #[test]
    fn too_few_images_rejected() {
        // 8 images in 4 patients: 1 patient (2 images) is held out, 6 remain for a seed set of 6.
        let folder = study_folder(8);
        let mut settings = args(folder.path());
        settings.initial = 6;
        let message = run(&settings).unwrap_err().to_string();
        assert!(message.contains("lower --initial"), "{message}");
    }

    #[test]
    fn numeric_values_sort_as_numbers() {
        assert_eq!(sorted_values(["10", "2", "1"].into_iter()), vec!["1", "2", "10"]);
        assert_eq!(sorted_values(["b", "a", "b"].into_iter()), vec!["a", "b"]);
    }

    #[test]
    fn seed_set_covers_classes() {
        let images: Vec<LabeledImage> = (0..20)
            .map(|index| LabeledImage { item_id: index, path: PathBuf::new(), class: usize::from(index == 7), group: None })
            .collect();
        let pool: Vec<usize> = (0..20).collect();
        for seed in 0..20 {
            let chosen = choose_seed_set(&images, &pool, 3, seed);
            assert_eq!(chosen.len(), 3);
            assert!(chosen.contains(&7), "seed {seed}: the only class-1 image is missing");
            let distinct: BTreeSet<usize> = chosen.iter().copied().collect();
            assert_eq!(distinct.len(), 3);
        }
    }
}
