//! Learning curves of a simulation: `curves.csv` and `curves.svg`.
//!
//! The figure has two panels that share the x axis (number of labeled images): balanced
//! accuracy, and the ROC AUC for two-class fields or the quadratic weighted kappa otherwise.
//! One line per strategy. It is drawn from plotters' SVG primitives with text as `<text>`
//! elements, like the figures in [`crate::charts`], so no font files are needed.

use std::path::Path;

use anyhow::Context;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::ml::{Evaluation, Strategy};

/// Test-set metrics of one strategy after one round.
#[derive(Debug, Clone, PartialEq)]
pub struct RoundResult {
    pub strategy: Strategy,
    pub round: usize,
    /// Labeled images the model of this round was trained on.
    pub labels: usize,
    pub accuracy: f64,
    pub balanced_accuracy: f64,
    pub quadratic_kappa: Option<f64>,
    /// ROC AUC of P(class ≥ 1); `None` unless the field has two classes and the test set has both.
    pub auc: Option<f64>,
    pub ece: f64,
}

impl RoundResult {
    pub fn new(strategy: Strategy, round: usize, labels: usize, evaluation: &Evaluation) -> Self {
        let auc = if evaluation.classes.len() == 2 { evaluation.cutoffs.first().and_then(|curve| curve.auc) } else { None };
        Self {
            strategy,
            round,
            labels,
            accuracy: evaluation.accuracy,
            balanced_accuracy: evaluation.balanced_accuracy,
            quadratic_kappa: evaluation.quadratic_kappa,
            auc,
            ece: evaluation.ece,
        }
    }
}

fn optional(value: Option<f64>) -> String {
    value.map_or_else(String::new, |value| format!("{value:.4}"))
}

