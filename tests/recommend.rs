//! `regulab predict --user U`: titles and genres from the data set's own files (ml-100k's
//! latin-1 `u.item`, ml-latest's `movies.csv`), the items the user rated in training left
//! out by default, scores clipped to the training ratings' scale with the raw score kept.

mod common;
use common::*;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::path::Path;

fn predict_json(run: &Path, args: &[&str]) -> Value {
    let output = run_ok(
        regulab()
            .arg("predict")
            .arg(run)
            .args(["--device", "cpu", "--json"])
            .args(args),
    );
    serde_json::from_slice(&output.stdout).expect("predict JSON")
}

fn predict_text(run: &Path, args: &[&str]) -> (String, String) {
    let output = run_ok(
        regulab()
            .arg("predict")
            .arg(run)
            .args(["--device", "cpu"])
            .args(args),
    );
    (
        String::from_utf8(output.stdout).unwrap(),
        String::from_utf8(output.stderr).unwrap(),
    )
}

fn items(answer: &Value) -> Vec<Value> {
    answer["items"].as_array().expect("items").clone()
}

#[test]
fn ml100k_recommendations_have_titles_and_leave_out_rated_items() {
    let dir = tempfile::tempdir().unwrap();
    let data = ml100k();
    train(
        dir.path(),
        "mf",
        &["mf", "--data", &data, "--split", "u1", "--epochs", "3"],
    );
    let run = dir.path().join("mf.json");
    let rated: HashSet<u64> = std::fs::read_to_string(format!("{data}/u1.base"))
        .unwrap()
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f[0] == "1").then(|| f[1].parse().unwrap())
        })
        .collect();
    assert_eq!(rated.len(), 135);

    // Every item, seen ones marked: titles decoded from latin-1, genres from u.genre.
    let all = predict_json(&run, &["--user", "1", "--top", "5000", "--include-seen"]);
    assert_eq!(all["exclude_seen"], false);
    assert_eq!(all["titles"], format!("{data}/u.item"));
    let by_item: HashMap<u64, Value> = items(&all)
        .into_iter()
        .map(|r| (r["item"].as_u64().unwrap(), r))
        .collect();
    assert_eq!(by_item[&543]["title"], "Misérables, Les (1995)");
    assert_eq!(
        by_item[&543]["genres"],
        serde_json::json!(["Drama", "Musical"])
    );
    assert_eq!(by_item[&1]["title"], "Toy Story (1995)");
    let marked: HashSet<u64> = by_item
        .iter()
        .filter(|(_, r)| r["seen"] == true)
        .map(|(&item, _)| item)
        .collect();
    assert_eq!(marked, rated);

    // The default: none of the 135, said so; the best raw score exceeds 5 and is shown as 5.
    let answer = predict_json(&run, &["--user", "1", "--top", "10"]);
    assert_eq!(answer["seen_items"], 135);
    let top = items(&answer);
    assert_eq!(top.len(), 10);
    assert!(top
        .iter()
        .all(|r| !rated.contains(&r["item"].as_u64().unwrap())));
    let best = &top[0];
    assert!(best["raw_score"].as_f64().unwrap() > 5.0, "{best}");
    assert_eq!(best["score"], 5.0);
    let (text, stderr) = predict_text(&run, &["--user", "1", "--top", "10"]);
    assert!(stderr.is_empty(), "{stderr}");
    assert!(
        text.starts_with(
            "top 10 items for user 1, excluding the 135 items user 1 rated in training"
        ),
        "{text}"
    );
    let title = best["title"].as_str().unwrap();
    let first_row = text.lines().nth(2).unwrap();
    assert!(
        first_row.contains(" 5.000* ") && first_row.contains(title),
        "{text}"
    );
    assert!(
        text.contains("* predicted scores above 5 shown as 5"),
        "{text}"
    );
}

/// A tiny ml-latest-small-style folder: ratings.csv (half stars) and movies.csv with CSV
/// quoting, UTF-8 titles and `|`-separated genres.
fn latest_small_fixture(dir: &Path) {
    let mut ratings = String::from("userId,movieId,rating,timestamp\n");
    for user in 1..=12u64 {
        for movie in [10u64, 20, 30, 40, 50, 60, 70, 80] {
            if (user + movie / 10) % 3 != 0 {
                let rating = 0.5 + ((user * 7 + movie) % 10) as f64 * 0.5;
                ratings += &format!("{user},{movie},{rating},{}\n", 964982703 + movie);
            }
        }
    }
    std::fs::write(dir.join("ratings.csv"), ratings).unwrap();
    std::fs::write(
        dir.join("movies.csv"),
        "movieId,title,genres\n\
         10,\"American President, The (1995)\",Comedy|Drama|Romance\n\
         20,Señorita Extraviada (2001),Documentary\n\
         30,\"\"\"Great Performances\"\" Cats (1998)\",Musical\n\
         40,Heat (1995),Action|Crime|Thriller\n\
         50,Sabrina (1995),Comedy|Romance\n\
         60,Tom and Huck (1995),Adventure|Children\n\
         70,Sudden Death (1995),Action\n\
         80,Untitled (2018),(no genres listed)\n",
    )
    .unwrap();
}

