//! `regulab plot`: run documents or a sweep summary drawn to one SVG or PNG image, for
//! users without Python.
//!
//! Runs: a grid with the train loss (total and base; the regularization loss and implied
//! weight decay on a right axis of their own when they are small beside it; per logged step
//! with `--steps`) and the penalty's share of the total on top; below, train / validation /
//! test metric with the reported epoch marked, the MLP's test cost against its test accuracy
//! (with the cost under the test set's divisor where the eval-divisor finding applies,
//! `costs`), and weight norms (`norms`; a panel per run when there are several). Panels
//! without data are left out. Colour stands for the run, line style for the quantity or
//! split; each panel's key sits above it, and the colours' legend under the grid names runs
//! by the config values that differ, in short words (`legend`). Text is at least 12 px.
//!
//! A sweep summary (`summary.json`): the headline metric against the swept value (log
//! scale with zero past a break), mean ± std over seeds or folds, the setting chosen on
//! validation marked.
//!
//! A tune's summary (`tune.json`, or its folder): validation against each searched value,
//! one panel per key (`tune.rs`).
//!
//! Text is laid out and rasterized by plotters' pure-Rust `ab_glyph` backend from a
//! TrueType/OpenType file found on the system at run time (or named by `REGULAB_FONT`),
//! so building regulab needs no fontconfig or freetype development packages.

mod costs;
mod document;
mod draw;
mod figure;
mod font;
mod legend;
mod norms;
mod sweep;
mod tune;

pub use costs::{COST_AS_TRAINED, COST_WITH_TEST_DIVISOR};
pub use document::{document_kind, run_title, PlotView, Split};
pub use font::FONT_ENV;
pub use legend::{short_labels, RunLabel};

use crate::schema::{load_run, load_sweep, load_tune, RunDocument, SWEEP_KIND, TUNE_KIND};
use anyhow::{anyhow, bail, Result};
use plotters::prelude::*;
use plotters_backend::DrawingErrorKind;
use std::path::{Path, PathBuf};

use draw::{draw_figure, legend_rows, LEGEND_ROW_HEIGHT, TITLE_HEIGHT};
use figure::{build_figure, one_line, Figure, FigureOptions};
use font::ensure_font;

/// What to draw and where.
#[derive(Debug, Clone)]
pub struct PlotRequest {
    /// Run documents; several are overlaid.
    pub runs: Vec<PathBuf>,
    /// FIG.svg or FIG.png.
    pub output: PathBuf,
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// The loss panel over the logged steps (`--log-every`) instead of epochs.
    pub steps: bool,
}

const DEFAULT_WIDTH: u32 = 1350;
const DEFAULT_HEIGHT: u32 = 860;

/// `regulab plot`: loads every run (or the one sweep summary), then draws them into one
/// image whose format follows the output's extension.
pub fn run_plot(args: &PlotRequest) -> Result<()> {
    let output = &args.output;
    let format = output_format(output)?;
    // A tune's folder stands for its tune.json.
    let runs: Vec<PathBuf> = match args.runs.as_slice() {
        [dir] if dir.join("tune.json").is_file() => vec![dir.join("tune.json")],
        runs => runs.to_vec(),
    };
    let figure = match runs.as_slice() {
        [path] if document_kind(path).as_deref() == Some(TUNE_KIND) => {
            tune::build_tune_figure(path, &load_tune(path)?)?
        }
        [path] if document_kind(path).as_deref() == Some(SWEEP_KIND) => {
            if args.steps {
                bail!(
                    "{}: --steps draws run documents, not a sweep summary",
                    path.display()
                );
            }
            sweep::build_sweep_figure(path, &load_sweep(path)?)?
        }
        paths => {
            if let Some(path) = paths
                .iter()
                .find(|p| document_kind(p).as_deref() == Some(SWEEP_KIND))
            {
                bail!(
                    "{}: a sweep summary is plotted on its own (regulab plot {} -o FIG.png)",
                    path.display(),
                    path.display()
                );
            }
            build_figure(&load_plottable(paths)?, FigureOptions { steps: args.steps })?
        }
    };
    draw_to_file(&figure, output, format, args.width, args.height)
}

