//! Drawing a [`Figure`] with plotters: the grid of panels, a log axis with round ticks,
//! markers, panel keys and the legend strip.

use plotters::coord::ranged1d::{DefaultFormatting, KeyPointHint, Ranged, ValueFormatter};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::ops::Range;

use super::figure::{significant, Figure, Key, Marker, Panel, Stroke};
use super::font::FONT;

pub(super) const TITLE_HEIGHT: u32 = 34;
pub(super) const LEGEND_ROW_HEIGHT: u32 = 20;
const LINE_WIDTH: u32 = 2;

type DrawResult<DB> =
    std::result::Result<(), DrawingAreaErrorKind<<DB as DrawingBackend>::ErrorType>>;

pub(super) fn draw_figure<DB: DrawingBackend>(
    root: DrawingArea<DB, Shift>,
    figure: &Figure,
    rows: u32,
) -> DrawResult<DB> {
    root.fill(&WHITE)?;
    let (width, height) = root.dim_in_pixel();
    let (title_area, rest) = root.split_vertically(TITLE_HEIGHT);
    title_area.draw(&Text::new(
        figure.title.clone(),
        (width as i32 / 2, TITLE_HEIGHT as i32 / 2),
        TextStyle::from((FONT, 18).into_font()).pos(Pos::new(HPos::Center, VPos::Center)),
    ))?;
    let legend_height = rows * LEGEND_ROW_HEIGHT + 12;
    let grid_height = height.saturating_sub(TITLE_HEIGHT + legend_height);
    let (grid, legend_area) = rest.split_vertically(grid_height);
    let (upper, lower) = grid.split_vertically(grid_height / 2);
    for (area, panel) in upper
        .split_evenly((1, figure.loss_panels.len()))
        .iter()
        .zip(&figure.loss_panels)
    {
        draw_panel(area, panel, figure.epochs.clone())?;
    }
    for (area, panel) in lower
        .split_evenly((1, figure.lower_panels.len()))
        .iter()
        .zip(&figure.lower_panels)
    {
        draw_panel(area, panel, figure.epochs.clone())?;
    }
    draw_legend(&legend_area, &figure.legend, width)?;
    root.present()
}

fn y_range(panel: &Panel) -> Range<f64> {
    let (lo, hi) = panel
        .points()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), (_, y)| {
            (lo.min(y), hi.max(y))
        });
    if !lo.is_finite() {
        return 0.0..1.0;
    }
    if panel.log_y {
        return (lo / 1.15)..(hi * 1.15);
    }
    let pad = if hi > lo {
        (hi - lo) * 0.06
    } else {
        (hi.abs() * 0.05).max(1e-3)
    };
    (lo - pad)..(hi + pad)
}

fn draw_panel<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    panel: &Panel,
    epochs: Range<f64>,
) -> DrawResult<DB> {
    let mut builder = ChartBuilder::on(area);
    builder
        .caption(&panel.title, (FONT, 15))
        .margin(10)
        .x_label_area_size(38)
        .y_label_area_size(62);
    let y = y_range(panel);
    if panel.log_y {
        let chart = builder.build_cartesian_2d(epochs, LogAxis::new(y))?;
        fill_panel(chart, panel)
    } else {
        let chart = builder.build_cartesian_2d(epochs, y)?;
        fill_panel(chart, panel)
    }
}

/// A log-scale axis with ticks at 1, 2, 5 (or 1 to 9) times powers of ten. plotters'
/// own log scale labels only powers of ten, so a panel spanning 4 to 60 shows one label.
#[derive(Debug, Clone)]
struct LogAxis {
    /// log10 of the ends.
    lo: f64,
    hi: f64,
}

impl LogAxis {
    fn new(range: Range<f64>) -> Self {
        let lo = range.start.max(f64::MIN_POSITIVE).log10();
        let hi = range.end.max(f64::MIN_POSITIVE).log10();
        Self {
            lo,
            hi: if hi > lo { hi } else { lo + 1.0 },
        }
    }

    fn ticks(&self, multipliers: &[f64]) -> Vec<f64> {
        let mut ticks = Vec::new();
        for exponent in (self.lo.floor() as i32)..=(self.hi.ceil() as i32) {
            for m in multipliers {
                let value = m * 10f64.powi(exponent);
                let log = value.log10();
                if log >= self.lo - 1e-9 && log <= self.hi + 1e-9 {
                    ticks.push(value);
                }
            }
        }
        ticks
    }
}

impl Ranged for LogAxis {
    type FormatOption = DefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let t = (value.log10() - self.lo) / (self.hi - self.lo);
        limit.0 + (t * f64::from(limit.1 - limit.0)).round() as i32
    }

    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        let most = hint.max_num_points();
        let sets: [&[f64]; 3] = [
            &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0],
            &[1.0, 2.0, 5.0],
            &[1.0],
        ];
        sets.iter()
            .map(|set| self.ticks(set))
            .find(|ticks| ticks.len() <= most)
            .unwrap_or_default()
    }

    fn range(&self) -> Range<f64> {
        10f64.powf(self.lo)..10f64.powf(self.hi)
    }
}

