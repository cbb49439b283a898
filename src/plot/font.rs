//! The labels' font: a TrueType/OpenType file found on the system (or named by
//! `REGULAB_FONT`), registered with plotters' pure-Rust text backend.

use anyhow::{anyhow, Result};
use plotters::style::FontStyle;
use std::path::{Path, PathBuf};

/// The family name the labels' font is registered under and drawn with.
pub(super) const FONT: &str = "sans-serif";

/// Environment variable naming a .ttf or .otf file for the labels.
pub const FONT_ENV: &str = "REGULAB_FONT";

/// Registers a system font as plotters' "sans-serif", once per process.
pub(super) fn ensure_font() -> Result<()> {
    static REGISTERED: std::sync::OnceLock<std::result::Result<PathBuf, String>> =
        std::sync::OnceLock::new();
    REGISTERED
        .get_or_init(register_system_font)
        .as_ref()
        .map(|_| ())
        .map_err(|e| anyhow!("{e}"))
}

fn register_system_font() -> std::result::Result<PathBuf, String> {
    if let Some(path) = std::env::var_os(FONT_ENV).filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        return register_font_file(&path)
            .map(|()| path.clone())
            .map_err(|e| format!("{FONT_ENV}={}: {e}", path.display()));
    }
    for path in font_candidates() {
        if register_font_file(&path).is_ok() {
            return Ok(path);
        }
    }
    Err(format!(
        "no TrueType or OpenType font found for the labels; install one (e.g. `apt-get install \
         fonts-dejavu-core`) or set {FONT_ENV}=/path/to/font.ttf"
    ))
}

fn register_font_file(path: &Path) -> std::result::Result<(), String> {
    let bytes = std::fs::read(path).map_err(|e| e.to_string())?;
    // plotters keeps fonts for the life of the process and wants 'static bytes; one
    // font is read once per process, so leaking it is the simple, bounded way.
    let bytes: &'static [u8] = Box::leak(bytes.into_boxed_slice());
    plotters::style::register_font(FONT, FontStyle::Normal, bytes)
        .map_err(|_| "not a TrueType or OpenType font".to_string())
}

/// Font files to try, best first: what fontconfig picks for sans-serif, well-known
/// sans fonts, then any regular-looking .ttf/.otf under the usual font folders.
fn font_candidates() -> Vec<PathBuf> {
    let mut candidates = Vec::new();
    if let Ok(out) = std::process::Command::new("fc-match")
        .args(["--format=%{file}", "sans-serif:style=Regular"])
        .output()
    {
        let file = String::from_utf8_lossy(&out.stdout).trim().to_string();
        if out.status.success() && is_font_file(Path::new(&file)) {
            candidates.push(PathBuf::from(file));
        }
    }
    for known in [
        "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
        "/usr/share/fonts/dejavu/DejaVuSans.ttf",
        "/usr/share/fonts/TTF/DejaVuSans.ttf",
        "/usr/share/fonts/dejavu-sans-fonts/DejaVuSans.ttf",
        "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
        "/usr/share/fonts/liberation-sans/LiberationSans-Regular.ttf",
        "/System/Library/Fonts/Supplemental/Arial.ttf",
        "/Library/Fonts/Arial.ttf",
        "C:\\Windows\\Fonts\\arial.ttf",
    ] {
        candidates.push(PathBuf::from(known));
    }
    let mut roots = vec![
        PathBuf::from("/usr/share/fonts"),
        PathBuf::from("/usr/local/share/fonts"),
    ];
    if let Some(home) = std::env::var_os("HOME") {
        roots.push(Path::new(&home).join(".local/share/fonts"));
        roots.push(Path::new(&home).join(".fonts"));
    }
    let mut found = Vec::new();
    for root in roots {
        collect_font_files(&root, 4, &mut found);
    }
    // Upright sans faces first; bold, italic and monospace ones only as a last resort.
    found.sort_by_key(|path| {
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_lowercase())
            .unwrap_or_default();
        let odd = [
            "bold",
            "italic",
            "oblique",
            "mono",
            "light",
            "condensed",
            "serif",
        ]
        .iter()
        .filter(|w| name.contains(*w) && !(**w == "serif" && name.contains("sans")))
        .count();
        (odd, !name.contains("sans"), name)
    });
    candidates.extend(found);
    candidates
}

fn is_font_file(path: &Path) -> bool {
    path.extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .is_some_and(|e| e == "ttf" || e == "otf")
}

fn collect_font_files(dir: &Path, depth: usize, found: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            if depth > 0 {
                collect_font_files(&path, depth - 1, found);
            }
        } else if is_font_file(&path) {
            found.push(path);
        }
    }
}
