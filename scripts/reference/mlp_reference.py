#!/usr/bin/env python3
"""Reference MLP classifier (the lecture's MNIST network) in Python PyTorch, for parity with
`regulab mlp`.

Same libtorch operations and random draws as the Rust trainer, in the same order, so that
on the CPU with the same thread count the per-epoch losses agree to float rounding. Works
on MNIST and Fashion-MNIST (same IDX format).

Example:
  python scripts/reference/mlp_reference.py --data /path/fashion-mnist --limit-train 5000 \\
      --limit-test 1000 --epochs 2 --threads 1 --out runs/mlp_ref.json
"""

import argparse
import gzip
import math
import os
import struct
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

PENALTIES = ("none", "l2", "norm", "l1")
DEFAULT_SCALE = {"l2": "dataset", "norm": "none", "l1": "dataset", "none": "none"}
ACTIVATIONS = {"relu": torch.relu, "sigmoid": torch.sigmoid, "tanh": torch.tanh}
N_CLASSES = 10


def hidden_sizes(text):
    """'512,256,128' -> [512, 256, 128]; '' -> [] (no hidden layer: softmax regression)."""
    if not text.strip():
        return []
    try:
        sizes = [int(part) for part in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated sizes, got {text!r}")
    if any(size <= 0 for size in sizes):
        raise argparse.ArgumentTypeError(f"layer sizes must be positive, got {text!r}")
    return sizes


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="Python PyTorch reference for `regulab mlp` (fully connected classifier\n"
                    "on MNIST-format IDX data), for exact parity tests.",
        epilog=__doc__.split("Example:", 1)[1].join(["example:", ""]),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    data = parser.add_argument_group("data")
    data.add_argument("--data", required=True, metavar="DIR",
                      help="directory with train-images-idx3-ubyte, train-labels-idx1-ubyte, "
                           "t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte (raw or .gz)")
    data.add_argument("--limit-train", type=common.positive_int, default=None, metavar="N",
                      help="use the first N training examples in file order (default: all)")
    data.add_argument("--limit-test", type=common.positive_int, default=None, metavar="N",
                      help="use the first N test examples in file order (default: all)")
    model = parser.add_argument_group("model")
    model.add_argument("--hidden", type=hidden_sizes, default="512,256,128",
                       help="hidden layer sizes, comma separated (default: %(default)s)")
    model.add_argument("--activation", choices=tuple(ACTIVATIONS), default="relu",
                       help="hidden activation (default: %(default)s)")
    model.add_argument("--loss", choices=("ce", "mse"), default="ce",
                       help="ce: softmax cross-entropy; mse: quadratic cost on sigmoid outputs "
                            "against one-hot labels, 0.5 * sum over classes, mean over examples (default: %(default)s)")
    common.add_optimizer_args(parser, default_lr=0.001)
    pen = parser.add_argument_group("penalty")
    pen.add_argument("--penalty", choices=PENALTIES, default="none",
                     help="explicit penalty on the weights added to the loss (default: %(default)s)")
    pen.add_argument("--lambda", dest="lam", type=float, default=0.0, help="penalty strength (default: %(default)s)")
    pen.add_argument("--penalty-scale", choices=common.PENALTY_SCALES, default=None,
                     help="divide the penalty by the training set size, the batch size or 1 "
                          "(default per penalty: l2 dataset, norm none, l1 dataset)")
    pen.add_argument("--penalize-bias", action="store_true",
                     help="also penalize the biases")
    common.add_common_run_args(parser, default_batch=128, default_epochs=2)
    args = parser.parse_args(argv)
    common.check_optimizer_args(parser, args)
    common.check_penalty_args(parser, args)
    return args


# ----------------------------------------------------------------------------- data

def read_idx(directory, stem, expected_magic):
    """Reads an IDX file `stem` or `stem.gz` into a uint8 numpy array."""
    path = os.path.join(directory, stem)
    if os.path.exists(path):
        with open(path, "rb") as f:
            raw = f.read()
    elif os.path.exists(path + ".gz"):
        with gzip.open(path + ".gz", "rb") as f:
            raw = f.read()
    else:
        sys.exit(f"error: neither {path} nor {path}.gz exists")
    # Header: big-endian magic (0x0000 0x08 ndim for unsigned bytes), then ndim sizes.
    magic, = struct.unpack(">I", raw[:4])
    if magic != expected_magic:
        sys.exit(f"error: {path}: magic {magic:#x}, expected {expected_magic:#x}")
    ndim = magic & 0xFF
    dims = struct.unpack(f">{ndim}I", raw[4:4 + 4 * ndim])
    offset = 4 + 4 * ndim
    count = int(np.prod(dims))
    if len(raw) - offset != count:
        sys.exit(f"error: {path}: {len(raw) - offset} data bytes, header says {count}")
    return np.frombuffer(raw, dtype=np.uint8, offset=offset).reshape(dims)


def load_part(directory, prefix, limit):
    images = read_idx(directory, f"{prefix}-images-idx3-ubyte", 0x803)
    labels = read_idx(directory, f"{prefix}-labels-idx1-ubyte", 0x801)
    if images.shape[0] != labels.shape[0]:
        sys.exit(f"error: {prefix}: {images.shape[0]} images but {labels.shape[0]} labels")
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    n = images.shape[0]
    # uint8 -> float32 -> / 255.0 as separate libtorch ops, as the Rust loader does
    # (dividing in float32 by the scalar 255.0; not a float64 division cast down).
    x = torch.from_numpy(images.reshape(n, -1).copy()).to(torch.float32) / 255.0
    y = torch.from_numpy(labels.astype(np.int64))
    return x, y


# ----------------------------------------------------------------------------- model

def create_params(sizes, seed, device):
    """PyTorch-Linear-style uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)) init, layer by layer,
    weight before bias: this order fixes which uniform draws land in which tensor. Drawn on
    the CPU and then moved (as Rust does), so a seed means the same weights on every device."""
    torch.manual_seed(seed)
    params = {}
    for layer, (fan_in, fan_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        bound = 1.0 / math.sqrt(fan_in)
        params[f"l_layers.{layer}.weight"] = torch.zeros(fan_out, fan_in).uniform_(-bound, bound)
        params[f"l_layers.{layer}.bias"] = torch.zeros(fan_out).uniform_(-bound, bound)
    return {name: p.to(device).requires_grad_() for name, p in params.items()}


def forward(params, n_layers, activation, x):
    h = x
    for layer in range(n_layers - 1):
        h = activation(F.linear(h, params[f"l_layers.{layer}.weight"],
                                params[f"l_layers.{layer}.bias"]))
    last = n_layers - 1
    return F.linear(h, params[f"l_layers.{last}.weight"], params[f"l_layers.{last}.bias"])


def base_loss(kind, z, y):
    if kind == "ce":
        return F.cross_entropy(z, y)
    # Quadratic cost (Nielsen's): sigmoid outputs against one-hot targets.
    a = torch.sigmoid(z)
    onehot = F.one_hot(y, N_CLASSES).to(torch.float32)
    return 0.5 * (a - onehot).pow(2).sum(1).mean()


def penalty(params, args, divisor):
    """Penalty tensor (float32, 0-dim) over the weights (and biases with --penalize-bias),
    summed left to right in natural name order, then times one float coefficient."""
    zero = torch.zeros((), device=next(iter(params.values())).device)
    if args.penalty == "none" or args.lam == 0.0:
        return zero
    terms = [common.penalty_term(args.penalty, p) for name, p in common.sorted_params(params)
             if not name.endswith("bias") or args.penalize_bias]
    if not terms:
        return zero
    return common.sum_left_to_right(terms) * common.penalty_coefficient(args.penalty, args.lam, divisor)


def evaluate(params, n_layers, activation, args, weight_reg, x, y):
    """Loss and accuracy on the whole set in one forward pass; `weight_reg` is the penalty
    of the current weights (the same for every split), added in f64 as Rust does."""
    with torch.no_grad():
        z = forward(params, n_layers, activation, x)
        base = float(base_loss(args.loss, z, y).item())
        correct = int((z.argmax(1) == y).sum().item())
    return {"loss": base, "base_loss": base, "reg_loss": weight_reg,
            "total_loss": base + weight_reg, "accuracy": correct / y.shape[0]}


# ----------------------------------------------------------------------------- main

def main(argv=None):
    args = parse_args(argv)
    device = common.setup_torch(args)
    scale = args.penalty_scale or DEFAULT_SCALE[args.penalty]

    x_train, y_train = load_part(args.data, "train", args.limit_train)
    x_test, y_test = load_part(args.data, "t10k", args.limit_test)
    n_train = x_train.shape[0]
    x_train, y_train = x_train.to(device), y_train.to(device)
    x_test, y_test = x_test.to(device), y_test.to(device)
    divisor = {"dataset": float(n_train), "batch": float(args.batch_size), "none": 1.0}[scale]

    sizes = [x_train.shape[1]] + args.hidden + [N_CLASSES]
    n_layers = len(sizes) - 1
    activation = ACTIVATIONS[args.activation]
    params = create_params(sizes, args.seed, device)
    opt = common.build_optimizer(args, [p for _, p in common.sorted_params(params)])

    scheduler = common.build_scheduler(args, opt)
    epochs = []
    for epoch in range(1, args.epochs + 1):
        lr = opt.param_groups[0]["lr"]
        common.synchronize(device)
        start = time.perf_counter()
        # Drawn on the CPU (the same batch order on every device), then moved.
        perm = torch.randperm(n_train).to(device)
        # base, reg, total summed in float64 on the device (no host sync per step), as Rust.
        sums = torch.zeros(3, dtype=torch.float64, device=device)
        steps = 0
        for s in range(0, n_train, args.batch_size):
            idx = perm[s:s + args.batch_size]
            xb = x_train.index_select(0, idx)
            yb = y_train.index_select(0, idx)
            z = forward(params, n_layers, activation, xb)
            base = base_loss(args.loss, z, yb)
            reg = penalty(params, args, divisor)
            loss = base + reg
            opt.zero_grad()
            loss.backward()
            opt.step()
            sums += torch.stack([base.detach(), reg.detach(), loss.detach()]).double()
            steps += 1
        means = (sums / steps).tolist()
        if scheduler is not None:
            scheduler.step()
        common.synchronize(device)
        seconds = time.perf_counter() - start

        with torch.no_grad():
            weight_reg = float(penalty(params, args, divisor).item())
        train = {
            "base_loss": means[0], "reg_loss": means[1], "total_loss": means[2],
            "accuracy": evaluate(params, n_layers, activation, args, weight_reg,
                                 x_train, y_train)["accuracy"],
        }
        test = evaluate(params, n_layers, activation, args, weight_reg, x_test, y_test)
        epochs.append({
            "epoch": epoch,
            "train": train,
            "test": test,
            "weight_norms": common.weight_norms(params),
            "implied_weight_decay_loss": common.implied_weight_decay_loss(params, args.weight_decay),
            "lr": lr,
            "seconds": seconds,
        })
        if not args.quiet:
            print(f"epoch {epoch:3d}  train loss {train['total_loss']:.5f} (base "
                  f"{train['base_loss']:.5f} reg {train['reg_loss']:.5f}) acc {train['accuracy']:.4f}  "
                  f"test loss {test['loss']:.5f} acc {test['accuracy']:.4f}  {seconds:.2f}s",
                  file=sys.stderr)

    config = common.config_of(
        args, penalty_scale=scale, n_train=n_train, n_test=int(x_test.shape[0]), sizes=sizes,
        penalty_divisor=divisor, parameters=[name for name, _ in common.sorted_params(params)])
    common.write_run({"epochs": epochs, "config": config}, args.out)


if __name__ == "__main__":
    main()
