#!/usr/bin/env python3
"""Reference matrix factorization in Python PyTorch, for parity with `regulab mf`.

It performs the same libtorch operations and random draws as the Rust trainer, in the same
order, so that on the CPU with the same thread count the per-epoch losses agree to float
rounding. Every step below that looks arbitrary (parameter order, `* std + 0.0`, the order
of the penalty arithmetic) is there because the Rust code does exactly that.

Example:
  python scripts/reference/mf_reference.py --data /path/ml-100k --split u1 --epochs 5 \\
      --optimizer adam --lr 0.01 --threads 1 --out runs/mf_ref.json
"""

import argparse
import math
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import common  # noqa: E402

PENALTIES = ("none", "batch-l2", "frobenius", "l2", "norm", "l1")
# Divisor used when --penalty-scale is not given: per batch for the per-batch form (its
# only scale), the number of training ratings for the sum-of-squares and L1 forms, 1 for
# the norm.
DEFAULT_SCALE = {"batch-l2": "batch", "frobenius": "dataset", "l2": "dataset",
                 "norm": "none", "l1": "dataset", "none": "none"}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description="Python PyTorch reference for `regulab mf` (biased or plain matrix\n"
                    "factorization on MovieLens official splits), for exact parity tests.",
        epilog=__doc__.split("Example:", 1)[1].join(["example:", ""]),
        formatter_class=argparse.RawDescriptionHelpFormatter)
    data = parser.add_argument_group("data")
    data.add_argument("--data", required=True, metavar="DIR",
                      help="ml-100k directory holding <split>.base and <split>.test")
    data.add_argument("--split", default="u1",
                      help="official split name: reads <split>.base and <split>.test (default: %(default)s)")
    model = parser.add_argument_group("model")
    model.add_argument("--model", choices=("biased", "plain"), default="biased",
                       help="biased: mu + b_u + b_i + p.q; plain: p.q (default: %(default)s)")
    model.add_argument("--dim", type=common.positive_int, default=16, help="latent dimension (default: %(default)s)")
    model.add_argument("--init-std", type=float, default=0.1,
                       help="standard deviation of the normal factor initialisation (default: %(default)s)")
    model.add_argument("--sparse", action="store_true",
                       help="nn.Embedding(sparse=True) tables (biases as one-column tables): "
                            "row-sparse gradients; sgd steps as usual, adam becomes "
                            "torch.optim.SparseAdam")
    common.add_optimizer_args(parser, default_lr=0.01)
    pen = parser.add_argument_group("penalty")
    pen.add_argument("--penalty", choices=PENALTIES, default="none",
                     help="explicit penalty added to the loss (l2 is an alias of frobenius) (default: %(default)s)")
    pen.add_argument("--lambda", dest="lam", type=float, default=0.0,
                     help="penalty strength (default: %(default)s)")
    pen.add_argument("--penalty-scale", choices=common.PENALTY_SCALES, default=None,
                     help="divide the penalty by the training set size, the batch size or 1 "
                          "(default per penalty: batch-l2 batch, frobenius/l2 dataset, "
                          "norm none, l1 dataset)")
    pen.add_argument("--penalize-bias", action="store_true",
                     help="also penalize the user and item biases (biased model)")
    common.add_common_run_args(parser, default_batch=1024, default_epochs=3)
    args = parser.parse_args(argv)
    common.check_optimizer_args(parser, args)
    common.check_penalty_args(parser, args)
    check_sparse_args(parser, args)
    if args.penalty == "batch-l2" and args.penalty_scale not in (None, "batch"):
        parser.error("--penalty-scale: batch-l2 is defined per batch (divided by the batch's "
                     "size); it takes no other scale")
    return args


def check_sparse_args(parser, args):
    """What regulab's --sparse accepts: updates that leave unused rows untouched."""
    if not args.sparse:
        return
    if args.optimizer not in ("sgd", "adam"):
        parser.error("--sparse needs --optimizer sgd or adam (SparseAdam)")
    if args.momentum != 0 or args.weight_decay != 0 or args.amsgrad:
        parser.error("--sparse needs no --momentum, --weight-decay or --amsgrad")
    if args.penalty not in ("none", "batch-l2"):
        parser.error("--sparse needs a row-local penalty (batch-l2) or none")


# ----------------------------------------------------------------------------- data

def read_ratings(path, user_index, item_index):
    """Reads a tab-separated MovieLens file (user, item, rating, timestamp) in file order.

    Ids become dense indices in order of first appearance; the maps are shared between the
    train and test files and the train file is read first, so test-only ids get the highest
    indices (the Rust IdMap rule).
    """
    users, items, ratings = [], [], []
    with open(path) as f:
        for line_no, line in enumerate(f, 1):
            line = line.rstrip("\r\n")
            if not line.strip():
                continue
            fields = line.split("\t")
            if len(fields) < 3:
                sys.exit(f"error: {path}:{line_no}: expected user, item, rating, timestamp")
            user, item = int(fields[0]), int(fields[1])
            users.append(user_index.setdefault(user, len(user_index)))
            items.append(item_index.setdefault(item, len(item_index)))
            ratings.append(float(fields[2]))
    return (torch.tensor(users, dtype=torch.int64), torch.tensor(items, dtype=torch.int64),
            torch.tensor(ratings, dtype=torch.float32))


