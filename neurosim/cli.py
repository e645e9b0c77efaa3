"""The ``neurosim`` command."""
from __future__ import annotations

import argparse
import difflib
import os
import shutil
import sys
import textwrap

#: How every command's CIRCUIT argument points to the list of built-in circuits.
CIRCUITS_LISTED = "the built-in circuits are listed by 'neurosim run --help'"


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


def _non_negative_int(text):
    try:
        v = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError("expected an integer, got %r" % text)
    if v < 0:
        raise argparse.ArgumentTypeError("must be 0 or more, got %r" % text)
    return v


def circuits_epilog():
    """The built-in circuits, each with the first sentence of its file's header (at most two
    lines), for ``neurosim run --help``; read from ``circuits/*.toml``."""
    from . import config
    names = config.builtin_names()
    column = max(len(n) for n in names) + 4
    width = max(40, min(shutil.get_terminal_size().columns - 2, 110) - column)
    lines = ["built-in circuits (neurosim run NAME; the header of each file says more):"]
    for name, text in config.builtin_circuits(2 * width):      # at most two lines each
        wrapped = textwrap.wrap(text, width) or [""]
        lines.append("  %-*s%s" % (column - 2, name, wrapped[0]))
        lines += [" " * column + more for more in wrapped[1:]]
    return "\n".join(lines)


def _wrapped(text):
    """``text`` filled to the terminal's width (for a parser whose formatter keeps line
    breaks, as argparse wraps other descriptions)."""
    return textwrap.fill(text, max(40, shutil.get_terminal_size().columns - 2))


