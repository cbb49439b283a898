"""Pieces shared by the parity reference scripts (mf_reference.py, mlp_reference.py).

Everything here mirrors a decision of the Rust trainer, so that the Python run issues the
same libtorch operations in the same order as `regulab`. The comments say which Rust rule
each helper follows; changing one side without the other breaks parity. The optimizers are
plain torch.optim: it is regulab that replicates them (src/optim/).
"""

import argparse
import json
import math
import os
import re
import sys

import torch

OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop")
PENALTY_SCALES = ("dataset", "batch", "none")


def natural_key(name):
    """Sort key that orders the digit runs of a name numerically.

    Rust orders parameters by name with numbers compared as numbers, so `l_layers.10.weight`
    comes after `l_layers.9.weight`; a plain string sort would put it after `l_layers.1.*`.
    """
    return [int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name)]


def sorted_params(params):
    """(name, tensor) pairs in the one order used everywhere: optimizer list and penalty sums."""
    return sorted(params.items(), key=lambda item: natural_key(item[0]))


def betas(text):
    """'0.9,0.999' -> (0.9, 0.999), as the Rust CLI's --betas."""
    parts = text.split(",")
    try:
        if len(parts) != 2:
            raise ValueError
        return (float(parts[0]), float(parts[1]))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected two numbers B1,B2 (such as 0.9,0.999), got {text!r}")


def add_optimizer_args(parser, default_lr):
    """Optimizer flags, named as in the Rust CLI, with torch.optim's defaults."""
    group = parser.add_argument_group("optimizer")
    group.add_argument("--optimizer", choices=OPTIMIZERS, default="adam",
                       help="optimizer (default: %(default)s)")
    group.add_argument("--lr", type=float, default=default_lr,
                       help="learning rate (default: %(default)s)")
    group.add_argument("--momentum", type=float, default=0.0,
                       help="momentum for sgd and rmsprop (default: %(default)s)")
    group.add_argument("--dampening", type=float, default=0.0,
                       help="dampening of the momentum buffer, sgd only (default: %(default)s)")
    group.add_argument("--nesterov", action="store_true",
                       help="Nesterov momentum (sgd only)")
    group.add_argument("--weight-decay", type=float, default=0.0,
                       help="optimizer weight decay: L2 added to the gradient for sgd, adam and "
                            "rmsprop, decoupled for adamw (default: %(default)s)")
    group.add_argument("--betas", type=betas, default=(0.9, 0.999), metavar="B1,B2",
                       help="running-average coefficients, adam and adamw (default: 0.9,0.999)")
    group.add_argument("--eps", type=float, default=1e-8,
                       help="denominator term, adam, adamw and rmsprop (default: %(default)s)")
    group.add_argument("--amsgrad", action="store_true",
                       help="AMSGrad variant (adam and adamw)")
    group.add_argument("--alpha", type=float, default=0.99,
                       help="smoothing constant, rmsprop only (default: %(default)s)")
    group.add_argument("--centered", action="store_true",
                       help="centered RMSprop (rmsprop only)")
    group.add_argument("--optimizer-impl", choices=("torch", "torch-default"), default="torch",
                       help="torch: torch.optim with foreach=False, the single-tensor code that "
                            "regulab replicates (parity). torch-default: torch.optim with its own "
                            "foreach choice (foreach kernels on CUDA): for benchmarks, not parity "
                            "(default: %(default)s)")


