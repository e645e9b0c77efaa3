"""RBP ground truth: finite-difference checks of dL/dtheta for every kind of parameter, the
linear solvers, the solver statistics, and the Jacobian products they rest on."""
from __future__ import annotations

import numpy as np
import pytest

import neurosim as ns
from neurosim import energy as en

from conftest import (SEEDS, all_entries, fd_entry, flat, is_lateral, is_self_loop, norm, problem,
                      problems, rel_err, residual)

FD_TOL = 1e-7   # MATH.md section 6: implicit vs central differences (step 1e-5)


def _fd_check(P, key):
    """Central differences of the loss vs the implicit gradient on every entry of ``key``;
    returns the worst absolute error."""
    g = ns.rbp.gradient(P.net, P.x, P.y, method="implicit", eps=P.eps, state=P.s0)
    worst, scale = 0.0, 0.0
    for _, ix in all_entries(P.net, [key]):
        if is_lateral(P.net, key):
            fd = fd_entry(P.net, P.x, P.y, key, ix, P.s0, pair=ix[::-1])
            an = g[key][ix] + g[key][ix[::-1]]
        else:
            fd = fd_entry(P.net, P.x, P.y, key, ix, P.s0)
            an = g[key][ix]
        worst = max(worst, abs(fd - an))
        scale = max(scale, abs(fd))
    assert scale > 1e-4, "the entries of %s have no gradient to compare" % key
    return worst


# -- finite differences, one parameter kind at a time -----------------------------------------
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("kind,key", [
    ("layered", "W:x->h1"),         # feed-forward from the input
    ("layered", "W:h1->y"),         # feed-forward between state populations (tied, both ways)
    ("deep", "W:h1->h2"),
    ("skip", "W:x->h2"),            # skip from the input
    ("skip", "W:h1->y"),            # skip between state populations
    ("layered", "b:h1"),            # biases
    ("layered", "b:y"),
    ("two_inputs", "W:xa->h"),      # weights from the first ...
    ("two_inputs", "W:xb->h"),      # ... and the second input population
    ("two_inputs", "W:xb->y"),
    ("cycle", "W:h3->h1"),          # the projection that closes a hidden cycle
])
def test_energy_gradient_by_finite_differences(kind, key, seed):
    assert _fd_check(problem(kind, seed), key) < FD_TOL


@pytest.mark.parametrize("seed", SEEDS)
def test_lateral_gradient_by_finite_differences(seed):
    """The lateral matrix is symmetric with zero diagonal: perturbing entries (i, j) and (j, i)
    together changes the loss by ``g_ij + g_ji``; its diagonal gradient is zero."""
    P = problem("lateral", seed)
    w = P.net.params["W:h->h"]
    assert np.array_equal(w, w.T) and not np.any(np.diag(w))
    g = ns.rbp.gradient(P.net, P.x, P.y, state=P.s0)["W:h->h"]
    assert np.allclose(g, g.T, rtol=0, atol=1e-15) and not np.any(np.diag(g))
    assert _fd_check(P, "W:h->h") < FD_TOL


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("kind,key", [
    ("layered", "W:x->h1"),
    ("layered", "W:h1->y"),         # forward matrix (h1 drives y)
    ("layered", "W:y->h1"),         # backward matrix (y drives h1)
    ("cycle", "W:h3->h1"),
    ("cycle", "W:h1->h3"),
    ("lateral", "W:h->h"),          # an untied (asymmetric) lateral matrix, off-diagonal entries
    ("lateral", "b:h"),
])
def test_vector_field_gradient_by_finite_differences(kind, key, seed):
    P = problem(kind, seed, "vector_field", 0.5)
    w = P.net.params[key]
    if is_self_loop(key):
        assert not np.allclose(w, w.T)
    assert _fd_check(P, key) < FD_TOL


