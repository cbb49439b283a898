//! The docs stay true: every `regulab` command shown in README.md and docs/*.md names a
//! command that exists and only flags that command accepts (its `--help` lists them).
//! Commands shown as error examples (followed by `regulab: error:`) are skipped. The
//! training commands themselves run in the other tests and in scripts/reproduce_lecture.sh.

mod common;
use common::*;
use std::collections::{BTreeSet, HashMap};
use std::path::Path;

/// A command line from a doc: where it is and its words after `regulab`.
struct Shown {
    place: String,
    words: Vec<String>,
}

fn words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut current = String::new();
    let mut quoted = false;
    for c in line.chars() {
        match c {
            '"' | '\'' => quoted = !quoted,
            c if c.is_whitespace() && !quoted => {
                if !current.is_empty() {
                    words.push(std::mem::take(&mut current));
                }
            }
            c => current.push(c),
        }
    }
    if !current.is_empty() {
        words.push(current);
    }
    words
}

/// Command lines inside fenced code blocks.
fn shown_commands(path: &Path) -> Vec<Shown> {
    let text = std::fs::read_to_string(path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut shown = Vec::new();
    let mut in_block = false;
    // In `console` blocks only `$ ` lines are commands; the rest is output.
    let mut console = false;
    let mut index = 0;
    while index < lines.len() {
        let line = lines[index].trim();
        index += 1;
        if let Some(language) = line.strip_prefix("```") {
            in_block = !in_block;
            console = in_block && language == "console";
            continue;
        }
        if !in_block || (console && !line.starts_with("$ ")) {
            continue;
        }
        let command = line.trim_start_matches("$ ");
        let rest = ["regulab ", "$R ", "target/release/regulab "]
            .iter()
            .find_map(|prefix| command.strip_prefix(prefix));
        let Some(rest) = rest else { continue };
        let number = index;
        let mut joined = rest.to_string();
        while joined.trim_end().ends_with('\\') && index < lines.len() {
            joined =
                joined.trim_end().trim_end_matches('\\').to_string() + " " + lines[index].trim();
            index += 1;
        }
        let is_error_example = lines
            .get(index)
            .is_some_and(|next| next.trim_start().starts_with("regulab: error"));
        if is_error_example {
            continue;
        }
        let without_comment = joined.split(" #").next().unwrap_or_default();
        shown.push(Shown {
            place: format!("{}:{number}", path.display()),
            words: words(without_comment),
        });
    }
    shown
}

fn help(cache: &mut HashMap<Vec<String>, String>, command: &[String]) -> String {
    cache
        .entry(command.to_vec())
        .or_insert_with(|| {
            // An unknown command fails: its help is then empty.
            let output = regulab()
                .args(command)
                .arg("--help")
                .output()
                .expect("regulab starts");
            String::from_utf8_lossy(&output.stdout).into_owned()
        })
        .clone()
}

#[test]
fn every_documented_command_and_flag_exists() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = vec![root.join("README.md")];
    let mut docs: Vec<_> = std::fs::read_dir(root.join("docs"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    let mut cache = HashMap::new();
    let mut problems = Vec::new();
    let mut checked = 0;
    for file in &files {
        for shown in shown_commands(file) {
            let Some(first) = shown.words.first() else {
                continue;
            };
            // Sub-subcommands (`data info`) and the trainer a sweep, cv or tune names.
            let mut command = vec![first.clone()];
            if first == "data" {
                command.extend(shown.words.get(1).cloned());
            }
            let mut helps = vec![help(&mut cache, &command)];
            if first == "sweep" || first == "cv" || first == "tune" {
                for trainer in ["mf", "mlp"] {
                    helps.push(help(&mut cache, &[trainer.to_string()]));
                }
            }
            if helps[0].is_empty() {
                problems.push(format!("{}: regulab {first}: no such command", shown.place));
                continue;
            }
            let flags: BTreeSet<&str> = shown
                .words
                .iter()
                .filter(|w| w.starts_with("--") && w.len() > 2)
                .map(|w| w.split('=').next().unwrap_or(w))
                .collect();
            for flag in flags {
                let listed = helps.iter().any(|h| {
                    h.split(|c: char| !(c.is_alphanumeric() || c == '-'))
                        .any(|word| word == flag)
                });
                if !listed {
                    problems.push(format!(
                        "{}: regulab {}: {flag} is not a flag of it",
                        shown.place,
                        command.join(" ")
                    ));
                }
            }
            checked += 1;
        }
    }
    assert!(checked > 40, "only {checked} documented commands found");
    assert!(
        problems.is_empty(),
        "documented commands that do not exist:\n{}",
        problems.join("\n")
    );
}