fn fill_panel<DB, Y>(
    mut chart: ChartContext<'_, DB, Cartesian2d<RangedCoordf64, Y>>,
    panel: &Panel,
) -> DrawResult<DB>
where
    DB: DrawingBackend,
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    chart
        .configure_mesh()
        .x_desc("epoch")
        .y_desc(&panel.y_label)
        .x_labels(12)
        .y_labels(8)
        // Epochs are whole numbers; fractional ticks stay unlabelled.
        .x_label_formatter(&|x| {
            if (x - x.round()).abs() < 1e-9 {
                format!("{}", x.round())
            } else {
                String::new()
            }
        })
        .y_label_formatter(&|y| significant(*y, 3))
        .light_line_style(TRANSPARENT)
        .bold_line_style(RGBAColor(0, 0, 0, 0.12))
        .label_style((FONT, 12))
        .axis_desc_style((FONT, 13))
        .draw()?;
    let y_span = chart.y_range();
    for &(epoch, _, color) in &panel.best {
        chart.draw_series(std::iter::once(PathElement::new(
            vec![(epoch, y_span.start), (epoch, y_span.end)],
            color.mix(0.35).stroke_width(1),
        )))?;
    }
    for line in &panel.lines {
        let style = line.color.stroke_width(LINE_WIDTH);
        let points = line.points.iter().copied();
        match line.stroke {
            Stroke::Solid => {
                chart.draw_series(LineSeries::new(points, style))?;
            }
            Stroke::Dashed => {
                chart.draw_series(DashedLineSeries::new(points, 8, 5, style))?;
            }
            Stroke::Dotted => {
                chart.draw_series(DashedLineSeries::new(points, 2, 4, style))?;
            }
            Stroke::None => {}
        }
    }
    // Markers, the best-epoch dots and the key are drawn in pixels on the plotting area.
    let area = chart.plotting_area().strip_coord_spec();
    let (base_x, base_y) = area.get_base_pixel();
    let to_pixel = |point: &(f64, f64)| {
        let (x, y) = chart.backend_coord(point);
        (x - base_x, y - base_y)
    };
    for line in &panel.lines {
        for point in &line.points {
            draw_marker(&area, to_pixel(point), line.marker, line.color, 3)?;
        }
    }
    for &(epoch, value, color) in &panel.best {
        let centre = to_pixel(&(epoch, value));
        area.draw(&Circle::new(centre, 7, color.filled()))?;
        area.draw(&Circle::new(centre, 7, BLACK.stroke_width(1)))?;
    }
    if panel.lines.iter().all(|l| l.points.is_empty()) {
        let (w, h) = area.dim_in_pixel();
        let grey = TextStyle::from((FONT, 14).into_font())
            .color(&RGBColor(120, 120, 120))
            .pos(Pos::new(HPos::Center, VPos::Center));
        area.draw(&Text::new("no data", (w as i32 / 2, h as i32 / 2), grey))?;
    }
    if !panel.keys.is_empty() {
        // Points along the lines too, not only the vertices: a line crossing a corner
        // between two epochs counts against it.
        let mut pixels: Vec<(i32, i32)> = panel.points().map(|p| to_pixel(&p)).collect();
        for line in panel.lines.iter().filter(|l| l.stroke != Stroke::None) {
            for pair in line.points.windows(2) {
                let (a, b) = (to_pixel(&pair[0]), to_pixel(&pair[1]));
                pixels.extend((1..8).map(|k| {
                    let t = f64::from(k) / 8.0;
                    let along = |u: i32, v: i32| u + (f64::from(v - u) * t).round() as i32;
                    (along(a.0, b.0), along(a.1, b.1))
                }));
            }
        }
        draw_key_box(&area, &panel.keys, &pixels)?;
    }
    Ok(())
}

fn draw_marker<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    at: (i32, i32),
    marker: Marker,
    color: RGBColor,
    size: i32,
) -> DrawResult<DB> {
    let (x, y) = at;
    match marker {
        Marker::None => Ok(()),
        Marker::Dot => area.draw(&Circle::new(at, size, color.filled())),
        Marker::Ring => area.draw(&Circle::new(at, size + 1, color.stroke_width(2))),
        Marker::Triangle => area.draw(&TriangleMarker::new(at, size + 1, color.filled())),
        Marker::Square => area.draw(&Rectangle::new(
            [(x - size, y - size), (x + size, y + size)],
            color.filled(),
        )),
        Marker::Cross => area.draw(&Cross::new(at, size + 1, color.stroke_width(2))),
        Marker::OpenTriangle => {
            area.draw(&TriangleMarker::new(at, size + 2, color.stroke_width(2)))
        }
        Marker::OpenSquare => area.draw(&Rectangle::new(
            [(x - size, y - size), (x + size, y + size)],
            color.stroke_width(2),
        )),
    }
}

