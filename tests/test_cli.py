"""The `neurosim theorem` command end to end: report, JSON summary, PNG and HDF5; and the
command line as people expect (issue 26): one-line errors with "did you mean" that name a
circuit as the user gave it, the built-in circuits in `neurosim run --help`, progress bars on a
terminal only, and `neurosim fidelity` measuring the circuit's own solver."""
import json
import os
import re
import subprocess
import sys

import h5py
import numpy as np
import pytest


def _neurosim(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "neurosim.cli", *args], capture_output=True,
                          text=True, timeout=600, cwd=cwd)


@pytest.fixture(scope="module")
def theorem_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("theorem")
    r = _neurosim("theorem", "--json", "--steps", "120", "--out", str(out))
    assert r.returncode == 0, r.stderr[-2000:]
    return r, out


def test_theorem_json_summary_shows_the_theorem(theorem_run):
    r, out = theorem_run
    s = json.loads(r.stdout.strip().splitlines()[-1])
    assert s["beta_min"] == pytest.approx(1e-4)
    assert s["u0_error"] < 1e-9                      # u_0 = -Sbar_0 to rounding
    assert s["worst_cosine_u"] > 1 - 1e-5            # beta = 1e-4 over the valid steps
    assert s["worst_rel_error_u"] < 50 * s["beta_min"]
    assert s["worst_cosine_P"] > 1 - 1e-6
    assert s["slope_one_sided"] == pytest.approx(1.0, abs=0.15)
    assert s["slope_symmetric"] == pytest.approx(2.0, abs=0.2)
    assert s["ep_vs_rbp_cosine"] > 0.9999
    assert s["spectral_radius"] < 1
    for name, err in s["methods_rel_error"].items():
        if not name.startswith("ep"):
            assert err < 1e-6, name
    assert s["data"] == "sklearn digits"


def test_theorem_report_and_files(theorem_run):
    r, out = theorem_run
    assert "u_k vs -Sbar_k" in r.stdout and "log-log slope" in r.stdout
    assert (out / "theorem.png").stat().st_size > 10_000
    with h5py.File(out / "theorem.h5", "r") as f:
        S = f["side_network/S/y"][()]
        u = f["second_phase/2/u/y"][()]
        assert f["second_phase/2"].attrs["beta"] == pytest.approx(1e-4)
        assert S.shape == u.shape == (120, 16, 10)
        np.testing.assert_allclose(u[0], -S[0], atol=1e-8)
        assert "gradients/rbp implicit (dense)/W:x->h1" in f
    assert not list(out.glob("*.tmp*"))


@pytest.mark.parametrize("args, culprit", [
    (["--eps", "0"], "--eps"), (["--eps", "abc"], "--eps"), (["--steps", "-3"], "--steps"),
    (["--betas", "0"], "--betas"), (["--batch", "0"], "--batch")])
def test_theorem_bad_options_name_the_option(args, culprit):
    r = _neurosim("theorem", *args)
    assert r.returncode == 2
    assert culprit in r.stderr


# -- the command line as people expect (issue 26) ----------------------------------------------
QUICK_RUN = ("--set", "train.epochs=1", "--set", "dataset.limit_train=100",
             "--set", "dataset.limit_test=50", "--set", "record.traces=false")


def _error_line(r):
    """The one error line of a refused command (no usage, no traceback)."""
    assert r.returncode == 2, (r.returncode, r.stderr[-2000:])
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "error:" in lines[0] and "Traceback" not in r.stderr, r.stderr
    return lines[0]


def _builtin_dir():
    from neurosim import config
    return os.path.abspath(str(config.builtin_dir()))


def test_an_unknown_set_key_is_one_line_with_the_close_key(neurosim_cli, tmp_path):
    line = _error_line(neurosim_cli("run", "--out", tmp_path, "--set", "train.epoch=2"))
    assert "train.epoch: unknown key; did you mean train.epochs?" in line
    assert "built-in circuit 'default'" in line and _builtin_dir() not in line
    assert not list(tmp_path.iterdir())


def test_an_unknown_key_without_a_close_one_lists_the_section(neurosim_cli, tmp_path):
    line = _error_line(neurosim_cli("run", "--out", tmp_path, "--set", "train.zzz=2",
                                    "--set", "learning.bta=0.1"))
    assert "train.zzz: unknown key; expected one of epochs, batch_size" in line
    assert "learning.bta: unknown key; did you mean learning.beta?" in line


