//! Saved models: the files a completed run lists load in Python with `safetensors` and give
//! the run's test numbers there; `regulab eval` reproduces the run's final test metrics;
//! `regulab predict` answers in raw ids; bad requests are one-line errors.

mod common;
use common::*;
use serde_json::Value;
use std::path::Path;

/// Computes the test RMSE of a saved MF model in Python, from the file alone (weights, mean
/// and raw ids in its metadata) and u1.test.
const PYTHON_MF_RMSE: &str = r#"
import json, sys, torch
from safetensors import safe_open
from safetensors.torch import load_file
path, test = sys.argv[1], sys.argv[2]
weights = load_file(path)
with safe_open(path, framework="pt") as f:
    meta = json.loads(f.metadata()["regulab.model"])
users = {raw: i for i, raw in enumerate(meta["ids"]["users"])}
items = {raw: i for i, raw in enumerate(meta["ids"]["items"])}
untrained_u, untrained_i = set(meta["ids"]["untrained_users"]), set(meta["ids"]["untrained_items"])
mu = torch.tensor(meta["constants"]["global_mean"], dtype=torch.float32)
se, n = 0.0, 0
for line in open(test):
    u, i, r = line.split("\t")[:3]
    u, i, r = users.get(int(u)), items.get(int(i)), float(r)
    pred = mu.clone()
    if u is not None: pred += weights["user_bias"][u]
    if i is not None: pred += weights["item_bias"][i]
    if u is not None and i is not None and u not in untrained_u and i not in untrained_i:
        pred += weights["user_factors"][u] @ weights["item_factors"][i]
    se += (pred.item() - r) ** 2; n += 1
print(json.dumps({"rmse": (se / n) ** 0.5, "names": sorted(weights)}))
"#;

/// The MLP's test accuracy in Python with torch.nn.Linear layers loaded by name.
const PYTHON_MLP_ACCURACY: &str = r#"
import gzip, json, sys, torch
from safetensors.torch import load_file
from safetensors import safe_open
path, images, labels, limit = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
state = load_file(path)
with safe_open(path, framework="pt") as f:
    meta = json.loads(f.metadata()["regulab.model"])
sizes = [state[f"l_layers.{k}.weight"].shape for k in range(len(state) // 2)]
class Net(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.l_layers = torch.nn.ModuleList(torch.nn.Linear(s[1], s[0]) for s in sizes)
    def forward(self, x):
        for k, layer in enumerate(self.l_layers):
            x = layer(x)
            if k < len(self.l_layers) - 1: x = torch.relu(x)
        return x
net = Net(); net.load_state_dict(state)
x = torch.frombuffer(bytearray(gzip.open(images).read()[16:]), dtype=torch.uint8).float().view(-1, 784)[:limit] / 255.0
x = (x - meta["constants"]["pixel_mean"]) / meta["constants"]["pixel_std"] if meta["constants"]["pixel_std"] != 1.0 else x
y = torch.frombuffer(bytearray(gzip.open(labels).read()[8:]), dtype=torch.uint8).long()[:limit]
with torch.no_grad():
    print(json.dumps({"accuracy": (net(x).argmax(1) == y).float().mean().item()}))
"#;

fn python_json(code: &str, args: &[&str]) -> Value {
    let output = run_ok(
        std::process::Command::new(python())
            .arg("-c")
            .arg(code)
            .args(args),
    );
    serde_json::from_slice(&output.stdout).expect("python JSON")
}

fn model_file(run_path: &Path, run: &Value, role: &str) -> String {
    let models = run["models"].as_array().expect("models listed");
    let model = models
        .iter()
        .find(|m| m["role"] == role)
        .expect("role listed");
    run_path
        .parent()
        .unwrap()
        .join(model["file"].as_str().unwrap())
        .display()
        .to_string()
}

#[test]
fn mf_models_load_in_python_and_eval_reproduces_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let data = ml100k();
    let run = train(
        dir.path(),
        "mf",
        &[
            "mf",
            "--data",
            &data,
            "--split",
            "u1",
            "--epochs",
            "4",
            "--val-split",
            "0.1",
            "--penalty",
            "batch-l2",
            "--lambda",
            "0.05",
        ],
    );
    let run_path = dir.path().join("mf.json");
    let final_rmse = run["summary"]["final_test"]["rmse"].as_f64().unwrap();
    let selected_epoch = run["summary"]["selected_epoch"].as_u64().unwrap();
    assert_eq!(run["models"][1]["epoch"].as_u64(), Some(selected_epoch));

    // Python, from the file alone.
    let final_file = model_file(&run_path, &run, "final");
    let test = format!("{data}/u1.test");
    let python = python_json(PYTHON_MF_RMSE, &[&final_file, &test]);
    assert_close(
        python["rmse"].as_f64().unwrap(),
        final_rmse,
        1e-5,
        "Python RMSE of the final model",
    );
    assert_eq!(
        python["names"],
        serde_json::json!(["item_bias", "item_factors", "user_bias", "user_factors"])
    );

    // regulab eval: the run's own numbers, exactly.
    let output = run_ok(
        regulab()
            .args(["eval", "--json", "--device", "cpu"])
            .arg(&run_path),
    );
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["metrics"]["rmse"].as_f64(), Some(final_rmse));
    assert_eq!(
        report["metrics"]["mae"],
        run["summary"]["final_test"]["mae"]
    );
    assert_eq!(report["examples"], 20000);
    let output = run_ok(
        regulab()
            .args(["eval", "--json", "--weights", "selected", "--device", "cpu"])
            .arg(&run_path),
    );
    let selected: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(
        selected["metrics"]["rmse"],
        run["summary"]["test_at_selected"]["rmse"]
    );

    // predict: N distinct items in raw ids, none the user rated in u1.base (left out by
    // default), best raw score first, scores clipped to the training ratings' 1..5.
    let output = run_ok(
        regulab()
            .args(["predict", "--user", "1", "--top", "15", "--json"])
            .arg(&run_path),
    );
    let answer: Value = serde_json::from_slice(&output.stdout).unwrap();
    let items: Vec<u64> = answer["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["item"].as_u64().unwrap())
        .collect();
    assert_eq!(items.len(), 15);
    assert_eq!(
        items.iter().collect::<std::collections::HashSet<_>>().len(),
        15
    );
    let base = std::fs::read_to_string(format!("{data}/u1.base")).unwrap();
    let seen: std::collections::HashSet<u64> = base
        .lines()
        .filter_map(|l| {
            let f: Vec<&str> = l.split('\t').collect();
            (f[0] == "1").then(|| f[1].parse().unwrap())
        })
        .collect();
    assert!(items.iter().all(|i| !seen.contains(i)), "{items:?}");
    assert_eq!(answer["exclude_seen"], true);
    assert_eq!(answer["seen_items"].as_u64(), Some(seen.len() as u64));
    assert_eq!(answer["scale"], serde_json::json!({"min": 1.0, "max": 5.0}));
    let score = |r: &Value, key: &str| r[key].as_f64().unwrap();
    let raw: Vec<f64> = answer["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            assert_eq!(score(r, "score"), score(r, "raw_score").clamp(1.0, 5.0));
            score(r, "raw_score")
        })
        .collect();
    assert!(raw.windows(2).all(|w| w[0] >= w[1]), "{raw:?}");
    // Pairs: CSV, an unknown user predicted from the biases.
    let pairs = dir.path().join("pairs.txt");
    std::fs::write(&pairs, "user item\n1 1\n99999 1\n").unwrap();
    let output = run_ok(
        regulab()
            .args(["predict", "--pairs"])
            .arg(&pairs)
            .arg(&final_file),
    );
    let csv = String::from_utf8(output.stdout).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines[0], "user,item,prediction,trained");
    assert!(
        lines[1].starts_with("1,1,") && lines[1].ends_with(",true"),
        "{csv}"
    );
    assert!(
        lines[2].starts_with("99999,1,") && lines[2].ends_with(",false"),
        "{csv}"
    );

    // One-line errors.
    std::fs::write(&pairs, "1 1\nnot a pair\n").unwrap();
    let error = run_err(
        regulab()
            .args(["predict", "--pairs"])
            .arg(&pairs)
            .arg(&final_file),
    );
    assert!(error.contains("pairs.txt:2: expected USER ITEM"), "{error}");
    let error = run_err(
        regulab()
            .args(["eval", "--weights", "selected"])
            .arg(&final_file),
    );
    assert!(
        error.contains("--weights: chooses among a run document's models"),
        "{error}"
    );
    let error = run_err(
        regulab()
            .args(["predict", "--images"])
            .arg(&pairs)
            .arg(&run_path),
    );
    assert!(error.contains("is a matrix factorization model"), "{error}");
    let error = run_err(regulab().args(["eval", "--split", "u9"]).arg(&run_path));
    assert!(error.contains("--split u9"), "{error}");
}