/// Every run document; those with no epochs are skipped with a warning, and if none is
/// left that is the error.
fn load_plottable(paths: &[PathBuf]) -> Result<Vec<(PathBuf, RunDocument)>> {
    let mut runs = Vec::new();
    let mut empty = Vec::new();
    for path in paths {
        let doc = load_run(path)?;
        if doc.epochs.is_empty() {
            let mut status = doc.status.to_string();
            if let Some(message) = &doc.message {
                status += &format!(": {}", one_line(message));
            }
            empty.push(format!(
                "{}: no epochs recorded (status {status})",
                path.display()
            ));
        } else {
            runs.push((path.clone(), doc));
        }
    }
    if runs.is_empty() {
        bail!("{}; nothing to plot", empty.join("; "));
    }
    for line in &empty {
        crate::util::erroutln!("regulab: warning: {line}; nothing drawn for it");
    }
    Ok(runs)
}

fn draw_to_file(
    figure: &Figure,
    output: &Path,
    format: ImageFormat,
    width: Option<u32>,
    height: Option<u32>,
) -> Result<()> {
    let panels = figure.rows.iter().map(Vec::len).max().unwrap_or(1) as u32;
    let default_width = if panels == 1 { 1000 } else { DEFAULT_WIDTH };
    // Each row past the second adds two fifths of the default height.
    let default_height = match figure.rows.len() {
        1 => 560,
        rows => DEFAULT_HEIGHT + (rows as u32 - 2) * DEFAULT_HEIGHT * 2 / 5,
    };
    let width = width.unwrap_or(default_width).max(400);
    // The legend's rows are measured with the font.
    ensure_font()?;
    let rows = legend_rows(&figure.legend, width).len() as u32;
    let legend_height = if rows == 0 {
        0
    } else {
        rows * LEGEND_ROW_HEIGHT + 12
    };
    let height = height
        .unwrap_or(default_height + legend_height)
        .max(TITLE_HEIGHT + legend_height + 200);
    if let Some(parent) = output.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)
            .map_err(|e| anyhow!("{}: cannot create the folder: {e}", parent.display()))?;
    }
    // Fail here with the OS's reason: the backends report a write failure only at the
    // end, wrapped in their own debug formatting.
    std::fs::File::create(output)
        .map_err(|e| anyhow!("{}: cannot write: {e}", output.display()))?;
    let drawn = match format {
        ImageFormat::Svg => {
            let root = SVGBackend::new(output, (width, height)).into_drawing_area();
            draw_figure(root, figure, rows).map_err(describe_drawing_error)
        }
        ImageFormat::Png => {
            let root = BitMapBackend::new(output, (width, height)).into_drawing_area();
            draw_figure(root, figure, rows).map_err(describe_drawing_error)
        }
    };
    drawn.map_err(|e| {
        // The backend has already written whatever it drew; a half image is no result.
        let _ = std::fs::remove_file(output);
        anyhow!("{}: {e}", output.display())
    })
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ImageFormat {
    Svg,
    Png,
}

fn output_format(output: &Path) -> Result<ImageFormat> {
    let extension = output
        .extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase());
    match extension.as_deref() {
        Some("svg") => Ok(ImageFormat::Svg),
        Some("png") => Ok(ImageFormat::Png),
        Some(other) => bail!(
            "{}: unknown image format .{other}; use an output ending in .svg or .png",
            output.display()
        ),
        None => bail!(
            "{}: no file extension; use an output ending in .svg or .png",
            output.display()
        ),
    }
}

fn describe_drawing_error<E: std::error::Error + Send + Sync>(
    error: DrawingAreaErrorKind<E>,
) -> String {
    match error {
        DrawingAreaErrorKind::BackendError(DrawingErrorKind::FontError(e)) => {
            format!("cannot draw the labels with the font ({e}); set {FONT_ENV}=/path/to/font.ttf")
        }
        DrawingAreaErrorKind::BackendError(DrawingErrorKind::DrawingError(e)) => {
            format!("cannot write the image: {e}")
        }
        other => format!("drawing failed: {other}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_format_comes_from_the_extension() {
        assert_eq!(
            output_format(Path::new("a/fig.svg")).unwrap(),
            ImageFormat::Svg
        );
        assert_eq!(
            output_format(Path::new("fig.PNG")).unwrap(),
            ImageFormat::Png
        );
        assert!(output_format(Path::new("fig.jpg"))
            .unwrap_err()
            .to_string()
            .contains(".jpg"));
        assert!(output_format(Path::new("fig")).is_err());
    }
}