def test_an_unknown_key_in_a_circuit_file_names_the_file_as_given(neurosim_cli, tmp_path,
                                                                  monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "mine.toml").write_text("[network]\nsizes = [64, 10]\n[train]\nepoch = 3\n")
    line = _error_line(neurosim_cli("run", "mine.toml"))
    assert "circuit file 'mine.toml': train.epoch: unknown key; did you mean train.epochs?" \
        in line, line


def test_an_unknown_builtin_circuit_suggests_the_close_name(neurosim_cli):
    line = _error_line(neurosim_cli("run", "digts_spiking"))
    assert "no built-in circuit 'digts_spiking'" in line
    assert "did you mean digits_spiking?" in line
    line = _error_line(neurosim_cli("fidelity", "nothing_like_it"))
    assert "built-in circuits: " in line and "fashion_spiking" in line


@pytest.mark.parametrize("args, needle", [
    (["rnu"], "neurosim: error: unknown command 'rnu'; did you mean run?"),
    (["fidelty", "default"], "unknown command 'fidelty'; did you mean fidelity?"),
    (["xyzzy"], "unknown command 'xyzzy'; expected one of theorem, run, fidelity"),
    (["traces", "inspct", "x.h5"],
     "neurosim traces: error: unknown action 'inspct'; did you mean inspect?"),
])
def test_an_unknown_command_is_one_line_with_the_close_one(neurosim_cli, args, needle):
    line = _error_line(neurosim_cli(*args))
    assert needle in line, line


def test_errors_name_a_builtin_circuit_not_its_installed_path(neurosim_cli, tmp_path):
    """A setting the engine refuses, set in the built-in file: the message names the
    circuit by its name, never the file's installed path."""
    for cmd in (("run", "--out", tmp_path), ("fidelity", "--out", tmp_path)):
        line = _error_line(neurosim_cli(*cmd, "--set", 'engine.name="brian2-rate"'))
        assert "engine.solver" in line and "built-in circuit 'default'" in line, line
        assert _builtin_dir() not in line and ".toml" not in line, line
    line = _error_line(neurosim_cli("run", "fashion_spiking", "--set", "engine.max_rate=-1"))
    assert "built-in circuit 'fashion_spiking'" in line and _builtin_dir() not in line, line


def test_run_help_lists_every_shipped_circuit_with_its_header(neurosim_cli, monkeypatch):
    from neurosim import config
    monkeypatch.setenv("COLUMNS", "80")
    narrow = neurosim_cli("run", "--help").stdout.split("built-in circuits (", 1)[1]
    assert max(len(ln) for ln in narrow.splitlines()) <= 78      # fits 80 columns
    starts = [i for i, ln in enumerate(narrow.splitlines()) if re.match(r"  \S", ln)]
    assert max(np.diff(starts + [len(narrow.splitlines())])) <= 2   # two lines at most each
    monkeypatch.setenv("COLUMNS", "250")
    r = neurosim_cli("run", "--help")
    assert r.returncode == 0
    listing = r.stdout.split("built-in circuits (", 1)[1].splitlines()[1:]
    names = sorted(f[:-5] for f in os.listdir(_builtin_dir()) if f.endswith(".toml"))
    assert len(names) >= 17
    assert [ln.split()[0] for ln in listing if re.match(r"  \S", ln)] == names
    rows = {}
    for ln in listing:                       # a name, then its summary's continuation lines
        if re.match(r"  \S", ln):
            name = ln.split()[0]
            rows[name] = ln.split(None, 1)[1]
        elif ln.strip():
            rows[name] += " " + ln.strip()
    assert rows["default"].startswith("The embedded default")
    assert rows["fashion_spiking"].startswith("Fashion-MNIST 784-500-10 trained through spikes")
    for name in names:           # each line is the first sentence of that file's header
        with open(os.path.join(_builtin_dir(), name + ".toml")) as f:
            first = config.summary_line(f.read())
        assert len(rows[name]) > 15 and first.startswith(rows[name].rstrip(".")), \
            (name, rows[name])
        assert name in narrow


@pytest.mark.parametrize("command", ["fidelity", "sweep", "theorem", "spice"])
def test_other_commands_point_to_the_circuit_list(neurosim_cli, command):
    r = neurosim_cli(command, "--help")
    assert r.returncode == 0
    assert "listed by 'neurosim run --help'" in " ".join(r.stdout.split())


