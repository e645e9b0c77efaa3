"""A counter-based random generator: the uniform of a counter ``(seed, example, unit, step)``,
the same number in numpy and in the C++ of a Brian2 ``cpp_standalone`` build.

``u = uniform(seed, example, unit, step)``: each counter is a non-negative integer (below
2^53, as Brian2 passes doubles); the four are folded through the splitmix64 finalizer,
``h = mix(mix(mix(mix(seed) ^ example) ^ unit) ^ step)``, and the top 53 bits of ``h`` give
``u = (h >> 11) / 2^53`` in [0, 1). Integer arithmetic modulo 2^64 and one exact conversion,
so the two implementations agree bit for bit.

A Poisson unit of a spiking circuit with common random numbers (``noise="common"``) fires at
step ``k`` of a phase when ``uniform(seed, e, i, k) < rho * spikes_per_step``: the free,
+beta and -beta phases of example ``e`` replay the same uniforms (``i`` the unit's index in
the network, :func:`unit_offsets`). :func:`brian2_function` wraps it for Brian2 code
(``crn_uniform(seed, example, unit, step)``).
"""
from __future__ import annotations

import numpy as np

#: The name of the function in Brian2 code (and of its C++ implementation).
NAME = "crn_uniform"

_GOLDEN, _M1, _M2 = 0x9E3779B97F4A7C15, 0xBF58476D1CE4E5B9, 0x94D049BB133111EB

CPP_CODE = """
static inline unsigned long long neurosim_splitmix64(unsigned long long z)
{
    z += 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}
static inline double %s(double seed, double example, double unit, double step)
{
    unsigned long long h = neurosim_splitmix64((unsigned long long)(long long)seed);
    h = neurosim_splitmix64(h ^ (unsigned long long)(long long)example);
    h = neurosim_splitmix64(h ^ (unsigned long long)(long long)unit);
    h = neurosim_splitmix64(h ^ (unsigned long long)(long long)step);
    return (double)(h >> 11) * (1.0 / 9007199254740992.0);
}
""" % NAME


def _mix(z):
    z = z + np.uint64(_GOLDEN)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(_M1)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(_M2)
    return z ^ (z >> np.uint64(31))


def _counter(v):
    return np.asarray(v, dtype=np.float64).astype(np.int64).astype(np.uint64)


def uniform(seed, example, unit, step):
    """The uniforms in [0, 1) of the counters (broadcast arrays or numbers; see the module
    docstring), as float64."""
    s, e, i, k = np.broadcast_arrays(*(_counter(v) for v in (seed, example, unit, step)))
    with np.errstate(over="ignore"):
        h = _mix(s)
        h = _mix(h ^ e)
        h = _mix(h ^ i)
        h = _mix(h ^ k)
    return (h >> np.uint64(11)).astype(np.float64) * (1.0 / 9007199254740992.0)


def run_seed(seed, run):
    """The counter seed of run ``run`` of a circuit seeded ``seed`` (both non-negative
    integers): 52 bits of the uniform of ``(seed, run, 0, 0)``, exact as a double, so every
    run (epoch) draws other spikes and the same ``(seed, run)`` the same ones."""
    return int(uniform(seed, run, 0, 0) * 2.0 ** 52)


def unit_offsets(net):
    """Each population's first unit in the network's unit numbering (the order of
    ``net.graph.nodes``): a unit's counter is its offset plus its index in the population."""
    offsets, n = {}, 0
    for q in net.graph.nodes:
        offsets[q] = n
        n += int(net.sizes[q])
    return offsets


def expression(n, offset, example, step, seed="crn_seed"):
    """The Brian2 expression of the common uniform of unit ``i`` of a group of replicas of a
    population of ``n`` units whose first unit is ``offset`` (:func:`unit_offsets`):
    ``example`` and ``step`` are Brian2 expressions of the example's counter and the step
    within the phase, ``seed`` the name of the run's counter seed."""
    return "%s(%s, %s, %d + i %% %d, %s)" % (NAME, seed, example, int(offset), int(n), step)


def brian2_function(b2):
    """``crn_uniform`` as a Brian2 ``Function``: the numpy implementation (runtime device) and
    the C++ one (``cpp_standalone``) give identical uniforms."""
    @b2.implementation("cpp", CPP_CODE, name=NAME)
    @b2.check_units(seed=1, example=1, unit=1, step=1, result=1)
    def crn_uniform(seed, example, unit, step):
        return uniform(seed, example, unit, step)
    return crn_uniform


__all__ = ["NAME", "CPP_CODE", "uniform", "run_seed", "unit_offsets", "expression",
           "brian2_function"]
