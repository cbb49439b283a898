#!/usr/bin/env python3
"""Draw the curves of regulab run documents (schema_version 1 or 2), or a sweep summary.

Runs (one or several, overlaid):
  plot_curves.py RUN.json [RUN.json ...] -o OUT_PREFIX [--format png,svg] [--title T] [--steps]
                [--labels "L1;L2;..."]
writes
  OUT_PREFIX-losses.*   train base / regularization / total loss per epoch
  OUT_PREFIX-metric.*   train vs test metric per epoch (validation too when present),
                        the reported epoch marked (best validation, else last)
  OUT_PREFIX-norms.*    weight norm of each parameter per epoch
  OUT_PREFIX-cost-vs-accuracy.*   MLP runs only: test total loss and test accuracy
                        on twin axes

Sweep:
  plot_curves.py --sweep DIR/summary.json -o OUT_PREFIX [--x KEY]
writes
  OUT_PREFIX-sweep.*    selected and final test metric (mean +- std over seeds) against the
                        swept numeric value, one line per combination of the other
                        swept values

Legends name runs by the config values that differ between them (for example
`lambda=0.001, optimizer=adam`), or by file name when none differ, unless --labels
names them.
"""

import argparse
import json
import math
import os
import sys

import matplotlib

matplotlib.use("Agg")  # files only: no display on servers and CI
import matplotlib.lines  # noqa: E402
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402

PROG = "plot_curves.py"
SCHEMA_VERSIONS = (1, 2)
DPI = 100
# Config keys that name where results go or how chatty a run is: they differ between
# otherwise identical runs and would only clutter legends.
LEGEND_IGNORED_KEYS = {"output", "out", "output_dir", "out_dir", "quiet", "progress"}
LEGEND_MAX_KEYS = 4
# Metrics where a smaller number is better; anything else (accuracy) is maximized.
LOWER_IS_BETTER = {"rmse", "mae", "mse", "loss", "base_loss", "total_loss"}


class PlotError(Exception):
    """A problem with the input, reported as one line without a traceback."""


# ----------------------------------------------------------------------------- loading


