//! SVG charts with `plotters`: line charts over the simulated days and the
//! sweep's heat maps. SVG only: its text is `<text>` elements the viewer
//! lays out, so nothing here needs a font file (plotters' bitmap backend
//! would need system fonts for every label).

use std::path::Path;

use plotters::prelude::*;

use crate::error::SimError;

/// Chart size, pixels.
const SIZE: (u32, u32) = (960, 540);
/// The share of a line chart's height kept free above the lines for the
/// legend (upper right).
const LEGEND_ROOM: f64 = 0.3;
/// The palette series take their colours from, in order.
pub const PALETTE: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// One line of a chart.
#[derive(Debug, Clone)]
pub struct Series {
    /// Its legend.
    pub label: String,
    /// Its points.
    pub points: Vec<(f64, f64)>,
    /// Dashed: a reference line rather than a measurement.
    pub dashed: bool,
}

impl Series {
    /// A measured line.
    pub fn line(label: impl Into<String>, points: Vec<(f64, f64)>) -> Series {
        Series {
            label: label.into(),
            points,
            dashed: false,
        }
    }

    /// A horizontal reference line at `y` across `x`.
    pub fn reference(label: impl Into<String>, (x0, x1): (f64, f64), y: f64) -> Series {
        Series {
            label: label.into(),
            points: vec![(x0, y), (x1, y)],
            dashed: true,
        }
    }
}

/// Axis titles and the chart's caption.
#[derive(Debug, Clone, Copy)]
pub struct Labels<'a> {
    /// The caption.
    pub title: &'a str,
    /// The x axis.
    pub x: &'a str,
    /// The y axis.
    pub y: &'a str,
}

fn plot_error(path: &Path) -> impl Fn(String) -> SimError + '_ {
    move |reason| SimError::Plot {
        path: path.to_path_buf(),
        reason,
    }
}

/// The range `values` span, padded, never empty; `zero` includes 0.
fn span(values: impl Iterator<Item = f64>, zero: bool) -> (f64, f64) {
    let (mut low, mut high) = values
        .filter(|v| v.is_finite())
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(l, h), v| {
            (l.min(v), h.max(v))
        });
    if !low.is_finite() {
        return (0.0, 1.0);
    }
    if zero {
        low = low.min(0.0);
        high = high.max(0.0);
    }
    let pad = ((high - low) * 0.08).max(high.abs() * 0.05).max(1e-9);
    (if zero && low >= 0.0 { 0.0 } else { low - pad }, high + pad)
}

/// [`span`] with room above the lines for the legend.
fn span_with_legend(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (low, high) = span(values, true);
    (low, high + (high - low) * LEGEND_ROOM)
}

/// A line chart of `series` to `path`.
pub fn line_chart(path: &Path, labels: Labels<'_>, series: &[Series]) -> Result<(), SimError> {
    draw_lines(path, labels, series).map_err(plot_error(path))
}

fn draw_lines(path: &Path, labels: Labels<'_>, series: &[Series]) -> Result<(), String> {
    let all = || series.iter().flat_map(|s| s.points.iter());
    let (x0, x1) = span(all().map(|p| p.0), false);
    let (y0, y1) = span_with_legend(all().map(|p| p.1));
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let mut chart = ChartBuilder::on(&root)
        .caption(labels.title, ("sans-serif", 22))
        .margin(18)
        .x_label_area_size(44)
        .y_label_area_size(78)
        .build_cartesian_2d(x0..x1, y0..y1)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .x_desc(labels.x)
        .y_desc(labels.y)
        .light_line_style(WHITE.mix(0.0))
        .draw()
        .map_err(|e| e.to_string())?;
    for (index, line) in series.iter().enumerate() {
        let color = PALETTE[index % PALETTE.len()];
        let style = color.stroke_width(if line.dashed { 1 } else { 2 });
        let drawn = if line.dashed {
            chart.draw_series(DashedLineSeries::new(
                line.points.iter().copied(),
                6,
                4,
                style,
            ))
        } else {
            chart.draw_series(LineSeries::new(line.points.iter().copied(), style))
        };
        drawn
            .map_err(|e| e.to_string())?
            .label(line.label.as_str())
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())
}