@pytest.mark.parametrize("kind", ["layered", "cycle"])
def test_tied_vector_field_gradient_sums_to_energy_gradient(kind):
    """A tied energy weight acts in both directions, so its gradient is the sum of the
    gradients of the vector-field network's forward and (transposed) backward matrices."""
    vf = problem(kind, 0, "vector_field", 0.0)
    params = {k: v for k, v in vf.net.params.items() if k in _energy_keys(vf.net)}
    energy = ns.Network(vf.net.graph.copy(), params, activation="logistic", dynamics="energy")
    gv = ns.rbp.gradient(vf.net, vf.x, vf.y, state=vf.s0)
    ge = ns.rbp.gradient(energy, vf.x, vf.y, state=vf.s0)
    for key in ge:
        a, b = key[2:].split("->") if key.startswith("W:") else (None, None)
        expect = gv[key] + (gv["W:%s->%s" % (b, a)].T if "W:%s->%s" % (b, a) in gv else 0.0)
        assert np.allclose(ge[key], expect, rtol=1e-9, atol=1e-13), key


def _energy_keys(vf_net):
    g = vf_net.graph
    return {"W:%s->%s" % e for e in g.edges} | {"b:%s" % p for p in vf_net.state_pops}


# -- all methods and solvers agree ----------------------------------------------------------------
@pytest.mark.parametrize("kind,seed", problems(("layered", "skip", "lateral", "cycle"), SEEDS))
def test_energy_solvers_agree(kind, seed):
    P = problem(kind, seed)
    ref = ns.rbp.gradient(P.net, P.x, P.y, solver="dense", state=P.s0)
    for solver in ("cg", "gmres", "neumann", "auto"):
        g, stats = ns.rbp.gradient(P.net, P.x, P.y, solver=solver, state=P.s0, return_stats=True)
        assert stats.converged and stats.solver in (solver, "dense")
        assert rel_err(g, ref) < 1e-9, solver
    # a truncated Neumann series is the discrete side network after the same number of steps
    gn = ns.rbp.gradient(P.net, P.x, P.y, solver="neumann", steps=40, state=P.s0)
    ga = ns.rbp.gradient(P.net, P.x, P.y, method="almeida_pineda", steps=40, state=P.s0)
    assert rel_err(gn, ga) < 1e-10 and rel_err(gn, ref) > 1e-3


@pytest.mark.parametrize("kind,seed", problems(("layered", "skip", "lateral", "cycle"), SEEDS))
def test_vector_field_solvers_agree(kind, seed):
    P = problem(kind, seed, "vector_field", 0.5)
    ref = ns.rbp.gradient(P.net, P.x, P.y, solver="dense", state=P.s0)
    for solver in ("gmres", "neumann"):
        assert rel_err(ns.rbp.gradient(P.net, P.x, P.y, solver=solver, state=P.s0), ref) < 1e-9
    with pytest.raises(ValueError, match="gmres"):
        ns.rbp.gradient(P.net, P.x, P.y, solver="cg", state=P.s0)


@pytest.mark.parametrize("kind,seed", problems(("layered", "two_inputs", "cycle"), (0, 1)))
def test_all_methods_agree(kind, seed):
    P = problem(kind, seed)
    ref = ns.rbp.gradient(P.net, P.x, P.y, method="implicit", state=P.s0)
    for method in ("almeida_pineda", "continuous", "bptt"):
        g = ns.rbp.gradient(P.net, P.x, P.y, method=method, eps=P.eps)   # relaxes s0 itself
        assert set(g) == set(P.net.params)
        assert rel_err(g, ref) < 1e-6, method


def test_unknown_method_and_solver_are_rejected():
    P = problem("layered", 0)
    with pytest.raises(ValueError, match="method"):
        ns.rbp.gradient(P.net, P.x, P.y, method="magic")
    with pytest.raises(ValueError, match="solver"):
        ns.rbp.gradient(P.net, P.x, P.y, solver="magic", state=P.s0)


# -- statistics: spectral radius ---------------------------------------------------------------
@pytest.mark.parametrize("kind,seed", problems(("layered", "skip", "two_inputs", "lateral", "cycle"),
                                               (0,)))
def test_spectral_radius_is_reported_and_correct(kind, seed):
    P = problem(kind, seed)
    for method in ("implicit", "almeida_pineda"):
        _, stats = ns.rbp.gradient(P.net, P.x, P.y, method=method, eps=P.eps, state=P.s0,
                                   return_stats=True)
        assert 0.0 < stats.spectral_radius < 1.0
    # independently: eigenvalues of I + eps J with J from central differences of the forces
    J = [_fd_jacobian(P.net, P.s0, P.x, i) for i in range(3)]
    for eps in (P.eps, 1.0):
        want = max(np.max(np.abs(np.linalg.eigvals(np.eye(len(j)) + eps * j))) for j in J)
        got = ns.rbp.spectral_radius(P.net, P.x, eps, state=P.s0)
        assert abs(got - want) < 1e-6
    # too large a step: the discrete side network cannot converge, and says so
    big = 2.5 / min(-np.max(np.linalg.eigvalsh(j)) for j in J)
    assert ns.rbp.spectral_radius(P.net, P.x, big, state=P.s0) > 1.0
    with pytest.raises(ns.RBPConvergenceError, match="spectral radius"):
        ns.rbp.gradient(P.net, P.x, P.y, method="almeida_pineda", eps=big, state=P.s0)