def read_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise PlotError(f"{path}: cannot read: {e.strerror or e}") from None
    except UnicodeDecodeError as e:
        raise PlotError(f"{path}: not a regulab run JSON (not UTF-8 text: {e.reason})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as e:
        raise PlotError(f"{path}: malformed JSON at line {e.lineno} column {e.colno}: {e.msg}") from None


def check_header(path, doc, kind):
    what = "sweep summary" if kind == "regulab-sweep" else "run"
    if not isinstance(doc, dict):
        raise PlotError(f"{path}: not a regulab {what} JSON (top level is {type(doc).__name__}, expected an object)")
    found = doc.get("kind")
    if found != kind:
        if found is None:
            detail = f'no "kind" field, expected "{kind}"'
        else:
            detail = f'kind is {json.dumps(found)}, expected "{kind}"'
        if found == "regulab-sweep":
            detail += "; plot a sweep with --sweep"
        elif found == "regulab-run" and kind == "regulab-sweep":
            detail += "; plot a run without --sweep"
        raise PlotError(f"{path}: not a regulab {what} JSON ({detail})")
    version = doc.get("schema_version")
    if version not in SCHEMA_VERSIONS:
        raise PlotError(
            f"{path}: not a regulab {what} JSON (schema_version {json.dumps(version)}, "
            f"this script reads {', '.join(map(str, SCHEMA_VERSIONS))})"
        )


def num(x):
    """A finite float, or None: diverged runs record null (or NaN) losses, and those
    points are simply left out."""
    if isinstance(x, bool) or not isinstance(x, (int, float)):
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def obj(x):
    return x if isinstance(x, dict) else {}


class Run:
    def __init__(self, path, doc):
        self.path = path
        self.name = os.path.basename(path)
        self.command = doc.get("command")
        self.status = doc.get("status")
        self.message = doc.get("message")
        self.config = obj(doc.get("config"))
        self.dataset = obj(doc.get("dataset"))
        metric = doc.get("metric")
        if isinstance(metric, dict):
            # Version 2 names the metric with its direction.
            self.metric = metric.get("name") or "metric"
            self._lower = not metric.get("higher_is_better", False)
        else:
            self.metric = metric or {"mf": "rmse", "mlp": "accuracy"}.get(self.command, "rmse")
            self._lower = self.metric in LOWER_IS_BETTER
        epochs = doc.get("epochs")
        if epochs is None:
            epochs = []
        if not isinstance(epochs, list):
            raise PlotError(f'{path}: unexpected run JSON content ("epochs" is not a list)')
        self.epochs = [e for e in epochs if isinstance(e, dict) and num(e.get("epoch")) is not None]
        steps = doc.get("steps")
        self.steps = [s for s in steps if isinstance(s, dict)] if isinstance(steps, list) else []
        self.summary = obj(doc.get("summary"))
        self.label = self.name  # replaced by legend_labels()

    @property
    def lower_is_better(self):
        return self._lower

    def series(self, split, key):
        """(epochs, values) of epochs[*][split][key], skipping missing and null values."""
        xs, ys = [], []
        for e in self.epochs:
            part = e.get(split) if split else e
            y = num(obj(part).get(key)) if split else num(e.get(key))
            if y is not None:
                xs.append(num(e["epoch"]))
                ys.append(y)
        return xs, ys

    def has_split(self, split):
        return any(isinstance(e.get(split), dict) for e in self.epochs)

    def norm_names(self):
        names = []
        for e in self.epochs:
            for k in obj(e.get("weight_norms")):
                if k not in names:
                    names.append(k)
        return names

    def norm_series(self, name):
        xs, ys = [], []
        for e in self.epochs:
            y = num(obj(e.get("weight_norms")).get(name))
            if y is not None:
                xs.append(num(e["epoch"]))
                ys.append(y)
        return xs, ys

    def selected_test(self):
        """(epoch, value) of the test metric at the reported epoch: chosen on validation
        when the run has a validation split, else the last epoch. Never chosen on test."""
        xs, ys = self.series("test", self.metric)
        if not xs:
            return None
        selected = num(self.summary.get("selected_epoch"))
        if selected in xs:
            i = xs.index(selected)
            return xs[i], ys[i]
        return xs[-1], ys[-1]


def load_run(path):
    doc = read_json(path)
    check_header(path, doc, "regulab-run")
    try:
        return Run(path, doc)
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        raise PlotError(f"{path}: unexpected run JSON content ({e})") from None


# ----------------------------------------------------------------------------- labels


def fmt_value(v):
    if isinstance(v, bool):
        return "true" if v else "false"
    if v is None:
        return "none"
    if isinstance(v, float):
        return repr(v)
    if isinstance(v, (list, dict)):
        return json.dumps(v, separators=(",", ":"))
    return str(v)


def legend_labels(runs):
    """Name each run by the config values that differ between the runs. When the runs
    come from different commands only the flags they share are compared, otherwise the
    legend would list every model-specific flag."""
    if len(runs) == 1:
        runs[0].label = runs[0].name
        return
    merged = [dict({"command": r.command}, **r.config) for r in runs]
    keys = []
    for m in merged:
        for k in m:
            if k not in keys and k not in LEGEND_IGNORED_KEYS:
                keys.append(k)
    if len({r.command for r in runs}) > 1:
        keys = [k for k in keys if all(k in m for m in merged)]
    def partition(ks):
        return {tuple(json.dumps(m.get(k), sort_keys=True) for k in ks) for m in merged}

    differing = [k for k in keys if len(partition([k])) > 1]
    # A key whose value follows from the keys already chosen (an optimizer's default
    # lr or momentum) tells the reader nothing new; leave it out. "Follows" needs
    # evidence: runs that share the chosen values and agree on the key. When the chosen
    # keys already tell every run apart, each further difference is kept.
    chosen = []
    for k in differing:
        groups = len(partition(chosen))
        if len(partition(chosen + [k])) > groups or groups == len(runs):
            chosen.append(k)
    shown = chosen[:LEGEND_MAX_KEYS]
    names = [r.name for r in runs]
    for r, m in zip(runs, merged):
        if shown:
            parts = [f"{k}={fmt_value(m[k])}" for k in shown if k in m]
            label = ", ".join(parts)
            if len(chosen) > len(shown):
                label += ", ..."
        else:
            # Same file name in different folders: the path tells them apart.
            label = r.name if names.count(r.name) == 1 else r.path
        if r.status not in (None, "completed"):
            label += f" [{r.status}]"
        r.label = label


def default_title(runs):
    if len(runs) != 1:
        return None
    r = runs[0]
    parts = [p for p in (r.command, r.dataset.get("name"), r.name) if p]
    title = " | ".join(str(p) for p in parts)
    if r.status not in (None, "completed"):
        title += f" ({r.status}" + (f": {r.message}" if r.message else "") + ")"
    return title


# ----------------------------------------------------------------------------- figures


def colors(n):
    cycle = plt.rcParams["axes.prop_cycle"].by_key().get("color", ["C0"])
    return [cycle[i % len(cycle)] for i in range(n)]


def style_axes(ax, xlabel, ylabel):
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.grid(True, alpha=0.3)
    ax.tick_params(labelsize=8)


def integer_epochs(ax):
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))