def test_summary_line_is_the_first_sentence_without_parentheses():
    from neurosim import config
    text = ("# A net of Laborieux et al. 2021 (Front. Neurosci.): conv layers, max pool,\n"
            "# softmax. More here.\n#\n# Other text.\nname = \"x\"\n")
    assert config.summary_line(text) == \
        "A net of Laborieux et al. 2021: conv layers, max pool, softmax"
    assert config.summary_line(text, 45) == "A net of Laborieux et al. 2021"   # whole clauses
    assert config.summary_line(text, 21) == "A net of Laborieux..."
    assert config.summary_line("name = \"x\"\n") == ""


# -- progress bars on a terminal only ---------------------------------------------------------
class _Stream:
    def __init__(self, tty):
        self.tty = tty

    def isatty(self):
        return self.tty


@pytest.mark.parametrize("out, err, expected", [
    (True, True, True), (False, True, False), (True, False, False), (False, False, False)])
def test_progress_bars_need_both_streams_on_a_terminal(monkeypatch, out, err, expected):
    from neurosim.training.trainer import on_terminal
    monkeypatch.delitem(sys.modules, "ipykernel", raising=False)
    monkeypatch.setattr(sys, "stdout", _Stream(out))
    monkeypatch.setattr(sys, "stderr", _Stream(err))
    assert on_terminal() is expected


def test_a_run_into_a_log_has_no_progress_bars(neurosim_cli, tmp_path):
    r = neurosim_cli("run", "--out", tmp_path, *QUICK_RUN)    # captured: not a terminal
    assert r.returncode == 0, r.stderr[-2000:]
    assert "epoch 1/1: train loss" in r.stdout                  # the per-epoch line stays
    assert "batch/s" not in r.stderr + r.stdout and "\r" not in r.stderr, r.stderr[-500:]


def _on_a_terminal(*args):
    """``neurosim ARGS`` with stdout and stderr on a pseudo-terminal; what it printed."""
    import fcntl
    import pty
    import struct
    import termios
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))  # 100 columns
    p = subprocess.Popen([sys.executable, "-m", "neurosim.cli", *args], stdout=slave,
                         stderr=slave, stdin=subprocess.DEVNULL, close_fds=True)
    os.close(slave)
    out = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:              # EIO: the child closed the terminal
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    assert p.wait(timeout=600) == 0, out[-2000:]
    return out.decode("utf-8", "replace")


def test_a_run_on_a_terminal_shows_progress_bars_unless_asked_not_to(tmp_path):
    shown = _on_a_terminal("run", "--out", str(tmp_path / "a"), *QUICK_RUN)
    assert "batch/s" in shown and "epoch 1/1: train loss" in shown
    hidden = _on_a_terminal("run", "--no-progress", "--out", str(tmp_path / "b"), *QUICK_RUN)
    assert "batch/s" not in hidden and "epoch 1/1: train loss" in hidden


# -- neurosim fidelity measures the circuit's own solver ----------------------------------------
FIDELITY = ("--set", "network.sizes=[64,16,10]", "--batch", "2", "--no-plot", "--json")


def test_fidelity_measures_the_circuits_own_solver_and_says_so(neurosim_cli, tmp_path):
    r = neurosim_cli("fidelity", "--out", tmp_path / "own", *FIDELITY)
    assert r.returncode == 0, r.stderr[-2000:]
    own = json.loads(r.stdout.strip().splitlines()[-1])
    assert own["solver"] == "block"                       # the built-in default's engine.solver
    assert "solver measured: block sweeps" in r.stdout
    assert "the circuit's engine.solver" in r.stdout and "nudged sweeps per phase" in r.stdout
    with h5py.File(tmp_path / "own" / "fidelity.h5", "r") as f:
        assert f.attrs["solver"] == "block"
    r = neurosim_cli("fidelity", "--solver", "euler", "--out", tmp_path / "euler", *FIDELITY)
    assert r.returncode == 0, r.stderr[-2000:]
    euler = json.loads(r.stdout.strip().splitlines()[-1])
    assert euler["solver"] == "euler"
    assert "solver measured: Euler steps (eps=0.5), set by --solver" in r.stdout
    assert euler["phase_steps"] != own["phase_steps"]     # another solver was run
    assert euler["free_steps"] == own["free_steps"] == 300
