"""The `neurosim theorem` command end to end: report, JSON summary, PNG and HDF5."""
import json
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
