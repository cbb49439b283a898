//! Config files: TOML (or JSON) with the flag names as keys, and an optional `[sweep]` table
//! of lists. Errors name the file, the key and, for TOML, the line.

use super::layer::{canonical_key, Layer, Origin};
use anyhow::{anyhow, bail, Result};
use serde_json::Value;
use std::path::Path;

/// One swept key and its alternatives, in the order given.
#[derive(Debug, Clone, PartialEq)]
pub struct SweepAxis {
    pub key: &'static str,
    pub values: Vec<Value>,
    pub origin: Origin,
}

/// A config file: the run's keys, and the sweep's lists when it has a `[sweep]` table.
#[derive(Debug, Clone, Default)]
pub struct ConfigFile {
    pub layer: Layer,
    pub sweep: Vec<SweepAxis>,
}

/// The table that holds a sweep's lists.
const SWEEP_TABLE: &str = "sweep";

/// Reads a `.toml` or `.json` config file.
pub fn load_file(path: &Path) -> Result<ConfigFile> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow!("{}: cannot read the config file: {e}", path.display()))?;
    // An empty file parses as an empty table, whose error ("no command") would not say
    // which file is empty.
    if text.trim().is_empty() {
        bail!(
            "{}: the config file is empty: it needs at least command = \"mf\" or \"mlp\"",
            path.display()
        );
    }
    let is_json = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    let entries = if is_json {
        json_entries(path, &text)?
    } else {
        toml_entries(path, &text)?
    };
    let mut file = ConfigFile::default();
    for entry in entries {
        let origin = Origin::File {
            path: path.to_path_buf(),
            line: entry.line,
        };
        match entry.table {
            None => file.layer.set(&entry.key, entry.value, origin)?,
            Some(_) => file
                .sweep
                .push(sweep_axis(&entry.key, entry.value, origin)?),
        }
    }
    Ok(file)
}

/// A key as found in a file: its table (`None` at the top level), value and line.
struct Entry {
    table: Option<String>,
    key: String,
    value: Value,
    line: Option<usize>,
}

fn sweep_axis(key: &str, value: Value, origin: Origin) -> Result<SweepAxis> {
    let Some(canonical) = canonical_key(key) else {
        // The layer words the unknown-key message, with its suggestion.
        let error = Layer::default().set(key, value, origin.clone()).err();
        return Err(error.unwrap_or_else(|| anyhow!("{}: unknown key", origin.describe(key))));
    };
    let values = match value {
        Value::Array(values) if values.is_empty() => {
            bail!("{}: an empty list sweeps nothing", origin.describe(key))
        }
        Value::Array(values) => values,
        single => vec![single],
    };
    // Each alternative must be a valid value for the key.
    for value in &values {
        Layer::default().set(canonical, value.clone(), origin.clone())?;
    }
    Ok(SweepAxis {
        key: canonical,
        values,
        origin,
    })
}

fn toml_entries(path: &Path, text: &str) -> Result<Vec<Entry>> {
    let file = path.display();
    let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
        let line = e.span().map(|span| line_of(text, span.start));
        let message = e.message().lines().next().unwrap_or("").to_string();
        match line {
            Some(line) => anyhow!("{file}:{line}: invalid TOML: {message}"),
            None => anyhow!("{file}: invalid TOML: {message}"),
        }
    })?;
    let lines = toml_key_lines(text);
    let line_of_key = |table: Option<&str>, key: &str| {
        lines
            .iter()
            .find(|(t, k, _)| t.as_deref() == table && k == key)
            .map(|(_, _, line)| *line)
    };
    let mut entries = Vec::new();
    for (key, value) in table {
        match value {
            toml::Value::Table(inner) if key == SWEEP_TABLE => {
                for (inner_key, inner_value) in inner {
                    entries.push(Entry {
                        line: line_of_key(Some(SWEEP_TABLE), &inner_key),
                        table: Some(SWEEP_TABLE.into()),
                        key: inner_key,
                        value: toml_to_json(inner_value),
                    });
                }
            }
            toml::Value::Table(_) => {
                let line = line_of_key(None, &key)
                    .map(|l| format!(":{l}"))
                    .unwrap_or_default();
                bail!("{file}{line}: unknown table [{key}]; keys go at the top level, lists to sweep under [sweep]");
            }
            value => entries.push(Entry {
                line: line_of_key(None, &key),
                table: None,
                key,
                value: toml_to_json(value),
            }),
        }
    }
    Ok(entries)
}

