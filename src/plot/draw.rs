//! Drawing a [`Figure`] with plotters: the grid of panels, a log axis with round ticks,
//! markers, panel keys and the legend strip.

use plotters::chart::DualCoordChartContext;
use plotters::coord::ranged1d::{
    DefaultFormatting, KeyPointHint, NoDefaultFormatting, Ranged, ValueFormatter,
};
use plotters::coord::types::RangedCoordf64;
use plotters::coord::Shift;
use plotters::element::DashedPathElement;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};
use std::ops::Range;

use super::figure::{significant, Figure, Key, Line, Marker, Panel, Secondary, Stroke, XAxis};
use super::font::FONT;

pub(super) const TITLE_HEIGHT: u32 = 40;
pub(super) const LEGEND_ROW_HEIGHT: u32 = 24;
const LINE_WIDTH: u32 = 2;
const PANEL_TITLE_HEIGHT: u32 = 26;
const KEY_ROW_HEIGHT: u32 = 21;

// Font sizes in plotters' units: the SVG backend writes `size / 1.24` as the CSS pixel
// size, so 15 is the smallest that reads as 12 px (tick labels and keys).
const TEXT_SIZE: f64 = 15.0;
const AXIS_LABEL_SIZE: f64 = 16.0;
const PANEL_TITLE_SIZE: f64 = 17.0;
const FIGURE_TITLE_SIZE: f64 = 20.0;
/// Space between a panel and its neighbours, so that a right axis's label never meets the
/// next panel's left one.
const PANEL_GAP: u32 = 22;

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
        TextStyle::from((FONT, FIGURE_TITLE_SIZE).into_font())
            .pos(Pos::new(HPos::Center, VPos::Center)),
    ))?;
    let legend_height = if rows == 0 {
        0
    } else {
        rows * LEGEND_ROW_HEIGHT + 12
    };
    let grid_height = height.saturating_sub(TITLE_HEIGHT + legend_height);
    let (grid, legend_area) = rest.split_vertically(grid_height);
    let row_count = figure.rows.len().max(1) as u32;
    let mut remaining = grid;
    for (index, row) in figure.rows.iter().enumerate() {
        let row_height = grid_height / row_count;
        let (row_area, below) = if index + 1 < figure.rows.len() {
            remaining.split_vertically(row_height)
        } else {
            let empty = remaining.clone().shrink((0, 0), (0, 0));
            (remaining, empty)
        };
        draw_row(&row_area, row)?;
        remaining = below;
    }
    draw_legend(&legend_area, &figure.legend, width)?;
    root.present()
}

/// The panels of a row side by side, each as wide as its weight says.
fn draw_row<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, panels: &[Panel]) -> DrawResult<DB> {
    let total: u32 = panels.iter().map(|p| p.weight).sum::<u32>().max(1);
    let (width, _) = area.dim_in_pixel();
    let mut remaining = area.clone();
    for (index, panel) in panels.iter().enumerate() {
        let (panel_area, rest) = if index + 1 < panels.len() {
            remaining.split_horizontally(width * panel.weight / total)
        } else {
            let empty = remaining.clone().shrink((0, 0), (0, 0));
            (remaining, empty)
        };
        draw_panel(&panel_area, panel)?;
        remaining = rest;
    }
    Ok(())
}

fn y_range(points: impl Iterator<Item = (f64, f64)>, log: bool) -> Range<f64> {
    let (lo, hi) = points.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), (_, y)| {
        (lo.min(y), hi.max(y))
    });
    if !lo.is_finite() {
        return 0.0..1.0;
    }
    if log {
        return (lo / 1.15)..(hi * 1.15);
    }
    let pad = if hi > lo {
        (hi - lo) * 0.06
    } else {
        (hi.abs() * 0.05).max(1e-3)
    };
    (lo - pad)..(hi + pad)
}

/// Significant digits that tell an axis's ticks apart: 3, more when the range is narrow
/// beside its values (0.1228 to 0.1242 needs 4).
fn tick_digits(range: &Range<f64>) -> i32 {
    let span = range.end - range.start;
    let largest = range.start.abs().max(range.end.abs());
    if span <= 0.0 || largest <= 0.0 || !span.is_finite() {
        return 3;
    }
    ((largest / span).log10().ceil() as i32 + 2).clamp(3, 8)
}