/// A key entry's line and marker, 20 px wide, starting at `(x, y)`.
fn draw_glyph<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    (x, y): (i32, i32),
    key: &Key,
) -> DrawResult<DB> {
    let style = key.color.stroke_width(2);
    let path = vec![(x, y), (x + 20, y)];
    match key.stroke {
        Stroke::Solid => area.draw(&PathElement::new(path, style))?,
        Stroke::Dashed => area.draw(&DashedPathElement::new(path, 6, 3, style))?,
        Stroke::Dotted => area.draw(&DashedPathElement::new(path, 2, 3, style))?,
        Stroke::None => {}
    }
    draw_marker(area, (x + 10, y), key.marker, key.color, 3)
}

/// A panel's key, in whichever corner of the plotting area covers the fewest points.
fn draw_key_box<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    keys: &[Key],
    points: &[(i32, i32)],
) -> DrawResult<DB> {
    let font = TextStyle::from((FONT, 12).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
    let mut text_width = 0;
    for key in keys {
        let (w, _) = area.estimate_text_size(&key.label, &font)?;
        text_width = text_width.max(w as i32);
    }
    let row = 17;
    let (box_w, box_h) = (text_width + 42, row * keys.len() as i32 + 8);
    let (w, h) = area.dim_in_pixel();
    let (w, h) = (w as i32, h as i32);
    let margin = 6;
    let corners = [
        (w - box_w - margin, margin),
        (margin, margin),
        (w - box_w - margin, h - box_h - margin),
        (margin, h - box_h - margin),
    ];
    let covered = |&(x0, y0): &(i32, i32)| {
        points
            .iter()
            .filter(|&&(x, y)| {
                x >= x0 - 4 && x <= x0 + box_w + 4 && y >= y0 - 4 && y <= y0 + box_h + 4
            })
            .count()
    };
    let (x0, y0) = corners
        .iter()
        .copied()
        .min_by_key(covered)
        .unwrap_or(corners[0]);
    area.draw(&Rectangle::new(
        [(x0, y0), (x0 + box_w, y0 + box_h)],
        WHITE.mix(0.9).filled(),
    ))?;
    area.draw(&Rectangle::new(
        [(x0, y0), (x0 + box_w, y0 + box_h)],
        RGBColor(200, 200, 200).stroke_width(1),
    ))?;
    for (i, key) in keys.iter().enumerate() {
        let y = y0 + 4 + row * i as i32 + row / 2;
        draw_glyph(area, (x0 + 8, y), key)?;
        area.draw(&Text::new(key.label.clone(), (x0 + 34, y), font.clone()))?;
    }
    Ok(())
}

/// Approximate width in pixels of legend text at 12 px: enough to lay entries out in
/// rows before any backend exists (the image height depends on the row count).
fn legend_entry_width(key: &Key) -> u32 {
    28 + 7 * key.label.chars().count() as u32 + 24
}

/// The legend entries of each row for an image `width` pixels wide.
pub(super) fn legend_rows(keys: &[Key], width: u32) -> Vec<Vec<&Key>> {
    let usable = width.saturating_sub(40).max(200);
    let mut rows: Vec<Vec<&Key>> = Vec::new();
    let mut used = 0;
    for key in keys {
        let w = legend_entry_width(key);
        match rows.last_mut() {
            Some(row) if used + w <= usable => {
                row.push(key);
                used += w;
            }
            _ => {
                rows.push(vec![key]);
                used = w;
            }
        }
    }
    rows
}

fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    keys: &[Key],
    width: u32,
) -> DrawResult<DB> {
    let font = TextStyle::from((FONT, 12).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
    for (r, row) in legend_rows(keys, width).iter().enumerate() {
        let row_width: u32 = row.iter().map(|k| legend_entry_width(k)).sum();
        let mut x = (width.saturating_sub(row_width) / 2) as i32;
        let y = 6 + (r as i32) * LEGEND_ROW_HEIGHT as i32 + LEGEND_ROW_HEIGHT as i32 / 2;
        for key in row {
            draw_glyph(area, (x, y), key)?;
            area.draw(&Text::new(key.label.clone(), (x + 28, y), font.clone()))?;
            x += legend_entry_width(key) as i32;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_axis_ticks_are_round_numbers() {
        let axis = LogAxis::new(4.0..75.0);
        assert_eq!(axis.key_points(5usize), vec![5.0, 10.0, 20.0, 50.0]);
        assert_eq!(axis.key_points(2usize), vec![10.0]);
        assert_eq!(axis.map(&4.0, (0, 100)), 0);
        assert_eq!(axis.map(&75.0, (0, 100)), 100);
    }
}