#[test]
fn latest_small_style_folder_recommendations_have_titles_and_genres() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("ml-latest-small");
    std::fs::create_dir(&data).unwrap();
    latest_small_fixture(&data);
    let data_arg = data.to_str().unwrap();
    train(
        dir.path(),
        "mf",
        &["mf", "--data", data_arg, "--split", "none", "--epochs", "2"],
    );
    let run = dir.path().join("mf.json");
    // User 1 rated 10, 30, 40, 60, 70 (user + movie/10 not a multiple of 3).
    let answer = predict_json(&run, &["--user", "1", "--top", "10"]);
    assert_eq!(answer["seen_items"], 5);
    let top = items(&answer);
    let ids: Vec<u64> = top.iter().map(|r| r["item"].as_u64().unwrap()).collect();
    let mut sorted = ids.clone();
    sorted.sort();
    assert_eq!(sorted, [20, 50, 80]);
    let titles: HashMap<u64, (&str, &Value)> = top
        .iter()
        .map(|r| {
            let id = r["item"].as_u64().unwrap();
            (id, (r["title"].as_str().unwrap(), &r["genres"]))
        })
        .collect();
    assert_eq!(titles[&20].0, "Señorita Extraviada (2001)");
    assert_eq!(titles[&20].1, &serde_json::json!(["Documentary"]));
    assert_eq!(titles[&50].1, &serde_json::json!(["Comedy", "Romance"]));
    assert_eq!(titles[&80].1, &serde_json::json!([]));
    let scale = &answer["scale"];
    assert_eq!(
        (scale["min"].as_f64(), scale["max"].as_f64()),
        (Some(0.5), Some(5.0))
    );

    let all = predict_json(&run, &["--user", "1", "--top", "10", "--include-seen"]);
    let quoted = items(&all)
        .into_iter()
        .find(|r| r["item"] == 10)
        .expect("item 10 with --include-seen");
    assert_eq!(quoted["title"], "American President, The (1995)");
    assert_eq!(quoted["seen"], true);
    let cats = items(&all).into_iter().find(|r| r["item"] == 30).unwrap();
    assert_eq!(cats["title"], "\"Great Performances\" Cats (1998)");

    // Training data moved away: leaving out rated items needs it, in one line naming the
    // ways out; --data finds it (and its titles) elsewhere; --include-seen goes without.
    let moved = dir.path().join("moved");
    std::fs::rename(&data, &moved).unwrap();
    let error = run_err(
        regulab()
            .arg("predict")
            .arg(&run)
            .args(["--device", "cpu", "--user", "1"]),
    );
    assert!(
        error.starts_with(
            "regulab: error: --user 1: cannot leave out the items the user rated in training:"
        ) && error.ends_with("give --data PATH (the training data) or --include-seen")
            && !error.contains('\n'),
        "{error}"
    );
    let again = predict_json(&run, &["--user", "1", "--data", moved.to_str().unwrap()]);
    assert_eq!(again["items"], answer["items"]);
    let (text, stderr) = predict_text(&run, &["--user", "1", "--include-seen"]);
    assert!(
        stderr.contains("warning: scores are not clipped"),
        "{stderr}"
    );
    assert!(!text.contains("title"), "{text}");
}

#[test]
fn synthetic_data_recommends_ids_without_titles() {
    let dir = tempfile::tempdir().unwrap();
    train(dir.path(), "mf", &["mf", "--epochs", "1"]);
    let run = dir.path().join("mf.json");
    let answer = predict_json(&run, &["--user", "1", "--top", "3"]);
    assert_eq!(answer["titles"], Value::Null);
    assert!(items(&answer).iter().all(|r| r["title"].is_null()));
    let (text, stderr) = predict_text(&run, &["--user", "1", "--top", "3"]);
    assert!(stderr.is_empty(), "{stderr}");
    assert_eq!(text.lines().nth(1), Some("rank      item   score"));
}