#[test]
fn plain_mf_refuses_an_unknown_user() {
    let dir = tempfile::tempdir().unwrap();
    train(
        dir.path(),
        "plain",
        &[
            "mf",
            "--data",
            &ml100k(),
            "--split",
            "u1",
            "--epochs",
            "1",
            "--model",
            "plain",
        ],
    );
    let error = run_err(
        regulab()
            .args(["predict", "--user", "99999"])
            .arg(dir.path().join("plain.json")),
    );
    assert!(
        error.contains("--user 99999: the model never trained this user"),
        "{error}"
    );
}

#[test]
fn mlp_models_load_in_python_and_eval_reproduces_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let data = fashion_mnist();
    let run = train(
        dir.path(),
        "mlp",
        &[
            "mlp",
            "--data",
            &data,
            "--limit-train",
            "3000",
            "--limit-test",
            "1000",
            "--hidden",
            "64,32",
            "--epochs",
            "2",
            "--normalize",
        ],
    );
    let run_path = dir.path().join("mlp.json");
    let accuracy = run["summary"]["final_test"]["accuracy"].as_f64().unwrap();
    assert_eq!(
        run["models"].as_array().unwrap().len(),
        1,
        "no validation split: final model only"
    );
    let file = model_file(&run_path, &run, "final");
    let python = python_json(
        PYTHON_MLP_ACCURACY,
        &[
            &file,
            &format!("{data}/t10k-images-idx3-ubyte.gz"),
            &format!("{data}/t10k-labels-idx1-ubyte.gz"),
            "1000",
        ],
    );
    assert_close(
        python["accuracy"].as_f64().unwrap(),
        accuracy,
        1e-6,
        "Python accuracy (a float32 mean there)",
    );

    let output = run_ok(
        regulab()
            .args(["eval", "--json", "--device", "cpu"])
            .arg(&run_path),
    );
    let report: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["metrics"]["accuracy"].as_f64(), Some(accuracy));
    assert_eq!(report["examples"], 1000);

    let output = run_ok(
        regulab()
            .args(["predict", "--images"])
            .arg(format!("{data}/t10k-images-idx3-ubyte.gz"))
            .arg(&run_path),
    );
    let csv = String::from_utf8(output.stdout).unwrap();
    assert_eq!(csv.lines().count(), 10_001, "header and one line per image");
    assert!(csv.starts_with("image,class,p0,"));
    let error = run_err(
        regulab()
            .args(["eval", "--weights", "selected"])
            .arg(&run_path),
    );
    assert!(error.contains("has no selected model"), "{error}");
}