def load_split(directory, split):
    user_index, item_index = {}, {}
    train = read_ratings(os.path.join(directory, f"{split}.base"), user_index, item_index)
    n_train_users, n_train_items = len(user_index), len(item_index)
    test = read_ratings(os.path.join(directory, f"{split}.test"), user_index, item_index)
    return train, test, len(user_index), len(item_index), n_train_users, n_train_items


# ----------------------------------------------------------------------------- model

def create_params(n_users, n_items, args, device):
    """Seeded parameter creation; creation order fixes which normal draws go where.

    Drawn on the CPU and then moved, as Rust does, so that a seed gives the same initial
    weights on every device.
    """
    torch.manual_seed(args.seed)

    def normal(rows):
        # tch's Randn init is literally `randn * stdev + mean`, with mean 0.0. The `+ 0.0`
        # cannot change a value except -0.0 -> +0.0, but it is kept to mirror the op list.
        return torch.randn(rows, args.dim) * args.init_std + 0.0

    params = {"user_factors": normal(n_users), "item_factors": normal(n_items)}
    if args.model == "biased":
        params["user_bias"] = torch.zeros(n_users)
        params["item_bias"] = torch.zeros(n_items)
    return {name: p.to(device).requires_grad_() for name, p in params.items()}


def sparse_tables(params):
    """nn.Embedding(sparse=True) modules over the created values: factor tables as they are,
    bias vectors as one-column tables (the usual way to write per-user biases in PyTorch)."""
    return {name: torch.nn.Embedding.from_pretrained(
                p.detach().clone() if p.dim() == 2 else p.detach().clone().unsqueeze(1),
                freeze=False, sparse=True)
            for name, p in params.items()}


def sparse_predict(tables, mu, u, i):
    """The training forward pass through the embedding modules (row-sparse gradients)."""
    rows = {"user_factors": tables["user_factors"](u), "item_factors": tables["item_factors"](i)}
    dot = (rows["user_factors"] * rows["item_factors"]).sum(1)
    if mu is None:
        return dot, rows
    rows["user_bias"] = tables["user_bias"](u).squeeze(1)
    rows["item_bias"] = tables["item_bias"](i).squeeze(1)
    return mu + rows["user_bias"] + rows["item_bias"] + dot, rows


def build_sparse_optimizer(args, params):
    """torch.optim.SGD (plain) or torch.optim.SparseAdam, the optimizers that take sparse
    gradients."""
    if args.optimizer == "sgd":
        return torch.optim.SGD(params, lr=args.lr, foreach=False)
    return torch.optim.SparseAdam(params, lr=args.lr, betas=args.betas, eps=args.eps)


def predict(params, mu, u, i, known=None):
    """Predicted ratings for index tensors u, i, and the parameter rows the prediction used
    (by name). `known` (float 1/0) masks the factor term of cold pairs, whose factors were
    never trained; their prediction is mu plus the biases."""
    rows = {"user_factors": params["user_factors"].index_select(0, u),
            "item_factors": params["item_factors"].index_select(0, i)}
    dot = (rows["user_factors"] * rows["item_factors"]).sum(1)
    if known is not None:
        dot = dot * known
    if mu is None:
        return dot, rows
    rows["user_bias"] = params["user_bias"].index_select(0, u)
    rows["item_bias"] = params["item_bias"].index_select(0, i)
    return mu + rows["user_bias"] + rows["item_bias"] + dot, rows


def penalty_sum(tensors, args):
    """Left-to-right sum of the form's per-tensor reductions over the penalized tensors (by
    name, in sorted order): factors always, biases with --penalize-bias. None if none apply."""
    terms = [common.penalty_term(args.penalty, t) for name, t in common.sorted_params(tensors)
             if not name.endswith("bias") or args.penalize_bias]
    return common.sum_left_to_right(terms) if terms else None


def penalty_active(args):
    return args.penalty != "none" and args.lam != 0.0


def training_penalty(params, rows, args, divisor, batch_rows):
    """The penalty tensor of one step (float32, 0-dim).

    batch-l2 is taken over the very row tensors the prediction used (one row per occurrence
    in the batch, biases included with --penalize-bias), so gradients of repeated rows sum
    in the same order as in Rust; it is divided by the rows this batch really has. The other
    forms are taken over whole parameters and divided by the resolved constant divisor.
    """
    zero = torch.zeros((), device=params["user_factors"].device)
    if not penalty_active(args):
        return zero
    if args.penalty == "batch-l2":
        total, coefficient = penalty_sum(rows, args), args.lam / batch_rows
    else:
        total = penalty_sum(params, args)
        coefficient = common.penalty_coefficient(args.penalty, args.lam, divisor)
    return zero if total is None else total * coefficient


# ----------------------------------------------------------------------------- eval