/// A heat map: one cell per (x, y) of the grid, coloured by `value` in
/// `0..=1` (red 0, green 1), its value written in it, and a cell whose
/// value is under `fail_below` marked as failing.
#[derive(Debug, Clone)]
pub struct HeatMap<'a> {
    /// Caption and axes.
    pub labels: Labels<'a>,
    /// The x values, as written under the columns.
    pub xs: Vec<String>,
    /// The y values, as written beside the rows.
    pub ys: Vec<String>,
    /// `values[y][x]`, in 0..=1.
    pub values: Vec<Vec<f64>>,
    /// Cells under this are marked "FAIL".
    pub fail_below: f64,
}

fn heat_color(value: f64) -> RGBColor {
    let v = value.clamp(0.0, 1.0);
    let mix = |a: f64, b: f64| (a + (b - a) * v).round() as u8;
    RGBColor(mix(215.0, 60.0), mix(48.0, 170.0), mix(39.0, 80.0))
}

/// Draws `map` to `path`.
pub fn heat_map(path: &Path, map: &HeatMap<'_>) -> Result<(), SimError> {
    draw_heat(path, map).map_err(plot_error(path))
}

fn draw_heat(path: &Path, map: &HeatMap<'_>) -> Result<(), String> {
    let (columns, rows) = (map.xs.len(), map.ys.len());
    let root = SVGBackend::new(path, SIZE).into_drawing_area();
    root.fill(&WHITE).map_err(|e| e.to_string())?;
    let xs = map.xs.clone();
    let ys = map.ys.clone();
    let mut chart = ChartBuilder::on(&root)
        .caption(map.labels.title, ("sans-serif", 22))
        .margin(18)
        .x_label_area_size(44)
        .y_label_area_size(78)
        .build_cartesian_2d(0.0..columns as f64, 0.0..rows as f64)
        .map_err(|e| e.to_string())?;
    chart
        .configure_mesh()
        .disable_mesh()
        .x_desc(map.labels.x)
        .y_desc(map.labels.y)
        .x_labels(columns * 2 + 1)
        .y_labels(rows * 2 + 1)
        .x_label_formatter(&|x| label_at(&xs, *x))
        .y_label_formatter(&|y| label_at(&ys, *y))
        .draw()
        .map_err(|e| e.to_string())?;
    let mut cells = Vec::with_capacity(rows * columns);
    let mut texts = Vec::with_capacity(rows * columns);
    for (row, values) in map.values.iter().enumerate() {
        for (column, value) in values.iter().enumerate() {
            let (x, y) = (column as f64, row as f64);
            cells.push(Rectangle::new(
                [(x, y), (x + 1.0, y + 1.0)],
                heat_color(*value).filled(),
            ));
            let fail = if *value < map.fail_below { " FAIL" } else { "" };
            texts.push(Text::new(
                format!("{:.0}%{fail}", value * 100.0),
                (x + 0.5, y + 0.5),
                ("sans-serif", 15).into_font().color(&BLACK).pos(
                    plotters::style::text_anchor::Pos::new(
                        plotters::style::text_anchor::HPos::Center,
                        plotters::style::text_anchor::VPos::Center,
                    ),
                ),
            ));
        }
    }
    chart.draw_series(cells).map_err(|e| e.to_string())?;
    chart.draw_series(texts).map_err(|e| e.to_string())?;
    root.present().map_err(|e| e.to_string())
}

/// The label of the cell centred at `at` (cells span `i..i + 1`).
fn label_at(labels: &[String], at: f64) -> String {
    let index = at.floor();
    if (at - index - 0.5).abs() < 0.01 && index >= 0.0 {
        labels.get(index as usize).cloned().unwrap_or_default()
    } else {
        String::new()
    }
}