def build_optimizer(args, params):
    """Plain torch.optim over `params` (already in sorted name order).

    `foreach=False` pins torch.optim's single-tensor code path, which regulab's own optimizer
    replicates op for op: the foreach/fused kernels round differently.
    """
    foreach = None if args.optimizer_impl == "torch-default" else False
    if args.optimizer == "sgd":
        return torch.optim.SGD(params, lr=args.lr, momentum=args.momentum,
                               dampening=args.dampening, weight_decay=args.weight_decay,
                               nesterov=args.nesterov, foreach=foreach)
    if args.optimizer in ("adam", "adamw"):
        # AdamW is Adam with decoupled weight decay; its own default weight_decay (0.01) is
        # not used, the flag's value is passed as in regulab.
        optimizer = torch.optim.Adam if args.optimizer == "adam" else torch.optim.AdamW
        return optimizer(params, lr=args.lr, betas=args.betas, eps=args.eps,
                         weight_decay=args.weight_decay, amsgrad=args.amsgrad, foreach=foreach)
    if args.optimizer == "rmsprop":
        return torch.optim.RMSprop(params, lr=args.lr, alpha=args.alpha, eps=args.eps,
                                   weight_decay=args.weight_decay, momentum=args.momentum,
                                   centered=args.centered, foreach=foreach)
    raise ValueError(f"unknown optimizer {args.optimizer}")


def check_optimizer_args(parser, args):
    """The Rust CLI's checks (src/optim/settings.rs, validate), with the same messages."""
    adam = args.optimizer in ("adam", "adamw")
    b1, b2 = args.betas
    if not (0.0 <= args.dampening <= 1.0):
        parser.error(f"--dampening {args.dampening}: must be in [0, 1]")
    if not (0.0 <= b1 < 1.0 and 0.0 <= b2 < 1.0):
        parser.error(f"--betas {b1},{b2}: each beta must be in [0, 1)")
    if not (math.isfinite(args.eps) and args.eps >= 0.0):
        parser.error(f"--eps {args.eps}: must be a non-negative number")
    if not (0.0 <= args.alpha <= 1.0):
        parser.error(f"--alpha {args.alpha}: must be in [0, 1]")
    if args.momentum != 0 and args.optimizer not in ("sgd", "rmsprop"):
        parser.error("--momentum applies to sgd and rmsprop only (adam/adamw have --betas)")
    if args.dampening != 0 and args.optimizer != "sgd":
        parser.error("--dampening applies to sgd only")
    if args.nesterov and (args.optimizer != "sgd" or args.momentum <= 0):
        parser.error("--nesterov needs --optimizer sgd with --momentum > 0 (as torch.optim.SGD)")
    if args.nesterov and args.dampening != 0:
        parser.error("--nesterov needs --dampening 0 (as torch.optim.SGD)")
    if args.betas != (0.9, 0.999) and not adam:
        parser.error("--betas applies to adam and adamw")
    if args.amsgrad and not adam:
        parser.error("--amsgrad applies to adam and adamw")
    if args.eps != 1e-8 and args.optimizer == "sgd":
        parser.error("--eps applies to adam, adamw and rmsprop")
    if args.alpha != 0.99 and args.optimizer != "rmsprop":
        parser.error("--alpha applies to rmsprop only")
    if args.centered and args.optimizer != "rmsprop":
        parser.error("--centered applies to rmsprop only")


def check_penalty_args(parser, args):
    """The Rust CLI rejects these; rejecting them here too keeps the two CLIs aligned."""
    if args.lam < 0 or not math.isfinite(args.lam):
        parser.error(f"--lambda {args.lam}: must be a non-negative number")
    if args.penalty == "none" and args.lam != 0.0:
        parser.error(f"--lambda {args.lam} given without --penalty: choose a form")


def add_common_run_args(parser, default_batch, default_epochs):
    group = parser.add_argument_group("run")
    group.add_argument("--batch-size", type=positive_int, default=default_batch,
                       help="minibatch size; the last partial batch is kept (default: %(default)s)")
    group.add_argument("--epochs", type=positive_int, default=default_epochs,
                       help="number of epochs (default: %(default)s)")
    group.add_argument("--seed", type=int, default=0,
                       help="torch.manual_seed before parameter creation (default: %(default)s)")
    group.add_argument("--threads", type=positive_int, default=None,
                       help="torch.set_num_threads; parity needs the same count on both sides "
                            "because CPU reductions split work by thread (default: torch's)")
    group.add_argument("--device", default="cpu",
                       help="torch device, e.g. cpu or cuda; parity holds on cpu only, cuda is "
                            "for timing (default: %(default)s)")
    group.add_argument("--out", metavar="FILE", default=None,
                       help="write the run as JSON to FILE (default: print to stdout)")
    group.add_argument("--quiet", action="store_true", help="no per-epoch lines on stderr")
    group.add_argument("--lr-schedule", default="constant",
                       help="constant, step:EVERY:GAMMA (StepLR) or cosine (CosineAnnealingLR "
                            "over the epochs), stepped after every epoch as regulab does "
                            "(default: %(default)s)")