def evaluate(params, mu, args, weight_reg, users, items, ratings, known=None):
    """Metrics of one split in a single chunk, each reduction as Rust computes it: the loss
    from a float32 sum of squares, RMSE and MAE from float64 sums, all divided by n in f64."""
    n = ratings.shape[0]
    with torch.no_grad():
        pred, rows = predict(params, mu, users, items, known)
        e = pred - ratings
        base = float(e.pow(2).sum().item()) / n
        if args.penalty == "batch-l2":
            # Per-example form: lambda * (sum over every example's rows) / n.
            total = penalty_sum(rows, args) if penalty_active(args) else None
            reg = args.lam * (float(total.item()) if total is not None else 0.0) / n
        else:
            reg = weight_reg
        return {
            "loss": base,
            "base_loss": base,
            "reg_loss": reg,
            "total_loss": base + reg,
            "rmse": math.sqrt(float(e.double().pow(2).sum().item()) / n),
            "mae": float(e.abs().double().sum().item()) / n,
        }


# ----------------------------------------------------------------------------- main

def main(argv=None):
    args = parse_args(argv)
    device = common.setup_torch(args)
    scale = args.penalty_scale or DEFAULT_SCALE[args.penalty]

    (tr_u, tr_i, tr_r), (te_u, te_i, te_r), n_users, n_items, n_tr_users, n_tr_items = \
        load_split(args.data, args.split)
    n_train = tr_r.shape[0]
    tr_u, tr_i, tr_r = tr_u.to(device), tr_i.to(device), tr_r.to(device)
    te_u, te_i, te_r = te_u.to(device), te_i.to(device), te_r.to(device)
    # Test pairs with a user or item absent from training: indices at or past the train counts.
    te_known = ((te_u < n_tr_users) & (te_i < n_tr_items)).to(torch.float32)
    divisor = {"dataset": float(n_train), "batch": float(args.batch_size), "none": 1.0}[scale]

    params = create_params(n_users, n_items, args, device)
    mu = tr_r.mean() if args.model == "biased" else None
    tables = None
    if args.sparse:
        tables = sparse_tables(params)
        # Evaluation and penalties read the tables' weights (biases as flat views).
        params = {name: t.weight.view(-1) if name.endswith("bias") else t.weight
                  for name, t in tables.items()}
        trained = [tables[name].weight for name, _ in common.sorted_params(params)]
        opt = build_sparse_optimizer(args, trained)
    else:
        opt = common.build_optimizer(args, [p for _, p in common.sorted_params(params)])

    scheduler = common.build_scheduler(args, opt)
    epochs = []
    for epoch in range(1, args.epochs + 1):
        lr = opt.param_groups[0]["lr"]
        common.synchronize(device)  # on GPUs, start the clock with an empty queue
        start = time.perf_counter()
        # Drawn on the CPU (the same batch order on every device), then moved.
        perm = torch.randperm(n_train).to(device)
        # base, reg, total summed in float64 on the device (no host sync per step), as Rust.
        sums = torch.zeros(3, dtype=torch.float64, device=device)
        steps = 0
        for s in range(0, n_train, args.batch_size):
            idx = perm[s:s + args.batch_size]
            u = tr_u.index_select(0, idx)
            i = tr_i.index_select(0, idx)
            r = tr_r.index_select(0, idx)
            if tables is None:
                pred, rows = predict(params, mu, u, i)
            else:
                pred, rows = sparse_predict(tables, mu, u, i)
            base = (pred - r).pow(2).mean()
            reg = training_penalty(params, rows, args, divisor, idx.shape[0])
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

        weight_reg = 0.0
        if penalty_active(args) and args.penalty != "batch-l2":
            with torch.no_grad():
                total = penalty_sum(params, args)
                coefficient = common.penalty_coefficient(args.penalty, args.lam, divisor)
                weight_reg = float((total * coefficient).item()) if total is not None else 0.0
        train_eval = evaluate(params, mu, args, weight_reg, tr_u, tr_i, tr_r)
        train = {"base_loss": means[0], "reg_loss": means[1], "total_loss": means[2],
                 "rmse": train_eval["rmse"], "mae": train_eval["mae"]}
        test = evaluate(params, mu, args, weight_reg, te_u, te_i, te_r, te_known)
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
                  f"{train['base_loss']:.5f} reg {train['reg_loss']:.5f}) rmse {train['rmse']:.4f}  "
                  f"test rmse {test['rmse']:.4f} mae {test['mae']:.4f}  {seconds:.2f}s",
                  file=sys.stderr)

    config = common.config_of(
        args, penalty_scale=scale, penalty_divisor=(None if args.penalty == "batch-l2" else divisor),
        n_users=n_users, n_items=n_items, n_train=n_train, n_test=int(te_r.shape[0]),
        n_train_users=n_tr_users, n_train_items=n_tr_items,
        mu=(float(mu.item()) if mu is not None else None),
        parameters=[name for name, _ in common.sorted_params(params)])
    common.write_run({"epochs": epochs, "config": config}, args.out)


if __name__ == "__main__":
    main()