def save(fig, prefix, suffix, formats, written):
    for fmt in formats:
        path = f"{prefix}-{suffix}.{fmt}"
        fig.savefig(path, dpi=DPI, bbox_inches="tight")
        written.append(path)
    plt.close(fig)


def finish(fig, title):
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()


def legend_below(fig, handles, labels, rows_of_panels=1):
    """A figure legend under the panels, for labels too long to fit inside one."""
    ncol = 2 if len(labels) > 3 else max(1, len(labels))
    fig.legend(handles, labels, fontsize=7, loc="lower center", ncol=ncol, frameon=False)
    legend_rows = math.ceil(len(labels) / ncol)
    height = fig.get_figheight()
    fig.tight_layout(rect=(0, min(0.5, (0.17 * legend_rows + 0.1) / height), 1, 1))


def style_key(entries):
    """Black legend entries that explain line styles when colour stands for the run."""
    return [matplotlib.lines.Line2D([], [], color="black", **kw) for _, kw in entries], [n for n, _ in entries]


def step_series(run, key):
    """Per-step losses on a global step axis. Step counters that restart each epoch
    are made global by adding the previous epochs' largest step."""
    rows = [(num(s.get("epoch")), num(s.get("step")), num(s.get(key))) for s in run.steps]
    rows = [t for t in rows if t[0] is not None and t[1] is not None]
    steps = [t[1] for t in rows]
    if any(b < a for a, b in zip(steps, steps[1:])):
        offset, last_epoch, epoch_max, shifted = 0.0, None, 0.0, []
        for e, s, y in rows:
            if e != last_epoch and last_epoch is not None:
                offset += epoch_max
                epoch_max = 0.0
            last_epoch = e
            epoch_max = max(epoch_max, s)
            shifted.append((e, s + offset, y))
        rows = shifted
    epoch_end = {}
    for e, s, _ in rows:
        epoch_end[e] = max(epoch_end.get(e, s), s)
    points = [(s, y) for _, s, y in rows if y is not None]
    return [p[0] for p in points], [p[1] for p in points], epoch_end


def plot_losses(runs, prefix, formats, title, use_steps, written):
    fig, axes = plt.subplots(1, 3, figsize=(9, 3))
    panels = [
        ("base_loss", "base loss"),
        ("reg_loss", "regularization loss"),
        ("total_loss", "total loss"),
    ]
    with_steps = use_steps and any(r.steps for r in runs)
    for ax, (key, name) in zip(axes, panels):
        for r, c in zip(runs, colors(len(runs))):
            xs, ys = r.series("train", key)
            if with_steps and r.steps:
                sx, sy, epoch_end = step_series(r, key)
                ax.plot(sx, sy, color=c, lw=0.8, alpha=0.45)
                # Epoch means sit at the last logged step of their epoch.
                pairs = [(epoch_end[x], y) for x, y in zip(xs, ys) if x in epoch_end]
                xs, ys = [p[0] for p in pairs], [p[1] for p in pairs]
            ax.plot(xs, ys, color=c, marker="o", ms=3, lw=1.4, label=r.label)
            if key == "reg_loss":
                # With decoupled or optimizer weight decay the penalty is not in the
                # loss; the implied loss shows what it would have added.
                wx, wy = r.series(None, "implied_weight_decay_loss")
                if any(y != 0.0 for y in wy) and not (with_steps and r.steps):
                    ax.plot(wx, wy, color=c, ls=":", lw=1.2, label=f"{r.label} (implied weight decay)")
        style_axes(ax, "step" if with_steps else "epoch", f"train {name}")
        if not with_steps:
            integer_epochs(ax)
        ax.set_title(name, fontsize=9)
    if title:
        fig.suptitle(title, fontsize=10)
    handles, labels = axes[1].get_legend_handles_labels()
    if len(runs) > 1 or len(handles) > len(runs):
        legend_below(fig, handles, labels)
    else:
        fig.tight_layout()
    save(fig, prefix, "losses", formats, written)