/// (table, key, 1-based line) of every `key = ...` in a TOML text, from the parser's spans.
fn toml_key_lines(text: &str) -> Vec<(Option<String>, String, usize)> {
    let Ok(document) = toml::de::DeTable::parse(text) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    for (key, value) in document.get_ref() {
        let name = key.get_ref().to_string();
        found.push((None, name.clone(), line_of(text, key.span().start)));
        if let toml::de::DeValue::Table(inner) = value.get_ref() {
            for (inner_key, _) in inner {
                found.push((
                    Some(name.clone()),
                    inner_key.get_ref().to_string(),
                    line_of(text, inner_key.span().start),
                ));
            }
        }
    }
    found
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

fn toml_to_json(value: toml::Value) -> Value {
    match value {
        toml::Value::String(s) => Value::String(s),
        toml::Value::Integer(i) => Value::from(i),
        toml::Value::Float(f) => serde_json::Number::from_f64(f)
            .map(Value::Number)
            .unwrap_or(Value::Null),
        toml::Value::Boolean(b) => Value::Bool(b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(items) => Value::Array(items.into_iter().map(toml_to_json).collect()),
        toml::Value::Table(table) => Value::Object(
            table
                .into_iter()
                .map(|(k, v)| (k, toml_to_json(v)))
                .collect(),
        ),
    }
}

fn json_entries(path: &Path, text: &str) -> Result<Vec<Entry>> {
    let file = path.display();
    let value: Value = serde_json::from_str(text)
        .map_err(|e| anyhow!("{file}:{}: invalid JSON: {e}", e.line()))?;
    let Value::Object(object) = value else {
        bail!("{file}: a config file holds an object of keys");
    };
    let mut entries = Vec::new();
    for (key, value) in object {
        match value {
            Value::Object(inner) if key == SWEEP_TABLE => {
                for (inner_key, inner_value) in inner {
                    entries.push(Entry {
                        table: Some(SWEEP_TABLE.into()),
                        key: inner_key,
                        value: inner_value,
                        line: None,
                    });
                }
            }
            Value::Object(_) => bail!("{file}: {key}: unknown table; keys go at the top level, lists to sweep under \"sweep\""),
            value => entries.push(Entry {
                table: None,
                key,
                value,
                line: None,
            }),
        }
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    fn write(name: &str, text: &str) -> (tempfile::TempDir, PathBuf) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        (dir, path)
    }

    #[test]
    fn toml_keys_become_a_layer_and_a_sweep() {
        let (_dir, path) = write(
            "exp.toml",
            "# MF with the per-batch penalty\ncommand = \"mf\"\npenalty = \"batch-l2\"\nweight-decay = 0.0\n\n[sweep]\nlambda = [0, 0.01, 0.1]\nseed = [1, 2]\n",
        );
        let file = load_file(&path).unwrap();
        assert_eq!(
            file.layer.values.penalty,
            Some(crate::regularization::PenaltyKind::BatchL2)
        );
        assert_eq!(file.layer.values.weight_decay, Some(0.0));
        assert_eq!(file.sweep.len(), 2);
        assert_eq!(file.sweep[0].key, "lambda");
        assert_eq!(file.sweep[0].values.len(), 3);
        assert_eq!(
            file.sweep[1].origin,
            Origin::File {
                path: path.clone(),
                line: Some(8)
            }
        );
    }

    #[test]
    fn errors_name_file_line_and_key() {
        let (_dir, path) = write("exp.toml", "command = \"mf\"\n\nlamda = 0.1\n");
        let error = load_file(&path).unwrap_err().to_string();
        assert!(
            error.ends_with("exp.toml:3: lamda: unknown key (did you mean lambda?)"),
            "{error}"
        );
        let (_dir, path) = write("exp.toml", "epochs = \"many\"\n");
        let error = load_file(&path).unwrap_err().to_string();
        assert!(
            error.ends_with("exp.toml:1: epochs many: expected a non-negative integer"),
            "{error}"
        );
        let (_dir, path) = write("exp.toml", "epochs = \n");
        let error = load_file(&path).unwrap_err().to_string();
        assert!(
            error.contains("exp.toml:1: invalid TOML") && !error.contains('\n'),
            "{error}"
        );
        let (_dir, path) = write("exp.toml", "[sweep]\nlambda = [0.1, \"x\"]\n");
        let error = load_file(&path).unwrap_err().to_string();
        assert!(
            error.ends_with("exp.toml:2: lambda x: expected a number"),
            "{error}"
        );
        let (_dir, path) = write("exp.toml", "[model]\ndim = 3\n");
        let error = load_file(&path).unwrap_err().to_string();
        assert!(
            error.contains("exp.toml:1: unknown table [model]"),
            "{error}"
        );
    }

    #[test]
    fn json_files_work_too() {
        let (_dir, path) = write(
            "exp.json",
            r#"{"command": "mlp", "data": "x", "hidden": [64, 32], "sweep": {"lr": [0.1, 0.01]}}"#,
        );
        let file = load_file(&path).unwrap();
        assert_eq!(file.layer.values.hidden, Some(vec![64, 32]));
        assert_eq!(file.sweep[0].values.len(), 2);
        let (_dir, path) = write("exp.json", r#"{"lambda": "x"}"#);
        let error = load_file(&path).unwrap_err().to_string();
        assert!(
            error.ends_with("exp.json: lambda x: expected a number"),
            "{error}"
        );
    }
}
