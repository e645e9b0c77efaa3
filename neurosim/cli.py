"""The ``neurosim`` command."""
from __future__ import annotations

import argparse
import sys


def _positive(kind):
    def parse(text):
        try:
            v = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError("expected a %s, got %r" % (kind.__name__, text))
        if not v > 0:
            raise argparse.ArgumentTypeError("must be positive, got %r" % text)
        return v
    return parse


def _beta(text):
    try:
        v = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError("expected a number, got %r" % text)
    if v == 0 or v != v or abs(v) == float("inf"):
        raise argparse.ArgumentTypeError("beta must be a non-zero finite number, got %r" % text)
    return v


def build_parser():
    parser = argparse.ArgumentParser(
        prog="neurosim",
        description="Learning by temporal derivatives: Equilibrium Propagation vs recurrent "
                    "backpropagation on fixed-point networks.")
    from . import __version__
    parser.add_argument("--version", action="version", version="neurosim %s" % __version__)
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    th = sub.add_parser(
        "theorem", help="show that EP's temporal derivatives equal RBP's error derivatives",
        description="Relax an embedded default network (logistic, x64-h32-h24-y10 with a skip "
                    "x->h2) on a batch of digits, run RBP's side network and EP's nudged phase "
                    "for several beta, and print how u_k matches -Sbar_k and P_k matches "
                    "Thetabar_k, EP's bias slopes and the agreement of every gradient method. "
                    "Writes theorem.png and theorem.h5.")
    th.add_argument("--seed", type=int, default=0, help="network and batch seed (default 0)")
    th.add_argument("--batch", type=_positive(int), default=16, help="batch size (default 16)")
    th.add_argument("--eps", type=_positive(float), default=0.1, help="Euler step (default 0.1)")
    th.add_argument("--steps", type=_positive(int), default=200,
                    help="side-network / nudged-phase steps (default 200)")
    th.add_argument("--betas", type=_beta, nargs="+", default=[1e-2, 1e-3, 1e-4],
                    help="nudging strengths for the traces (default 1e-2 1e-3 1e-4)")
    th.add_argument("--out", default=None,
                    help="output folder (default runs/theorem-<timestamp>)")
    th.add_argument("--no-plot", action="store_true", help="skip the PNG")
    th.add_argument("--json", action="store_true", help="print a one-line JSON summary last")
    return parser


def main(argv=None):
    parser = build_parser()
    args = parser.parse_args(argv)
    from .network import NetworkError
    from .rbp import RBPConvergenceError
    from .relax import RelaxationError
    try:
        if args.command == "theorem":
            from . import theorem
            return theorem.main(args)
    except (NetworkError, RelaxationError, RBPConvergenceError, OSError, ValueError) as e:
        print("neurosim %s: error: %s" % (args.command, e), file=sys.stderr)
        return 2
    parser.error("unknown command %r" % args.command)


if __name__ == "__main__":
    sys.exit(main())