def plot_metric(runs, prefix, formats, title, written):
    metrics = []
    for r in runs:
        if r.metric not in metrics:
            metrics.append(r.metric)
    single = len(runs) == 1
    fig, axes = plt.subplots(1, len(metrics), figsize=(6.5 if len(metrics) == 1 else 9, 3.4), squeeze=False)
    palette = dict(zip([id(r) for r in runs], colors(len(runs))))
    any_validation = False
    for ax, metric in zip(axes[0], metrics):
        for r in [r for r in runs if r.metric == metric]:
            c = palette[id(r)]
            xs, ys = r.series("train", metric)
            ax.plot(xs, ys, color=c, ls="--", lw=1.3, label="train" if single else None)
            if r.has_split("validation"):
                any_validation = True
                xs, ys = r.series("validation", metric)
                ax.plot(xs, ys, color=c, ls=":", lw=1.3, label="validation" if single else None)
            xs, ys = r.series("test", metric)
            ax.plot(xs, ys, color=c, ls="-", lw=1.6, marker="o", ms=3, label="test" if single else r.label)
            best = r.selected_test()
            if best:
                ax.axvline(best[0], color=c, lw=0.8, alpha=0.35)
                ax.plot(
                    [best[0]], [best[1]], marker="*", ms=12, color=c, mec="black", mew=0.6, ls="none",
                    label=f"test {best[1]:.4g} at epoch {best[0]:g} (reported)" if single else None,
                )
        lower = next((r.lower_is_better for r in runs if r.metric == metric), metric in LOWER_IS_BETTER)
        better = "lower" if lower else "higher"
        style_axes(ax, "epoch", f"{metric} ({better} is better)")
        integer_epochs(ax)
        ax.set_title(f"train vs test {metric}", fontsize=9)
        if single:
            ax.legend(fontsize=7)
    if single:
        finish(fig, title)
    else:
        if title:
            fig.suptitle(title, fontsize=10)
        handles, labels = [], []
        for ax in axes[0]:
            h, lab = ax.get_legend_handles_labels()
            handles += h
            labels += lab
        entries = [("train", {"ls": "--"}), ("test", {"ls": "-"})]
        if any_validation:
            entries.append(("validation", {"ls": ":"}))
        entries.append(("reported epoch", {"ls": "none", "marker": "*", "ms": 9, "mfc": "white"}))
        key_handles, key_labels = style_key(entries)
        legend_below(fig, handles + key_handles, labels + key_labels)
    save(fig, prefix, "metric", formats, written)