/// A panel: its title, its key (above the plotting area, so it never hides a curve), then
/// the chart.
fn draw_panel<DB: DrawingBackend>(area: &DrawingArea<DB, Shift>, panel: &Panel) -> DrawResult<DB> {
    let (width, _) = area.dim_in_pixel();
    let (title_area, rest) = area.split_vertically(PANEL_TITLE_HEIGHT);
    title_area.draw(&Text::new(
        panel.title.clone(),
        (width as i32 / 2, PANEL_TITLE_HEIGHT as i32 / 2 + 3),
        TextStyle::from((FONT, PANEL_TITLE_SIZE).into_font())
            .pos(Pos::new(HPos::Center, VPos::Center)),
    ))?;
    let key_rows = key_rows(&panel.keys, width.saturating_sub(40));
    let key_height = if key_rows.is_empty() {
        0
    } else {
        key_rows.len() as u32 * KEY_ROW_HEIGHT + 4
    };
    let (key_area, chart_area) = rest.split_vertically(key_height);
    draw_key_rows(&key_area, &key_rows, width)?;
    let mut builder = ChartBuilder::on(&chart_area);
    builder
        .margin_left(PANEL_GAP)
        .margin_right(PANEL_GAP)
        .margin_top(4)
        .margin_bottom(4)
        .x_label_area_size(44)
        .y_label_area_size(72);
    if panel.secondary.is_some() {
        builder.right_y_label_area_size(72);
    }
    let x = TickAxis::new(&panel.x);
    let y = y_range(panel.points(), panel.log_y);
    if let Some(secondary) = &panel.secondary {
        let y2 = y_range(
            secondary
                .lines
                .iter()
                .flat_map(|l| l.points.iter().copied()),
            false,
        );
        let chart = builder
            .build_cartesian_2d(x.clone(), y)?
            .set_secondary_coord(x, y2);
        draw_dual(chart, panel, secondary)
    } else if panel.log_y {
        let chart = builder.build_cartesian_2d(x, LogAxis::new(y))?;
        fill_panel(chart, panel)
    } else {
        let chart = builder.build_cartesian_2d(x, y)?;
        fill_panel(chart, panel)
    }
}

/// An x axis with the ticks (and their labels) the figure chose: whole epochs or steps,
/// or a sweep's values.
#[derive(Debug, Clone)]
struct TickAxis {
    range: Range<f64>,
    ticks: Vec<(f64, String)>,
}

impl TickAxis {
    fn new(axis: &XAxis) -> Self {
        TickAxis {
            range: axis.range.clone(),
            ticks: axis.ticks.clone(),
        }
    }

    fn label(&self, value: f64) -> String {
        self.ticks
            .iter()
            .find(|(at, _)| (at - value).abs() < 1e-9 * (1.0 + at.abs()))
            .map(|(_, label)| label.clone())
            .unwrap_or_default()
    }
}

impl Ranged for TickAxis {
    type FormatOption = NoDefaultFormatting;
    type ValueType = f64;

    fn map(&self, value: &f64, limit: (i32, i32)) -> i32 {
        let span = self.range.end - self.range.start;
        let t = if span > 0.0 {
            (value - self.range.start) / span
        } else {
            0.5
        };
        limit.0 + (t * f64::from(limit.1 - limit.0)).round() as i32
    }

    fn key_points<H: KeyPointHint>(&self, hint: H) -> Vec<f64> {
        let most = hint.max_num_points().max(1);
        let every = self.ticks.len().div_ceil(most).max(1);
        self.ticks.iter().step_by(every).map(|t| t.0).collect()
    }

    fn range(&self) -> Range<f64> {
        self.range.clone()
    }
}

impl ValueFormatter<f64> for TickAxis {
    fn format_ext(&self, value: &f64) -> String {
        self.label(*value)
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

fn draw_mesh<DB, Y>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<TickAxis, Y>>,
    panel: &Panel,
) -> DrawResult<DB>
where
    DB: DrawingBackend,
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    let digits = tick_digits(&y_range(panel.points(), panel.log_y));
    chart
        .configure_mesh()
        .x_desc(panel.x.label.as_str())
        .y_desc(&panel.y_label)
        .x_labels(12)
        .y_labels(8)
        .y_label_formatter(&|y| significant(*y, digits))
        .light_line_style(TRANSPARENT)
        .bold_line_style(RGBAColor(0, 0, 0, 0.12))
        .label_style((FONT, TEXT_SIZE))
        .axis_desc_style((FONT, AXIS_LABEL_SIZE))
        .draw()
}