def build_parser(circuits=True):
    """The ``neurosim`` parser; ``circuits``: list the built-in circuits in ``run --help``
    (reading them imports :mod:`neurosim.config`, so :func:`main` does it only for help)."""
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
    th.add_argument("circuit", nargs="?", default=None,
                    help="optional circuit file or built-in circuit name: use its network "
                         "(energy dynamics), engine.eps and dataset instead of the embedded "
                         "default (%s)" % CIRCUITS_LISTED)
    _add_set(th)
    th.add_argument("--seed", type=int, default=0, help="network and batch seed (default 0)")
    th.add_argument("--batch", type=_positive(int), default=16, help="batch size (default 16)")
    th.add_argument("--eps", type=_positive(float), default=None,
                    help="Euler step (default 0.1, or engine.eps of the circuit file)")
    th.add_argument("--steps", type=_positive(int), default=200,
                    help="side-network / nudged-phase steps (default 200)")
    th.add_argument("--betas", type=_beta, nargs="+", default=[1e-2, 1e-3, 1e-4],
                    help="nudging strengths for the traces (default 1e-2 1e-3 1e-4)")
    th.add_argument("--out", default=None,
                    help="output folder (default runs/theorem-<timestamp>)")
    th.add_argument("--no-plot", action="store_true", help="skip the PNG")
    th.add_argument("--json", action="store_true", help="print a one-line JSON summary last")
    run = sub.add_parser(
        "run", help="train a circuit file and write a run folder (traces.h5, metrics, plots)",
        description=_wrapped(
            "Train the network of a circuit file (default: the built-in 'default', digits) "
            "and write <output.dir>/<name>-<timestamp>/ with traces.h5, metrics.json, "
            "circuit.toml, checkpoint.npz and PNG plots. Ctrl-C or SIGTERM writes a "
            "checkpoint; --resume continues it. Progress bars are shown on a terminal only."),
        epilog=circuits_epilog() if circuits else None,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    run.add_argument("circuit", nargs="?", default=None,
                     help="circuit file (TOML) or the name of a built-in circuit (listed "
                          "below; default: 'default')")
    _add_set(run)
    run.add_argument("--resume", metavar="RUN_DIR", default=None,
                     help="continue an interrupted run from its checkpoint")
    run.add_argument("--out", metavar="DIR", default=None,
                     help="parent folder of the run folder (default: output.dir)")
    run.add_argument("--no-progress", action="store_true",
                     help="no progress bars (there are none when stdout or stderr is not a "
                          "terminal, e.g. neurosim run > log)")
    run.add_argument("--json", action="store_true", help="print a one-line JSON summary last")

    fi = sub.add_parser(
        "fidelity", help="an engine's own EP estimate on one batch against RBP's gradient",
        description="For the network of a circuit file (at initialisation, or with --weights) "
                    "and a seeded batch of its dataset's test split, build the circuit's engine "
                    "(any registered engine, on the devices of its [hardware] section, with "
                    "its settings and phase plan, learning.nudges included: by default its own "
                    "solver, engine.solver, e.g. the block sweeps of the built-in 'default'; "
                    "--solver picks the other, and the report says which was measured), take the "
                    "engine's own estimate and compare it with RBP's implicit gradient at the "
                    "verified free fixed point: cosine, relative error, relative RMSE and sign "
                    "agreement, overall and per parameter, the distance of the engine's free "
                    "state from that fixed point, and over the nudged phases (the plan's "
                    "estimate after k nudged steps, recorded by the engine's monitors). The "
                    "network runs in float64. Writes fidelity.h5, fidelity_curve.png and "
                    "circuit.toml (brian2-spiking: fidelity.h5 with the table and the last "
                    "run's spikes, spiking_fidelity.png and raster.png).")
    fi.add_argument("circuit", nargs="?", default=None,
                    help="circuit file (TOML) or the name of a built-in circuit (default: "
                         "'default'; %s)" % CIRCUITS_LISTED)
    _add_set(fi)
    fi.add_argument("--engine", default=None,
                    help="the engine measured (sets engine.name; default: the circuit's). "
                         "brian2-spiking runs the spike-based update (engine.neuron, "
                         "engine.max_rate, engine.eps) over spike seeds, against the rate "
                         "circuit and RBP, with --sweep")
    fi.add_argument("--sweep", action="append", default=[], metavar="NAME=V1,V2",
                    help="brian2-spiking only, repeatable, one factor at a time around the "
                         "circuit's setting: max_rate=250,1000 (Hz), nudge_steps=300,1000, "
                         "traces=10/100,20/200 (tau_fast/tau_slow, ms), neuron=poisson,lif")
    fi.add_argument("--spike-seeds", type=_positive(int), default=None,
                    help="brian2-spiking only: spike seeds per setting (default 3)")
    fi.add_argument("--batch", type=_positive(int), default=8,
                    help="examples drawn (seeded) from the dataset's test split (default 8)")
    fi.add_argument("--seed", type=int, default=0,
                    help="seed of the batch (and of the random sign) (default 0)")
    fi.add_argument("--beta", type=_beta, default=None,
                    help="nudging strength (sets learning.beta, drops learning.nudges; "
                         "default: the circuit's)")
    fi.add_argument("--variant", choices=("one_sided", "symmetric", "random_sign", "holomorphic"),
                    default=None,
                    help="EP variant (sets learning.variant, drops learning.nudges; default: "
                         "the circuit's)")
    fi.add_argument("--solver", choices=("euler", "block"), default=None,
                    help="how the phases run (sets engine.solver): 'euler' steps of engine.eps "
                         "or 'block' sweeps (layer-wise block updates); default: the circuit's "
                         "own, e.g. 'block' for the built-in 'default'")
    fi.add_argument("--free-steps", type=_positive(int), default=None,
                    help="steps of the free phase (sets engine.free_steps: Euler steps, or "
                         "sweeps of the 'block' solver; default: the circuit's)")
    fi.add_argument("--nudge-steps", type=_positive(int), default=None,
                    help="steps of each nudged phase (sets engine.nudge_steps; default: the "
                         "circuit's)")
    fi.add_argument("--weights", metavar="RUN_DIR", default=None,
                    help="take the weights from a run folder's checkpoint.npz (or that file); "
                         "without CIRCUIT, the run's circuit.toml is used")
    fi.add_argument("--out", metavar="DIR", default=None,
                    help="output folder (default runs/fidelity-<timestamp>)")
    fi.add_argument("--no-plot", action="store_true", help="skip the PNG")
    fi.add_argument("--json", action="store_true", help="print a one-line JSON summary last")

    sp = sub.add_parser(
        "spice", help="export a resistive network as an ngspice netlist and check it in ngspice",
        description="Write the circuit's resistive network (network.kind = \"resistive\") "
                    "and one input (the dataset's test example --example) as an ngspice "
                    "netlist; with --check run Debian's ngspice on it and compare its node "
                    "voltages with neurosim's solver. Exit status 0 when they agree "
                    "(Shockley diodes: --rel-tol relative; ideal diodes, exported as "
                    "Shockley diodes: within the forward drop), 1 when they do not, 2 on "
                    "an error (e.g. ngspice missing: apt-get install ngspice).")
    sp.add_argument("circuit", help="circuit file (TOML) or the name of a built-in circuit "
                                    "(%s)" % CIRCUITS_LISTED)
    _add_set(sp)
    sp.add_argument("--checkpoint", default=None,
                    help="a run's checkpoint.npz whose conductances to export")
    sp.add_argument("--example", type=_non_negative_int, default=0,
                    help="index of the test example applied as input (default 0)")
    sp.add_argument("--netlist", default=None, help="netlist path (default <name>.cir)")
    sp.add_argument("--check", action="store_true", help="run ngspice and compare")
    sp.add_argument("--rel-tol", type=float, default=1e-6,
                    help="relative agreement required with Shockley diodes (default 1e-6)")
    sp.add_argument("--json", action="store_true", help="print a one-line JSON summary last")

    tr = sub.add_parser("traces", help="inspect or convert HDF5 trace files")
    trs = tr.add_subparsers(dest="traces_command", metavar="ACTION")
    trs.required = True
    ins = trs.add_parser("inspect", help="print the tree, shapes and a summary of a trace file")
    ins.add_argument("file", help="a traces.h5 written by neurosim")
    nwb = trs.add_parser("to-nwb", help="export a trace file to NWB (needs neurosim[nwb])")
    nwb.add_argument("file", help="a traces.h5 written by neurosim")
    nwb.add_argument("output", help="the .nwb file to write")
    # -- sweep (issue 6): the grid of --param lists on Dask --------------------------------
    sw = sub.add_parser(
        "sweep", help="train every point of a parameter grid on Dask; an index table and plots",
        description="Train the circuit once per point of the grid (the cartesian product of "
                    "the --param lists) on Dask: a local cluster of --workers processes (1 "
                    "thread and 1 BLAS thread each) or the scheduler at --scheduler. Writes "
                    "one run folder per point under OUT/runs/, OUT/index.csv (one row per run, "
                    "rewritten as each run finishes), OUT/sweep_<key>.png and OUT/sweep.json. "
                    "A failed run is retried (--retries) and recorded with its error; the "
                    "exit status is 1 if any run still failed. Rerun with the same arguments "
                    "and --out to resume: finished runs are skipped. Without --param, the "
                    "circuit file's [sweep] section (mode, params) gives the grid.")
    sw.add_argument("circuit", nargs="?", default=None,
                    help="circuit file (TOML) or the name of a built-in circuit (default: "
                         "'default'; %s)" % CIRCUITS_LISTED)
    sw.add_argument("--param", dest="params", action="append", default=[],
                    metavar="KEY=V1,V2,...",
                    help="a swept key and its values (repeatable; the grid is the product): "
                         "values are separated by the commas outside brackets and quotes and "
                         "read like --set values, e.g. --param learning.beta=0.1,0.5 "
                         "--param hardware.preset=ideal,rram "
                         "--param network.sizes=[64,32,10],[64,64,10]")
    sw.add_argument("--mode", choices=("grid", "one_at_a_time"), default=None,
                    help="grid: the cartesian product of the lists; one_at_a_time: each key "
                         "over its values with the other swept keys at the circuit's values "
                         "(design curves) (default: the circuit's [sweep] mode, else grid)")
    _add_set(sw)
    sw.add_argument("--workers", type=_positive(int), default=None,
                    help="worker processes of the local cluster (default 2)")
    sw.add_argument("--scheduler", metavar="ADDRESS", default=None,
                    help="address of a running Dask scheduler (e.g. tcp://host:8786) instead "
                         "of a local cluster; its workers must see --out and have neurosim")
    sw.add_argument("--out", metavar="DIR", default=None,
                    help="sweep folder (default <output.dir>/sweep-<name>-<timestamp>); give "
                         "the same one to resume")
    sw.add_argument("--retries", type=_non_negative_int, default=1,
                    help="extra attempts of a run that failed (default 1)")
    sw.add_argument("--json", action="store_true", help="print a one-line JSON summary last")
    parser.commands, tr.commands = sub.choices, trs.choices    # for unknown_command
    return parser


def _add_set(p):
    p.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                   help="override a circuit-file value by its dotted path, e.g. "
                        "--set train.epochs=2 --set learning.beta=0.2 (repeatable)")