def plot_norms(runs, prefix, formats, title, written):
    if len(runs) == 1:
        r = runs[0]
        names = r.norm_names()
        fig, ax = plt.subplots(figsize=(6.5, 3.2))
        for name, c in zip(names, colors(len(names))):
            xs, ys = r.norm_series(name)
            ax.plot(xs, ys, color=c, marker="o", ms=3, label=name)
        style_axes(ax, "epoch", "weight norm (Frobenius)")
        integer_epochs(ax)
        if names:
            ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
            if spans_decades([y for n in names for y in r.norm_series(n)[1]], 20.0):
                ax.set_yscale("log")
        ax.set_title("weight norms", fontsize=9)
        finish(fig, title)
        save(fig, prefix, "norms", formats, written)
        return
    # Several runs: one small panel per parameter, so that runs compare directly.
    names = []
    for r in runs:
        for n in r.norm_names():
            if n not in names:
                names.append(n)
    per_row = min(4, max(1, len(names)))
    rows = max(1, math.ceil(len(names) / per_row))
    fig, axes = plt.subplots(rows, per_row, figsize=(9, 2.6 * rows + 0.4), squeeze=False)
    palette = colors(len(runs))
    for i, ax in enumerate(axes.flat):
        if i >= len(names):
            ax.axis("off")
            continue
        for r, c in zip(runs, palette):
            xs, ys = r.norm_series(names[i])
            if xs:
                ax.plot(xs, ys, color=c, marker="o", ms=2.5, lw=1.2, label=r.label)
        style_axes(ax, "epoch", "norm" if i % per_row == 0 else "")
        integer_epochs(ax)
        ax.set_title(names[i], fontsize=8)
    handles, labels = [], []
    for ax in axes.flat:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    if title:
        fig.suptitle(title, fontsize=10)
    legend_below(fig, handles, labels)
    save(fig, prefix, "norms", formats, written)


def plot_cost_vs_accuracy(runs, prefix, formats, title, written):
    mlp = [r for r in runs if r.metric == "accuracy"]
    if not mlp:
        return
    fig, ax = plt.subplots(figsize=(6.5, 3.2))
    twin = ax.twinx()
    palette = dict(zip([id(r) for r in runs], colors(len(runs))))
    single = len(mlp) == 1
    for r in mlp:
        # One run: a colour per axis. Several: a colour per run, a line style per axis.
        loss_color, acc_color = ("C0", "C3") if single else (palette[id(r)], palette[id(r)])
        name = "" if single else f"{r.label}: "
        xs, ys = r.series("test", "total_loss")
        if not xs:
            xs, ys = r.series("test", "loss")
        ax.plot(xs, ys, color=loss_color, ls="-", marker="o", ms=3, label=f"{name}test total loss (left)")
        xs, ys = r.series("test", "accuracy")
        twin.plot(xs, ys, color=acc_color, ls="--", marker="s", ms=3, label=f"{name}test accuracy (right)")
    style_axes(ax, "epoch", "test total loss")
    twin.set_ylabel("test accuracy")
    if single:
        ax.yaxis.label.set_color("C0")
        twin.yaxis.label.set_color("C3")
    twin.tick_params(labelsize=8)
    integer_epochs(ax)
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = twin.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, fontsize=7, loc="center right")
    ax.set_title("test cost vs test accuracy", fontsize=9)
    finish(fig, title)
    save(fig, prefix, "cost-vs-accuracy", formats, written)


# ----------------------------------------------------------------------------- sweeps


def spans_decades(values, ratio=10.0):
    positive = [v for v in values if v is not None and v > 0]
    return len(positive) >= 2 and max(positive) / min(positive) >= ratio