/// Writes one row per strategy and round; undefined values are empty cells. The `auc`
/// column is present only for two-class fields.
pub fn write_curves_csv(path: &Path, results: &[RoundResult], binary: bool) -> anyhow::Result<()> {
    let mut writer = csv::Writer::from_path(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut header = vec!["strategy", "round", "labels", "accuracy", "balanced_accuracy", "quadratic_kappa"];
    if binary {
        header.push("auc");
    }
    header.push("ece");
    writer.write_record(&header)?;
    for result in results {
        let mut row = vec![
            result.strategy.to_string(),
            result.round.to_string(),
            result.labels.to_string(),
            format!("{:.4}", result.accuracy),
            format!("{:.4}", result.balanced_accuracy),
            optional(result.quadratic_kappa),
        ];
        if binary {
            row.push(optional(result.auc));
        }
        row.push(format!("{:.4}", result.ece));
        writer.write_record(&row)?;
    }
    writer.flush().with_context(|| format!("cannot write {}", path.display()))
}

const PANEL_WIDTH: i32 = 420;
const PANEL_HEIGHT: i32 = 280;
const MARGIN_LEFT: i32 = 56;
const MARGIN_TOP: i32 = 64;
const MARGIN_BOTTOM: i32 = 56;
const GAP: i32 = 72;
const FONT_SIZE: f64 = 15.0;
const DARK_TEXT: RGBColor = RGBColor(27, 31, 36);
const GRID: RGBColor = RGBColor(213, 217, 223);
/// Line colours per strategy, in [`Strategy::ALL`] order (colour-blind-safe Okabe-Ito hues).
const COLOURS: [RGBColor; 5] = [
    RGBColor(0, 114, 178),
    RGBColor(230, 159, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(86, 86, 86),
];

fn colour(strategy: Strategy) -> RGBColor {
    let index = Strategy::ALL.iter().position(|&s| s == strategy).unwrap_or(0);
    COLOURS[index]
}

fn font(anchor: Pos) -> TextStyle<'static> {
    ("sans-serif", FONT_SIZE).into_font().color(&DARK_TEXT).pos(anchor)
}

/// One plotting area with linear axes.
struct Panel {
    left: i32,
    top: i32,
    x_range: (f64, f64),
    y_range: (f64, f64),
}

impl Panel {
    fn point(&self, x: f64, y: f64) -> (i32, i32) {
        let fx = (x - self.x_range.0) / (self.x_range.1 - self.x_range.0).max(f64::EPSILON);
        let fy = (y - self.y_range.0) / (self.y_range.1 - self.y_range.0).max(f64::EPSILON);
        (self.left + (fx * f64::from(PANEL_WIDTH)).round() as i32, self.top + PANEL_HEIGHT - (fy * f64::from(PANEL_HEIGHT)).round() as i32)
    }
}

/// Writes the two-panel learning-curve figure.
pub fn write_curves_svg(path: &Path, title: &str, results: &[RoundResult], binary: bool) -> anyhow::Result<()> {
    let svg = draw_curves(title, results, binary).map_err(|error| anyhow::anyhow!("drawing the learning curves failed: {error}"))?;
    std::fs::write(path, svg).with_context(|| format!("cannot write {}", path.display()))
}

type Metric = (&'static str, fn(&RoundResult) -> Option<f64>);

fn draw_curves(title: &str, results: &[RoundResult], binary: bool) -> Result<String, Box<dyn std::error::Error>> {
    let second: Metric = if binary { ("ROC AUC", |r| r.auc) } else { ("quadratic weighted kappa", |r| r.quadratic_kappa) };
    let metrics: [Metric; 2] = [("balanced accuracy", |r| Some(r.balanced_accuracy)), second];

    let x_min = results.iter().map(|r| r.labels).min().unwrap_or(0) as f64;
    let x_max = results.iter().map(|r| r.labels).max().unwrap_or(1) as f64;
    let mut strategies: Vec<Strategy> = Vec::new();
    results.iter().for_each(|r| {
        if !strategies.contains(&r.strategy) {
            strategies.push(r.strategy);
        }
    });

    let width = MARGIN_LEFT + 2 * PANEL_WIDTH + GAP + 24;
    let height = MARGIN_TOP + PANEL_HEIGHT + MARGIN_BOTTOM;
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (width as u32, height as u32)).into_drawing_area();
        root.fill(&WHITE)?;
        root.draw(&Text::new(title.to_string(), (MARGIN_LEFT, 8), font(Pos::new(HPos::Left, VPos::Top))))?;

        // Legend along the top.
        let mut legend_x = MARGIN_LEFT;
        for &strategy in &strategies {
            let y = 38;
            root.draw(&PathElement::new(vec![(legend_x, y), (legend_x + 24, y)], colour(strategy).stroke_width(3)))?;
            let name = strategy.to_string();
            root.draw(&Text::new(name.clone(), (legend_x + 30, y), font(Pos::new(HPos::Left, VPos::Center))))?;
            legend_x += 30 + 9 * name.len() as i32 + 24;
        }

        for (panel_index, (name, value)) in metrics.iter().enumerate() {
            let values: Vec<f64> = results.iter().filter_map(value).collect();
            let y_min = values.iter().copied().fold(0.0, f64::min).floor();
            let panel = Panel {
                left: MARGIN_LEFT + panel_index as i32 * (PANEL_WIDTH + GAP),
                top: MARGIN_TOP,
                x_range: (x_min, x_max),
                y_range: (y_min, 1.0),
            };
            draw_axes(&root, &panel, name)?;
            for &strategy in &strategies {
                let points: Vec<(i32, i32)> = results
                    .iter()
                    .filter(|r| r.strategy == strategy)
                    .filter_map(|r| value(r).map(|v| panel.point(r.labels as f64, v)))
                    .collect();
                root.draw(&PathElement::new(points.clone(), colour(strategy).stroke_width(2)))?;
                for point in points {
                    root.draw(&Circle::new(point, 3, colour(strategy).filled()))?;
                }
            }
        }
        root.present()?;
    }
    Ok(svg)
}