def _run(args):
    from . import jsontext
    from .commands import run as experiment
    summary = experiment.run(args.circuit, args.overrides, resume=args.resume, out_dir=args.out,
                             progress=False if args.no_progress else None)
    if args.json:
        print(jsontext.dumps(summary))
    return 0


def _traces(args):
    if args.traces_command == "inspect":
        from .traces import inspect
        print(inspect(args.file))
    else:
        from .traces.nwb import to_nwb
        print("wrote %s" % to_nwb(args.file, args.output))
    return 0


def unknown_command(parser, argv):
    """The one-line error for an unknown command (or ``traces`` action) in ``argv``, with the
    close one ("did you mean"), or None."""
    level, kind = parser, "command"
    for word in (a for a in argv if not a.startswith("-")):
        choices = getattr(level, "commands", None)
        if not choices:
            return None
        if word not in choices:
            close = difflib.get_close_matches(word, list(choices), n=1)
            return "%s: error: unknown %s %r; %s" % (
                level.prog, kind, word, "did you mean %s?" % close[0] if close
                else "expected one of %s" % ", ".join(choices))
        level, kind = choices[word], "action"
    return None


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    parser = build_parser(circuits=any(a in ("-h", "--help") for a in argv))
    error = unknown_command(parser, argv)
    if error:
        print(error, file=sys.stderr)
        return 2
    args = parser.parse_args(argv)
    from .errors import NeurosimError
    from .training.trainer import Interrupted
    try:
        if args.command == "theorem":
            from .commands import theorem
            return theorem.main(args)
        if args.command == "run":
            return _run(args)
        if args.command == "traces":
            return _traces(args)
        if args.command == "fidelity":
            from .commands import fidelity as fidelity_report
            return fidelity_report.main(args)
        if args.command == "spice":
            from .commands import spice
            return spice.main(args)
        if args.command == "sweep":
            from .sweep import runner
            return runner.main(args)
    except Interrupted as e:
        print("neurosim %s: %s; continue with: neurosim run --resume %s"
              % (args.command, e, os.path.dirname(str(e).rsplit("checkpoint: ", 1)[-1])),
              file=sys.stderr)
        return 130
    except (NeurosimError, OSError) as e:   # errors neurosim raises on purpose, and file errors
        print("neurosim %s: error: %s" % (args.command, e), file=sys.stderr)
        return 2
    parser.error("unknown command %r" % args.command)


if __name__ == "__main__":
    sys.exit(main())