def is_number(v):
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def plot_sweep(path, prefix, formats, title, x_key, written):
    doc = read_json(path)
    check_header(path, doc, "regulab-sweep")
    try:
        swept = [k for k in doc.get("swept") or [] if isinstance(k, str)]
        metric_doc = doc.get("metric")
        if isinstance(metric_doc, dict):
            metric = metric_doc.get("name") or "metric"
            lower = not metric_doc.get("higher_is_better", False)
        else:
            metric = metric_doc or "metric"
            lower = metric in LOWER_IS_BETTER
        groups = [g for g in doc.get("groups") or [] if isinstance(g, dict)]
        runs = [r for r in doc.get("runs") or [] if isinstance(r, dict)]
    except (TypeError, AttributeError) as e:
        raise PlotError(f"{path}: unexpected sweep JSON content ({e})") from None
    if not groups:
        # No seeds swept: every run is its own group.
        groups = [
            {
                "values": obj(r.get("values")),
                "runs": 1,
                "test_at_selected_mean": r.get("test_at_selected"),
                "test_at_selected_std": 0.0,
                "final_test_mean": r.get("final_test"),
                "final_test_std": 0.0,
            }
            for r in runs
        ]
    if not groups:
        raise PlotError(f"{path}: the sweep has no runs to plot")
    group_keys = [k for k in swept if any(k in obj(g.get("values")) for g in groups)]
    if not group_keys:
        group_keys = []
        for g in groups:
            for k in obj(g.get("values")):
                if k not in group_keys:
                    group_keys.append(k)

    def values_of(key):
        return [obj(g.get("values")).get(key) for g in groups]

    if x_key is None:
        numeric = [k for k in group_keys if all(is_number(v) for v in values_of(k)) and len(set(values_of(k))) > 1]
        varying = [k for k in group_keys if len({json.dumps(v) for v in values_of(k)}) > 1]
        x_key = (numeric or varying or group_keys or [None])[0]
        if x_key is None:
            raise PlotError(f"{path}: nothing was swept (no values to put on the x axis)")
    elif x_key not in group_keys:
        raise PlotError(
            f"{path}: --x {x_key}: the sweep's groups do not vary it (they vary: {', '.join(group_keys) or 'nothing'};"
            " seeds are averaged)"
        )
    numeric_x = all(is_number(v) for v in values_of(x_key))
    others = [k for k in group_keys if k != x_key]

    lines = {}
    for g in groups:
        values = obj(g.get("values"))
        key = tuple((k, json.dumps(values.get(k), sort_keys=True)) for k in others)
        lines.setdefault(key, []).append(g)
    categories = []
    if not numeric_x:
        for v in values_of(x_key):
            if fmt_value(v) not in categories:
                categories.append(fmt_value(v))
    xs_all = [float(v) for v in values_of(x_key)] if numeric_x else []
    log_x = numeric_x and spans_decades(xs_all)
    positive = [v for v in xs_all if v > 0]
    # A log axis cannot show 0; it goes one decade left of the smallest positive value,
    # drawn as a hollow, unconnected marker behind a dotted break line.
    zero_at = min(positive) / 10.0 if log_x else 0.0

    def x_pos(v):
        if not numeric_x:
            return float(categories.index(fmt_value(v)))
        v = float(v)
        return zero_at if (log_x and v <= 0) else v

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.2), sharey=True)
    palette = colors(len(lines))
    better = "lower" if lower else "higher"
    seeds = max((num(g.get("runs")) or 1) for g in groups)
    for ax, which in zip(axes, ("test_at_selected", "final_test")):
        for (key, members), c in zip(lines.items(), palette):
            label = ", ".join(f"{k}={fmt_value(json.loads(v))}" for k, v in key) or metric
            pts = []
            for g in members:
                m = num(g.get(f"{which}_mean"))
                if m is None:
                    continue
                s = num(g.get(f"{which}_std")) or 0.0
                pts.append((x_pos(obj(g.get("values")).get(x_key)), m, s, float(obj(g.get("values")).get(x_key)) <= 0 if numeric_x else False))
            pts.sort()
            line = [p for p in pts if not (log_x and p[3])]
            zero = [p for p in pts if log_x and p[3]]
            if line:
                ax.errorbar(
                    [p[0] for p in line], [p[1] for p in line], yerr=[p[2] for p in line],
                    color=c, marker="o", ms=4, lw=1.4, capsize=3, label=label,
                )
            for p in zero:
                ax.errorbar([p[0]], [p[1]], yerr=[p[2]], color=c, marker="o", ms=5, mfc="white", capsize=3, ls="none",
                            label=None if line else label)
        if log_x:
            ax.set_xscale("log")
            has_zero = any(v <= 0 for v in xs_all)
            if has_zero:
                ax.axvline(zero_at * math.sqrt(10.0), color="gray", ls=":", lw=1)
            # Tick the swept values themselves ("0.001", not "10^-3"); too many would collide.
            ticks = sorted(set(positive))
            if len(ticks) <= 10:
                ax.set_xticks(([zero_at] if has_zero else []) + ticks)
                ax.set_xticklabels((["0"] if has_zero else []) + [fmt_value(t) for t in ticks])
                ax.xaxis.set_minor_locator(matplotlib.ticker.NullLocator())
        elif not numeric_x:
            ax.set_xticks(range(len(categories)))
            ax.set_xticklabels(categories)
        style_axes(ax, x_key, f"test {metric} ({better} is better)" if which == "test_at_selected" else "")
        spread = f", mean ± std over {seeds:g} {'seeds' if 'seed' in swept else 'runs'}" if seeds > 1 else ""
        name = "at the reported epoch" if which == "test_at_selected" else "at the last epoch"
        ax.set_title(f"test {metric} {name}{spread}", fontsize=9)
    if len(lines) > 1 or others:
        axes[1].legend(fontsize=7)
    finish(fig, title or f"{doc.get('command') or 'regulab'} sweep over {', '.join(swept or group_keys)}")
    save(fig, prefix, "sweep", formats, written)