def _fd_jacobian(net, s, x, i, h=1e-6):
    """Central-difference Jacobian dF/ds of example ``i`` (independent of Linearization)."""
    flat0 = en.flatten(net, s)
    n = flat0.shape[1]
    J = np.zeros((n, n))
    for c in range(n):
        cols = []
        for sign in (1.0, -1.0):
            v = flat0.copy()
            v[i, c] += sign * h
            cols.append(en.flatten(net, en.forces(net, en.unflatten(net, v), x))[i])
        J[:, c] = (cols[0] - cols[1]) / (2 * h)
    return J


# -- the Jacobian and its products ------------------------------------------------------------------
@pytest.mark.parametrize("kind,seed", problems(seeds=(0, 1)))
def test_energy_jacobian_is_symmetric_and_stable(kind, seed):
    P = problem(kind, seed)
    lin = en.Linearization(P.net, P.s0, P.x)
    for i in range(lin.batch):
        J = lin.dense(i)
        assert np.allclose(J, J.T, rtol=0, atol=1e-14)
        assert np.max(np.linalg.eigvalsh(J)) < 0       # -J = Hessian of E: positive definite
        assert np.allclose(J, _fd_jacobian(P.net, P.s0, P.x, i), rtol=0, atol=1e-8)


@pytest.mark.parametrize("kind", ["layered", "skip", "lateral", "cycle"])
def test_vector_field_jacobian_is_not_symmetric(kind):
    P = problem(kind, 0, "vector_field", 0.5)
    lin = en.Linearization(P.net, P.s0, P.x)
    J = lin.dense(0)
    assert np.allclose(J, _fd_jacobian(P.net, P.s0, P.x, 0), rtol=0, atol=1e-8)
    assert np.max(np.abs(J - J.T)) > 1e-2
    tied = problem(kind, 0, "vector_field", 0.0)
    J0 = en.Linearization(tied.net, tied.s0, tied.x).dense(0)
    assert np.allclose(J0, J0.T, rtol=0, atol=1e-14)


@pytest.mark.parametrize("dynamics", ["energy", "vector_field"])
@pytest.mark.parametrize("kind", ["deep", "skip", "two_inputs", "lateral", "cycle"])
def test_jvp_vjp_against_finite_differences(kind, dynamics):
    """At a generic (non-fixed-point) state: J v by central differences of the forces, J^T w by
    the adjoint identity, dense(i) rows, and (dF/dtheta)^T w by differences in the parameters."""
    P = problem(kind, 0, dynamics, 0.5 if dynamics == "vector_field" else 0.0)
    net, x = P.net, P.x
    rng = np.random.default_rng(7)
    s = {p: rng.normal(0.5, 0.5, v.shape) for p, v in P.s0.items()}
    v = {p: rng.normal(size=a.shape) for p, a in s.items()}
    w = {p: rng.normal(size=a.shape) for p, a in s.items()}
    lin = en.Linearization(net, s, x)
    h = 1e-6
    fp = en.forces(net, {p: s[p] + h * v[p] for p in s}, x)
    fm = en.forces(net, {p: s[p] - h * v[p] for p in s}, x)
    jv = lin.jvp(v)
    for p in s:
        assert np.allclose(jv[p], (fp[p] - fm[p]) / (2 * h), rtol=0, atol=1e-7)
    jtw = lin.vjp(w)
    lhs = np.sum(flat(w) * flat(jv))
    assert abs(lhs - np.sum(flat(jtw) * flat(v))) < 1e-10 * max(1.0, abs(lhs))
    vf, jvf = en.flatten(net, v), en.flatten(net, jv)
    for i in range(lin.batch):
        assert np.allclose(lin.dense(i) @ vf[i], jvf[i], rtol=0, atol=1e-12)
    # (dF/dtheta)^T w (batch mean) against d/dh <w, F(theta + h d)> / batch
    d = {k: rng.normal(size=a.shape) for k, a in net.params.items()}
    for k, a in d.items():
        if is_self_loop(k):
            if dynamics == "energy":
                a[...] = a + a.T          # lateral matrices stay symmetric ...
            np.fill_diagonal(a, 0.0)      # ... with zero diagonal
    fwd = []
    for sign in (1.0, -1.0):
        pert = net.copy(params={k: net.params[k] + sign * h * d[k] for k in net.params})
        fwd.append(np.sum(flat(w) * flat(en.forces(pert, s, x))))
    fd = (fwd[0] - fwd[1]) / (2 * h) / lin.batch
    an = np.sum(flat(lin.param_vjp(w)) * flat(d))
    assert abs(fd - an) < 1e-7 * max(1.0, abs(an))