fn draw_axes(root: &DrawingArea<SVGBackend<'_>, plotters::coord::Shift>, panel: &Panel, name: &str) -> Result<(), Box<dyn std::error::Error>> {
    let (x_min, x_max) = panel.x_range;
    let (y_min, y_max) = panel.y_range;
    let ticks = 5;
    for step in 0..=ticks {
        let y = y_min + (y_max - y_min) * f64::from(step) / f64::from(ticks);
        let (left, pixel_y) = panel.point(x_min, y);
        let (right, _) = panel.point(x_max, y);
        root.draw(&PathElement::new(vec![(left, pixel_y), (right, pixel_y)], GRID.stroke_width(1)))?;
        root.draw(&Text::new(format!("{y:.1}"), (left - 6, pixel_y), font(Pos::new(HPos::Right, VPos::Center))))?;
    }
    let x_steps = ((x_max - x_min).round() as i32).clamp(1, 8);
    for step in 0..=x_steps {
        let x = x_min + (x_max - x_min) * f64::from(step) / f64::from(x_steps);
        let (pixel_x, bottom) = panel.point(x, y_min);
        root.draw(&PathElement::new(vec![(pixel_x, bottom), (pixel_x, bottom + 4)], DARK_TEXT.stroke_width(1)))?;
        root.draw(&Text::new(format!("{x:.0}"), (pixel_x, bottom + 8), font(Pos::new(HPos::Center, VPos::Top))))?;
    }
    let (left, bottom) = panel.point(x_min, y_min);
    let (right, top) = panel.point(x_max, y_max);
    root.draw(&PathElement::new(vec![(left, top), (left, bottom), (right, bottom)], DARK_TEXT.stroke_width(1)))?;
    root.draw(&Text::new(name.to_string(), (left, top - 8), font(Pos::new(HPos::Left, VPos::Bottom))))?;
    root.draw(&Text::new(
        "labeled images".to_string(),
        ((left + right) / 2, bottom + 30),
        font(Pos::new(HPos::Center, VPos::Top)),
    ))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn result(strategy: Strategy, round: usize, labels: usize, auc: Option<f64>) -> RoundResult {
        RoundResult { strategy, round, labels, accuracy: 0.5, balanced_accuracy: 0.6, quadratic_kappa: Some(0.2), auc, ece: 0.1 }
    }

    #[test]
    fn csv_has_auc_only_for_binary() {
        let folder = tempfile::tempdir().unwrap();
        let path = folder.path().join("curves.csv");
        let results = [result(Strategy::Entropy, 0, 10, Some(0.75)), result(Strategy::Random, 0, 10, None)];
        write_curves_csv(&path, &results, true).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines[0], "strategy,round,labels,accuracy,balanced_accuracy,quadratic_kappa,auc,ece");
        assert_eq!(lines[1], "entropy,0,10,0.5000,0.6000,0.2000,0.7500,0.1000");
        assert_eq!(lines[2], "random,0,10,0.5000,0.6000,0.2000,,0.1000");
        write_curves_csv(&path, &results, false).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(!text.lines().next().unwrap().contains("auc"));
    }

    #[test]
    fn svg_has_one_line_per_strategy() {
        let results = [
            result(Strategy::Entropy, 0, 10, Some(0.6)),
            result(Strategy::Entropy, 1, 15, Some(0.7)),
            result(Strategy::Bald, 0, 10, Some(0.6)),
            result(Strategy::Bald, 1, 15, Some(0.65)),
        ];
        let svg = draw_curves("soft_exudates", &results, true).unwrap();
        assert!(svg.starts_with("<svg"));
        assert!(svg.contains("ROC AUC"));
        assert!(svg.contains("entropy"));
        assert!(svg.contains("bald"));
        // Two panels × two strategies = four polylines of data, plus grid and axes.
        assert!(svg.matches("<polyline").count() >= 4);
    }
}
