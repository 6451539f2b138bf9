//! Line charts of a model run's evaluation: precision-recall curves, one line per class.

use plotters::prelude::*;

use super::{chart_error, ChartError, DARK_TEXT, FONT_SIZE};

/// Width and height of a curve chart, in pixels.
const SIZE: (u32, u32) = (520, 400);

/// Line colours of the classes in turn; a sixth class reuses the first colour.
const PALETTE: [RGBColor; 5] = [
    RGBColor(31, 95, 174),
    RGBColor(179, 38, 30),
    RGBColor(46, 125, 50),
    RGBColor(237, 139, 0),
    RGBColor(106, 27, 154),
];

/// One class's precision-recall curve: its label and `(recall, precision)` points in the
/// order of decreasing threshold.
pub struct PrSeries<'a> {
    pub label: &'a str,
    pub points: Vec<(f64, f64)>,
}

/// Draws precision (vertical) against recall (horizontal), both from 0 to 1, one coloured
/// line per class with a legend. A class without points is listed in the legend only.
pub fn pr_curves_chart(series: &[PrSeries<'_>]) -> Result<String, ChartError> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, SIZE).into_drawing_area();
        root.fill(&WHITE).map_err(chart_error)?;
        let mut chart = ChartBuilder::on(&root)
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(48)
            .build_cartesian_2d(0.0..1.0, 0.0..1.0)
            .map_err(chart_error)?;
        let label_style = ("sans-serif", FONT_SIZE * 0.8).into_font().color(&DARK_TEXT);
        chart
            .configure_mesh()
            .x_desc("Recall")
            .y_desc("Precision")
            .x_labels(6)
            .y_labels(6)
            .label_style(label_style.clone())
            .axis_desc_style(label_style.clone())
            .light_line_style(RGBColor(236, 238, 241))
            .draw()
            .map_err(chart_error)?;
        for (index, curve) in series.iter().enumerate() {
            let color = PALETTE[index % PALETTE.len()];
            chart
                .draw_series(std::iter::once(PathElement::new(curve.points.clone(), color.stroke_width(2))))
                .map_err(chart_error)?
                .label(curve.label.to_string())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2)));
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::LowerLeft)
            .background_style(WHITE.mix(0.9))
            .border_style(RGBColor(213, 217, 223))
            .label_font(label_style)
            .draw()
            .map_err(chart_error)?;
        root.present().map_err(chart_error)?;
    }
    Ok(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_one_line_per_class_with_legend() {
        let series = [
            PrSeries { label: "grade <0>", points: vec![(0.0, 1.0), (0.5, 0.8), (1.0, 0.5)] },
            PrSeries { label: "grade 1", points: vec![(0.2, 0.9), (1.0, 0.4)] },
            PrSeries { label: "grade 2", points: Vec::new() },
        ];
        let svg = pr_curves_chart(&series).expect("drawn");
        assert!(svg.starts_with("<svg"), "{svg}");
        assert!(svg.contains("Recall"));
        assert!(svg.contains("Precision"));
        assert!(svg.contains("grade &lt;0&gt;"), "labels are escaped: {svg}");
        assert!(svg.contains("grade 2"));
        assert!(svg.matches("<polyline").count() >= 2, "{svg}");
    }
}