fn fill_panel<DB, Y>(
    mut chart: ChartContext<'_, DB, Cartesian2d<TickAxis, Y>>,
    panel: &Panel,
) -> DrawResult<DB>
where
    DB: DrawingBackend,
    Y: Ranged<ValueType = f64> + ValueFormatter<f64>,
{
    draw_mesh(&mut chart, panel)?;
    // Everything is drawn in pixels on the plotting area, so that a second y axis draws
    // the same way with its own mapping.
    let area = chart.plotting_area().strip_coord_spec();
    let (base_x, base_y) = area.get_base_pixel();
    let to_pixel = |point: &(f64, f64)| {
        let (x, y) = chart.backend_coord(point);
        (x - base_x, y - base_y)
    };
    draw_content(&area, panel, &panel.lines, &to_pixel)
}

type Dual<'a, DB> = DualCoordChartContext<
    'a,
    DB,
    Cartesian2d<TickAxis, RangedCoordf64>,
    Cartesian2d<TickAxis, RangedCoordf64>,
>;

/// A panel with a second y axis on the right for `secondary`'s lines.
fn draw_dual<DB: DrawingBackend>(
    mut chart: Dual<'_, DB>,
    panel: &Panel,
    secondary: &Secondary,
) -> DrawResult<DB> {
    draw_mesh(&mut chart, panel)?;
    let digits = tick_digits(&y_range(
        secondary
            .lines
            .iter()
            .flat_map(|l| l.points.iter().copied()),
        false,
    ));
    chart
        .configure_secondary_axes()
        .y_desc(&secondary.y_label)
        .y_labels(8)
        .y_label_formatter(&|y| significant(*y, digits))
        .label_style((FONT, TEXT_SIZE))
        .axis_desc_style((FONT, AXIS_LABEL_SIZE))
        .draw()?;
    let area = chart.plotting_area().strip_coord_spec();
    let (base_x, base_y) = area.get_base_pixel();
    let primary = |point: &(f64, f64)| {
        let (x, y) = chart.backend_coord(point);
        (x - base_x, y - base_y)
    };
    draw_content(&area, panel, &panel.lines, &primary)?;
    let right = |point: &(f64, f64)| {
        let (x, y) = chart.borrow_secondary().backend_coord(point);
        (x - base_x, y - base_y)
    };
    draw_lines(&area, &secondary.lines, &right)
}

type ToPixel<'a> = dyn Fn(&(f64, f64)) -> (i32, i32) + 'a;

/// Guides at the reported epochs, error bars, the lines, their markers, and the reported
/// values' large dots, in that order (later ones on top).
fn draw_content<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    panel: &Panel,
    lines: &[Line],
    to_pixel: &ToPixel<'_>,
) -> DrawResult<DB> {
    let (_, height) = area.dim_in_pixel();
    if let Some(x) = panel.x_break {
        let (px, _) = to_pixel(&(x, 0.0));
        let grey = RGBColor(150, 150, 150).stroke_width(1);
        for offset in [-2, 2] {
            let path = vec![(px + offset, 0), (px + offset, height as i32)];
            area.draw(&DashedPathElement::new(path, 4, 4, grey))?;
        }
    }
    for &(x, y, color) in &panel.best {
        let (px, _) = to_pixel(&(x, y));
        area.draw(&PathElement::new(
            vec![(px, 0), (px, height as i32)],
            color.mix(0.35).stroke_width(1),
        ))?;
    }
    for &(x, lo, hi, color) in &panel.bars {
        let (px, top) = to_pixel(&(x, hi));
        let (_, bottom) = to_pixel(&(x, lo));
        let style = color.stroke_width(2);
        area.draw(&PathElement::new(vec![(px, top), (px, bottom)], style))?;
        for y in [top, bottom] {
            area.draw(&PathElement::new(vec![(px - 5, y), (px + 5, y)], style))?;
        }
    }
    draw_lines(area, lines, to_pixel)?;
    for &(x, y, color) in &panel.best {
        let centre = to_pixel(&(x, y));
        area.draw(&Circle::new(centre, 7, color.filled()))?;
        area.draw(&Circle::new(centre, 7, BLACK.stroke_width(1)))?;
    }
    Ok(())
}