def build_scheduler(args, optimizer):
    """torch.optim.lr_scheduler's own StepLR / CosineAnnealingLR, or None for constant."""
    parts = args.lr_schedule.split(":")
    if parts == ["constant"]:
        return None
    if parts == ["cosine"]:
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=args.epochs)
    if parts[0] == "step" and len(parts) == 3:
        return torch.optim.lr_scheduler.StepLR(optimizer, step_size=int(parts[1]),
                                               gamma=float(parts[2]))
    raise SystemExit(f"--lr-schedule {args.lr_schedule}: the reference supports constant, "
                     "step:EVERY:GAMMA and cosine")


def setup_torch(args):
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        sys.exit("error: --device cuda but torch sees no CUDA device")
    return device


def synchronize(device):
    """Wait for queued kernels so that wall-clock epoch times are honest on GPUs."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def penalty_coefficient(form, lam, divisor):
    """The float the summed penalty tensor is multiplied by, computed as Rust does (f64,
    left to right): `lam * 0.5 / divisor` for the squared (l2/frobenius) form, `lam / divisor`
    for the others."""
    if form in ("l2", "frobenius"):
        return lam * 0.5 / divisor
    return lam / divisor


def penalty_term(form, tensor):
    """One parameter's term of the penalty sum."""
    if form in ("l2", "frobenius", "batch-l2"):
        return tensor.pow(2).sum()
    if form == "norm":
        return tensor.norm()  # Frobenius norm, not squared
    if form == "l1":
        return tensor.abs().sum()
    raise ValueError(f"unknown penalty {form}")


def sum_left_to_right(terms):
    """reg = t1; reg = reg + t2; ... (the Rust fold), so float32 rounding agrees."""
    total = terms[0]
    for term in terms[1:]:
        total = total + term
    return total


def weight_norms(params):
    return {name: float(p.detach().norm().item()) for name, p in sorted_params(params)}


def implied_weight_decay_loss(params, weight_decay):
    """wd/2 * sum of squares of every parameter: the loss that coupled L2 weight decay is
    the gradient of (a reference number; nothing optimizes it). As in Rust: each tensor's
    squares summed into float64, the per-tensor sums added in f64, then times wd / 2."""
    if weight_decay == 0.0:
        return 0.0
    with torch.no_grad():
        squares = 0.0
        for _, p in sorted_params(params):
            squares += float(p.pow(2).sum(dtype=torch.float64).item())
    return weight_decay / 2.0 * squares


def _json_safe(value):
    """JSON has no NaN or infinity; like serde_json (the Rust side), write them as null."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {key: _json_safe(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(item) for item in value]
    return value


def write_run(run, out):
    text = json.dumps(_json_safe(run), indent=2)
    if out is None:
        print(text)
        return
    directory = os.path.dirname(os.path.abspath(out))
    os.makedirs(directory, exist_ok=True)
    with open(out, "w") as f:
        f.write(text + "\n")


def config_of(args, **extra):
    """The run's settings for the JSON `config` object: every flag plus derived values."""
    config = {key: value for key, value in vars(args).items() if key != "quiet"}
    config.update(extra)
    config["torch_version"] = torch.__version__
    config["torch_threads"] = torch.get_num_threads()
    device = torch.device(args.device)
    config["device_name"] = (torch.cuda.get_device_name(device) if device.type == "cuda"
                             else cpu_name())
    return config


def cpu_name():
    """The CPU model from /proc/cpuinfo (Linux), else the platform's processor string."""
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform
    return platform.processor() or platform.machine()


def positive_int(text):
    value = int(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text}")
    return value
