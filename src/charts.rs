//! SVG figures for the agreement and active-learning pages, drawn with plotters' SVG backend.
//!
//! Each function returns one `<svg>` element as text, ready to embed in HTML. Labels are
//! written as `<text>` elements, so no font files are needed; the browser picks the font.
//! plotters-svg 0.3.7 escapes `<`, `>`, `&`, `"` and `'` in text and attribute values, so
//! pseudonyms and category labels cannot inject markup (a unit test below checks this).
//! Text widths for the margins are estimated from the character count.

pub mod curves;

use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

/// Side of one matrix cell, in pixels.
const CELL: i32 = 56;
/// Font size passed to plotters; the SVG font size is this divided by 1.24.
const FONT_SIZE: f64 = 17.0;
/// Estimated width of one label character at [`FONT_SIZE`], in pixels.
const CHAR_WIDTH: i32 = 8;
/// Space around the drawing and between labels and cells, in pixels.
const PAD: i32 = 10;
/// Height of an axis title line, in pixels.
const TITLE_HEIGHT: i32 = 24;

const DARK_TEXT: RGBColor = RGBColor(27, 31, 36);
const UNDEFINED_FILL: RGBColor = RGBColor(222, 225, 230);
const HIGH: RGBColor = RGBColor(31, 95, 174);
const LOW: RGBColor = RGBColor(179, 38, 30);
const GRID: RGBColor = RGBColor(213, 217, 223);

/// Failure to draw a figure.
#[derive(Debug, thiserror::Error)]
#[error("drawing the SVG figure failed: {0}")]
pub struct ChartError(String);

fn chart_error(error: impl std::fmt::Display) -> ChartError {
    ChartError(error.to_string())
}

/// Mixes white with `color`; `strength` 0 is white and 1 is `color`.
fn tint(color: RGBColor, strength: f64) -> RGBColor {
    let strength = strength.clamp(0.0, 1.0);
    let mix = |channel: u8| (255.0 - (255.0 - f64::from(channel)) * strength).round() as u8;
    RGBColor(mix(color.0), mix(color.1), mix(color.2))
}

/// Fill of a kappa cell: white at 0, blue towards 1, red towards −1, grey when undefined.
fn kappa_fill(kappa: Option<f64>) -> (RGBColor, f64) {
    match kappa {
        None => (UNDEFINED_FILL, 0.0),
        Some(value) if value >= 0.0 => (tint(HIGH, value), value.min(1.0)),
        Some(value) => (tint(LOW, -value), (-value).min(1.0)),
    }
}

/// Text colour readable on a cell of the given strength.
fn text_on(strength: f64) -> RGBColor {
    if strength > 0.55 {
        WHITE
    } else {
        DARK_TEXT
    }
}

fn label_width(labels: &[String]) -> i32 {
    let longest = labels.iter().map(|label| label.chars().count()).max().unwrap_or(0);
    i32::try_from(longest)
        .unwrap_or(i32::MAX / 2)
        .saturating_mul(CHAR_WIDTH)
}

fn font(color: RGBColor, anchor: Pos) -> TextStyle<'static> {
    ("sans-serif", FONT_SIZE).into_font().color(&color).pos(anchor)
}

/// One square matrix figure: `row_labels` down the left, `column_labels` along the top
/// (rotated), and one filled, labelled cell per entry.
struct MatrixFigure<'a> {
    row_title: &'a str,
    column_title: &'a str,
    row_labels: &'a [String],
    column_labels: &'a [String],
    /// Fill, text colour and printed text of each cell, row by row.
    cells: Vec<Vec<(RGBColor, RGBColor, String)>>,
    /// Outline the diagonal (the cells where both sides agree).
    outline_diagonal: bool,
}

impl MatrixFigure<'_> {
    fn draw(&self) -> Result<String, ChartError> {
        let left = PAD + TITLE_HEIGHT + label_width(self.row_labels) + PAD;
        let top = PAD + TITLE_HEIGHT + label_width(self.column_labels) + PAD;
        let n_rows = i32::try_from(self.row_labels.len()).map_err(chart_error)?;
        let n_columns = i32::try_from(self.column_labels.len()).map_err(chart_error)?;
        let width = left + n_columns * CELL + PAD;
        let height = top + n_rows * CELL + PAD;

        let mut svg = String::new();
        {
            let size = (
                u32::try_from(width).map_err(chart_error)?,
                u32::try_from(height).map_err(chart_error)?,
            );
            let root = SVGBackend::with_string(&mut svg, size).into_drawing_area();
            root.fill(&WHITE).map_err(chart_error)?;

            let centered = Pos::new(HPos::Center, VPos::Center);
            let column_middle = left + n_columns * CELL / 2;
            let row_middle = top + n_rows * CELL / 2;
            root.draw(&Text::new(
                self.column_title,
                (column_middle, PAD),
                font(DARK_TEXT, Pos::new(HPos::Center, VPos::Top)),
            ))
            .map_err(chart_error)?;
            root.draw(&Text::new(
                self.row_title,
                (PAD + TITLE_HEIGHT / 2, row_middle),
                font(DARK_TEXT, centered).transform(FontTransform::Rotate270),
            ))
            .map_err(chart_error)?;

            for (column, label) in (0..).zip(self.column_labels) {
                let x = left + column * CELL + CELL / 2;
                let style = font(DARK_TEXT, Pos::new(HPos::Left, VPos::Center)).transform(FontTransform::Rotate270);
                root.draw(&Text::new(label.as_str(), (x, top - PAD / 2), style))
                    .map_err(chart_error)?;
            }
            for (row, (label, cells)) in (0..).zip(self.row_labels.iter().zip(&self.cells)) {
                let y = top + row * CELL;
                let style = font(DARK_TEXT, Pos::new(HPos::Right, VPos::Center));
                root.draw(&Text::new(label.as_str(), (left - PAD / 2, y + CELL / 2), style))
                    .map_err(chart_error)?;
                for (column, (fill, ink, text)) in (0..).zip(cells) {
                    let x = left + column * CELL;
                    let corners = [(x, y), (x + CELL, y + CELL)];
                    root.draw(&Rectangle::new(corners, fill.filled()))
                        .map_err(chart_error)?;
                    let border = if self.outline_diagonal && row == column {
                        DARK_TEXT.stroke_width(2)
                    } else {
                        GRID.stroke_width(1)
                    };
                    root.draw(&Rectangle::new(corners, border)).map_err(chart_error)?;
                    root.draw(&Text::new(
                        text.as_str(),
                        (x + CELL / 2, y + CELL / 2),
                        font(*ink, centered),
                    ))
                    .map_err(chart_error)?;
                }
            }
            root.present().map_err(chart_error)?;
        }
        Ok(svg)
    }
}