# ----------------------------------------------------------------------------- main


def parse_args(argv):
    p = argparse.ArgumentParser(
        prog=PROG,
        description=__doc__.split("\n\n")[0],
        epilog=__doc__.split("\n\n", 1)[1],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("runs", nargs="*", metavar="RUN.json", help="run documents to overlay")
    p.add_argument("-o", "--output", required=True, metavar="OUT_PREFIX", help="prefix of the figure files")
    p.add_argument("--format", default="png", help="comma-separated figure formats: png, svg, pdf (default png)")
    p.add_argument("--title", help="figure title (default: command, data set and file for a single run)")
    p.add_argument("--steps", action="store_true", help="draw the per-step losses too (x axis in steps)")
    p.add_argument("--labels", metavar="L1;L2;...",
                   help="legend labels for the runs, ';'-separated, one per run in order (default: the config "
                        "values that differ between them)")
    p.add_argument("--sweep", metavar="SUMMARY.json", help="plot a sweep's summary.json instead of runs")
    p.add_argument("--x", dest="x_key", metavar="KEY", help="sweep: swept key for the x axis (default: first numeric one)")
    args = p.parse_args(argv)
    formats = [f.strip().lower().lstrip(".") for f in args.format.split(",") if f.strip()]
    unknown = [f for f in formats if f not in ("png", "svg", "pdf")]
    if unknown or not formats:
        p.error(f"--format: unknown format {', '.join(unknown) or '(none)'}; use png, svg or pdf")
    args.formats = formats
    args.label_list = None
    if args.labels is not None:
        if args.sweep:
            p.error("--labels names runs; a sweep plot labels its lines by the swept values")
        args.label_list = [part.strip() for part in args.labels.split(";")]
        if len(args.label_list) != len(args.runs):
            p.error(f"--labels: {len(args.label_list)} labels for {len(args.runs)} runs")
    if args.sweep and args.runs:
        p.error("give either run files or --sweep SUMMARY.json, not both")
    if not args.sweep and not args.runs:
        p.error("give one or more RUN.json files, or --sweep SUMMARY.json")
    return args


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    written = []
    try:
        out_dir = os.path.dirname(args.output)
        if out_dir:
            os.makedirs(out_dir, exist_ok=True)
        if args.sweep:
            plot_sweep(args.sweep, args.output, args.formats, args.title, args.x_key, written)
        else:
            runs = [load_run(path) for path in args.runs]
            wanted = dict(zip(map(id, runs), args.label_list)) if args.label_list else {}
            empty = [r for r in runs if not r.epochs]
            for r in empty:
                print(f"{PROG}: warning: {r.path}: no epochs recorded (status {r.status}); nothing to draw for it",
                      file=sys.stderr)
            runs = [r for r in runs if r.epochs]
            if not runs:
                raise PlotError("no run has any epochs to plot")
            legend_labels(runs)
            for r in runs:
                if id(r) in wanted:
                    r.label = wanted[id(r)] + (f" [{r.status}]" if r.status not in (None, "completed") else "")
            title = args.title if args.title is not None else default_title(runs)
            plot_losses(runs, args.output, args.formats, title, args.steps, written)
            plot_metric(runs, args.output, args.formats, title, written)
            plot_norms(runs, args.output, args.formats, title, written)
            plot_cost_vs_accuracy(runs, args.output, args.formats, title, written)
    except PlotError as e:
        print(f"{PROG}: error: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        print(f"{PROG}: error: {e.filename or args.output}: {e.strerror or e}", file=sys.stderr)
        return 1
    for path in written:
        print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