fn draw_lines<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    lines: &[Line],
    to_pixel: &ToPixel<'_>,
) -> DrawResult<DB> {
    for line in lines {
        let style = line.color.stroke_width(LINE_WIDTH);
        let pixels: Vec<(i32, i32)> = line.points.iter().map(to_pixel).collect();
        match line.stroke {
            Stroke::Solid => area.draw(&PathElement::new(pixels.clone(), style))?,
            Stroke::Dashed => area.draw(&DashedPathElement::new(pixels.clone(), 8, 5, style))?,
            Stroke::Dotted => area.draw(&DashedPathElement::new(pixels.clone(), 2, 4, style))?,
            Stroke::LongDash => area.draw(&DashedPathElement::new(pixels.clone(), 14, 4, style))?,
            Stroke::None => {}
        }
        // Smaller markers on long runs, so that sixty epochs stay a line, not a bead chain.
        let size = if pixels.len() > 30 { 2 } else { 3 };
        for &at in &pixels {
            draw_marker(area, at, line.marker, line.color, size)?;
        }
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
        Stroke::LongDash => area.draw(&DashedPathElement::new(path, 9, 3, style))?,
        Stroke::None => {}
    }
    draw_marker(area, (x + 10, y), key.marker, key.color, 3)
}

/// Width in pixels of a legend entry: the glyph, the label as the font measures it (an
/// estimate when it cannot), and a gap. Known before any backend exists, since the image
/// height depends on the row count.
fn legend_entry_width(key: &Key) -> u32 {
    let text = (FONT, TEXT_SIZE)
        .into_font()
        .box_size(&key.label)
        .map_or(8 * key.label.chars().count() as u32, |(w, _)| w);
    28 + text + 24
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

/// A panel's key entries in rows that fit `width`.
fn key_rows(keys: &[Key], width: u32) -> Vec<Vec<&Key>> {
    legend_rows(keys, width)
}

fn draw_key_rows<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    rows: &[Vec<&Key>],
    width: u32,
) -> DrawResult<DB> {
    let font =
        TextStyle::from((FONT, TEXT_SIZE).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
    for (r, row) in rows.iter().enumerate() {
        let row_width: u32 = row.iter().map(|k| legend_entry_width(k)).sum();
        let mut x = (width.saturating_sub(row_width) / 2) as i32;
        let y = (r as i32) * KEY_ROW_HEIGHT as i32 + KEY_ROW_HEIGHT as i32 / 2 + 2;
        for key in row {
            draw_glyph(area, (x, y), key)?;
            area.draw(&Text::new(key.label.clone(), (x + 28, y), font.clone()))?;
            x += legend_entry_width(key) as i32;
        }
    }
    Ok(())
}

fn draw_legend<DB: DrawingBackend>(
    area: &DrawingArea<DB, Shift>,
    keys: &[Key],
    width: u32,
) -> DrawResult<DB> {
    let font =
        TextStyle::from((FONT, TEXT_SIZE).into_font()).pos(Pos::new(HPos::Left, VPos::Center));
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
    fn narrow_ranges_get_more_digits() {
        assert_eq!(tick_digits(&(0.0..1.0)), 3);
        assert_eq!(tick_digits(&(0.1228..0.1242)), 4);
        assert_eq!(tick_digits(&(10.0..10.01)), 6);
    }

    #[test]
    fn log_axis_ticks_are_round_numbers() {
        let axis = LogAxis::new(4.0..75.0);
        assert_eq!(axis.key_points(5usize), vec![5.0, 10.0, 20.0, 50.0]);
        assert_eq!(axis.key_points(2usize), vec![10.0]);
        assert_eq!(axis.map(&4.0, (0, 100)), 0);
        assert_eq!(axis.map(&75.0, (0, 100)), 100);
    }
}