/// Draws the rater × rater kappa matrix: cells coloured by kappa (blue for agreement above
/// chance, red below, grey where undefined) with the value printed to two decimals.
///
/// `kappa[a][b]` compares `raters[a]` with `raters[b]`; the matrix must be square.
pub fn kappa_heatmap(raters: &[String], kappa: &[Vec<Option<f64>>]) -> Result<String, ChartError> {
    if kappa.len() != raters.len() || kappa.iter().any(|row| row.len() != raters.len()) {
        return Err(ChartError(format!(
            "the kappa matrix must be {0} × {0}, one row and column per rater",
            raters.len()
        )));
    }
    let cells = kappa
        .iter()
        .map(|row| {
            row.iter()
                .map(|&value| {
                    let (fill, strength) = kappa_fill(value);
                    let text = value.map_or_else(|| "n/a".to_string(), |value| format!("{value:.2}"));
                    (fill, text_on(strength), text)
                })
                .collect()
        })
        .collect();
    MatrixFigure {
        row_title: "Rater",
        column_title: "Rater",
        row_labels: raters,
        column_labels: raters,
        cells,
        outline_diagonal: false,
    }
    .draw()
}

/// Draws a confusion matrix: `counts[a][b]` items that the row side rated `categories[a]`
/// and the column side rated `categories[b]`, shaded by count, the diagonal outlined.
pub fn confusion_chart(
    row_title: &str,
    column_title: &str,
    categories: &[String],
    counts: &[Vec<u64>],
) -> Result<String, ChartError> {
    if counts.len() != categories.len() || counts.iter().any(|row| row.len() != categories.len()) {
        return Err(ChartError(format!(
            "the confusion matrix must be {0} × {0}, one row and column per category",
            categories.len()
        )));
    }
    let largest = counts.iter().flatten().copied().max().unwrap_or(0).max(1) as f64;
    let cells = counts
        .iter()
        .map(|row| {
            row.iter()
                .map(|&count| {
                    let strength = count as f64 / largest;
                    (tint(HIGH, strength), text_on(strength), count.to_string())
                })
                .collect()
        })
        .collect();
    MatrixFigure {
        row_title,
        column_title,
        row_labels: categories,
        column_labels: categories,
        cells,
        outline_diagonal: true,
    }
    .draw()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(labels: &[&str]) -> Vec<String> {
        labels.iter().map(|label| label.to_string()).collect()
    }

    #[test]
    fn heatmap_prints_labels_and_values() {
        let raters = names(&["Grader A", "Grader B"]);
        let svg = kappa_heatmap(&raters, &[vec![None, Some(0.6789)], vec![Some(0.6789), None]]).expect("drawn");
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(svg.trim_end().ends_with("</svg>"));
        assert_eq!(svg.matches("\nGrader A\n</text>").count(), 2, "{svg}");
        assert_eq!(svg.matches("\n0.68\n</text>").count(), 2);
        assert_eq!(svg.matches("\nn/a\n</text>").count(), 2);
        assert_eq!(
            svg.matches("<rect").count(),
            1 + 2 * 4,
            "background, then fill and border per cell"
        );
    }

    #[test]
    fn labels_are_escaped() {
        let raters = names(&["<script>alert('x')</script>", "A & B"]);
        let svg = kappa_heatmap(&raters, &[vec![None, Some(-0.5)], vec![Some(-0.5), None]]).expect("drawn");
        assert!(!svg.contains("<script"), "{svg}");
        assert!(svg.contains("&lt;script&gt;alert(&apos;x&apos;)&lt;/script&gt;"));
        assert!(svg.contains("A &amp; B"));
        let svg = confusion_chart("<b>", "\"quoted\"", &names(&["0", "1"]), &[vec![1, 0], vec![2, 3]]).expect("drawn");
        assert!(svg.contains("&lt;b&gt;"), "{svg}");
        assert!(svg.contains("&quot;quoted&quot;"), "{svg}");
    }

    #[test]
    fn shapes_are_checked() {
        assert!(kappa_heatmap(&names(&["A", "B"]), &[vec![None]]).is_err());
        assert!(confusion_chart("r", "c", &names(&["0", "1"]), &[vec![0, 1], vec![0]]).is_err());
    }

    #[test]
    fn kappa_colours_run_from_red_to_blue() {
        assert_eq!(kappa_fill(Some(0.0)).0, WHITE);
        assert_eq!(kappa_fill(Some(1.0)).0, HIGH);
        assert_eq!(kappa_fill(Some(-1.0)).0, LOW);
        assert_eq!(kappa_fill(None).0, UNDEFINED_FILL);
        assert_eq!(text_on(kappa_fill(Some(0.9)).1), WHITE);
    }
}