@pytest.mark.parametrize("kind", ["layered", "skip", "two_inputs", "lateral", "cycle"])
def test_forces_are_minus_energy_gradient(kind):
    """F = -dE/ds and dE/dtheta by central differences of the energy (energy mode)."""
    P = problem(kind, 0)
    net, x = P.net, P.x
    rng = np.random.default_rng(3)
    s = {p: rng.normal(0.5, 0.5, v.shape) for p, v in P.s0.items()}
    f, h = en.forces(net, s, x), 1e-6
    for p in s:
        for j in range(net.sizes[p]):
            e = []
            for sign in (1.0, -1.0):
                t = {q: v.copy() for q, v in s.items()}
                t[p][:, j] += sign * h
                e.append(en.energy(net, t, x))
            assert np.allclose(-(e[0] - e[1]) / (2 * h), f[p][:, j], rtol=0, atol=1e-8)
    g = en.dE_dtheta(net, s, x)
    for key, v in net.params.items():
        for idx in list(np.ndindex(v.shape))[:12]:
            pair = idx[::-1] if is_lateral(net, key) else None
            if pair is not None and idx[0] == idx[1]:
                continue
            e = []
            for sign in (1.0, -1.0):
                params = {k: a.copy() for k, a in net.params.items()}
                params[key][idx] += sign * h
                if pair is not None:
                    params[key][pair] += sign * h
                e.append(np.mean(en.energy(net.copy(params=params), s, x)))
            an = g[key][idx] + (g[key][pair] if pair is not None else 0.0)
            assert abs((e[0] - e[1]) / (2 * h) - an) < 1e-8, (key, idx)


@pytest.mark.parametrize("kind", ["layered", "skip", "lateral", "cycle"])
def test_tied_vector_field_equals_energy_mode(kind):
    """MATH.md 2: with tied weights the vector field is the energy mode's force."""
    vf = problem(kind, 0, "vector_field", 0.0)
    params = {k: v for k, v in vf.net.params.items() if k in _energy_keys(vf.net)}
    energy = ns.Network(vf.net.graph.copy(), params, activation="logistic", dynamics="energy")
    rng = np.random.default_rng(5)
    s = {p: rng.normal(0.5, 0.5, v.shape) for p, v in vf.s0.items()}
    fv, fe = en.forces(vf.net, s, vf.x), en.forces(energy, s, vf.x)
    for p in s:
        assert np.allclose(fv[p], fe[p], rtol=0, atol=1e-14)
    asym = problem(kind, 0, "vector_field", 0.5)
    fa = en.forces(asym.net, s, asym.x)
    assert max(np.max(np.abs(fa[p] - fv[p])) for p in s) > 1e-3


def test_implicit_gradient_is_nonzero_and_batch_mean():
    """The gradient of the batch-mean loss is the mean of the per-example gradients."""
    P = problem("skip", 1)
    g = ns.rbp.gradient(P.net, P.x, P.y, state=P.s0)
    per = [ns.rbp.gradient(P.net, P.x[i:i + 1], P.y[i:i + 1],
                           state={p: v[i:i + 1] for p, v in P.s0.items()}) for i in range(3)]
    mean = {k: np.mean([q[k] for q in per], axis=0) for k in g}
    assert rel_err(g, mean) < 1e-12 and norm(g) > 1e-3
    assert residual(P.net, P.s0, P.x) < 1e-14
