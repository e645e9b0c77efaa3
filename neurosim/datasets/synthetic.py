"""The synthetic tasks: teacher (labels from a fixed random network), xor, and bars (a small
image task for convolutional networks)."""
from __future__ import annotations

import numpy as np

from .dataset import Dataset
from .errors import DatasetError
from .options import float_option, int_option

BARS_CLASSES = ("horizontal", "vertical", "diagonal", "anti-diagonal")


def _balance_offsets(out, iters=500):
    """Offsets ``c`` such that ``argmax(out - c)`` puts about equally many rows in each class."""
    m, k = out.shape
    c = np.zeros(k)
    scale = float(np.std(out)) + 1e-12
    best_err, best = np.inf, c.copy()
    for it in range(iters):
        counts = np.bincount(np.argmax(out - c, axis=1), minlength=k)
        err = np.max(np.abs(counts - m / k))
        if err < best_err:
            best_err, best = err, c.copy()
            if err < 1:
                break
        c += (counts / m - 1.0 / k) * scale * 2.0 / (1.0 + it / 20.0)
    return best


def teacher(n_in=20, n_hidden=16, n_classes=4, n_train=1000, n_test=200, seed=0, gain=1.0,
            n_reference=512):
    """A controlled task: inputs uniform in [0, 1]^n_in, labelled by a fixed random network.

    The teacher is ``layered([n_in, n_hidden, n_classes], "logistic", seed=seed+1000,
    gain=gain)`` relaxed with ``relax(net, x, tol=1e-8)``; the label is
    ``argmax(output - offsets)``. The offsets are fitted once, on ``n_reference`` extra inputs,
    so that each class gets about ``1/n_classes`` of them (a raw argmax is badly unbalanced);
    the labelling is then one fixed function, independent of ``n_train``/``n_test``.
    Returns ``(x_train, labels_train, x_test, labels_test, info)``.
    """
    from ..network import layered
    from ..relax import relax
    rng = np.random.default_rng([seed, 2])
    x_ref = np.random.default_rng([seed, 3]).uniform(0.0, 1.0, (n_reference, n_in))
    x = rng.uniform(0.0, 1.0, (n_train + n_test, n_in))
    net = layered([n_in, n_hidden, n_classes], activation="logistic", seed=seed + 1000, gain=gain)
    res = relax(net, np.concatenate([x_ref, x]), tol=1e-8)
    out = res.state[net.outputs[0]]
    offsets = _balance_offsets(out[:n_reference])
    labels = np.argmax(out[n_reference:] - offsets, axis=1)
    info = {"teacher": net, "offsets": offsets, "relax_steps": int(res.steps)}
    return x[:n_train], labels[:n_train], x[n_train:], labels[n_train:], info


def teacher_dataset(name, opts):
    """The :func:`teacher` task: ``(Dataset, scale)`` for :func:`finish`."""
    sizes = {k: int_option(opts, k, m) for k, m in
             (("n_in", 1), ("n_hidden", 1), ("n_classes", 2), ("n_train", 1), ("n_test", 1),
              ("n_reference", 2))}
    if sizes["n_reference"] < sizes["n_classes"]:
        raise DatasetError("option n_reference must be at least n_classes (%d), got %d"
                           % (sizes["n_classes"], sizes["n_reference"]))
    gain = opts["gain"]
    if isinstance(gain, bool) or not isinstance(gain, (int, float, np.integer, np.floating)) \
            or not np.isfinite(gain) or gain <= 0:
        raise DatasetError("option gain must be a positive number, got %r" % (gain,))
    xtr, ltr, xte, lte, info = teacher(seed=opts["seed"], gain=float(gain), **sizes)
    info.update(sizes, gain=float(gain))
    return Dataset("teacher", xtr, None, ltr, xte, None, lte, sizes["n_classes"],
                   source="synthetic: teacher network layered(%s, seed=%d, gain=%g)"
                   % ([sizes["n_in"], sizes["n_hidden"], sizes["n_classes"]],
                      opts["seed"] + 1000, gain),
                   class_names=tuple(str(i) for i in range(sizes["n_classes"])), info=info), 1.0


XOR_X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
XOR_LABELS = np.array([0, 1, 1, 0])


def xor_dataset(name, opts):
    """The 4 XOR points. Train: the points repeated ``repeat`` times, each copy jittered by
    Gaussian noise of std ``jitter`` clipped to [0, 1]; test: the 4 clean points (so with
    the defaults train == test, as usual for XOR)."""
    repeat = int_option(opts, "repeat", 1)
    jitter = float_option(opts, "jitter", 0.0, 0.5)
    x = np.tile(XOR_X, (repeat, 1))
    if jitter > 0:
        rng = np.random.default_rng([opts["seed"], 4])
        x = np.clip(x + rng.normal(0.0, jitter, x.shape), 0.0, 1.0)
    return Dataset("xor", x, None, np.tile(XOR_LABELS, repeat), XOR_X.copy(), None,
                   XOR_LABELS.copy(), 2, source="synthetic: XOR truth table",
                   class_names=("0", "1"), info={"repeat": repeat, "jitter": jitter}), 1.0


def bars(size=8, n_train=1000, n_test=200, noise=0.1, seed=0):
    """A small image task for convolutional networks: ``size x size`` grey images, each one
    bar of ``size // 2 + 1`` bright pixels at a random place, horizontal, vertical, diagonal
    or anti-diagonal (the class), plus Gaussian pixel noise of std ``noise``, clipped to
    [0, 1]. The class does not depend on where the bar is (what convolutions share).
    Returns ``(x, labels)`` of ``n_train + n_test`` images, ``x`` ``(n, size * size)``."""
    rng = np.random.default_rng([seed, 5])
    n, L = n_train + n_test, size // 2 + 1
    labels = rng.integers(0, 4, n)
    x = np.zeros((n, size, size))
    k = np.arange(L)
    a = rng.integers(0, size, n)                # the row (or column) of a straight bar
    b = rng.integers(0, size - L + 1, n)        # where along it the bar starts
    c = rng.integers(0, size - L + 1, n)        # a diagonal's other offset
    for i in range(n):
        rows, cols = {0: (np.full(L, a[i]), b[i] + k), 1: (b[i] + k, np.full(L, a[i])),
                      2: (b[i] + k, c[i] + k), 3: (b[i] + k, c[i] + L - 1 - k)}[labels[i]]
        x[i, rows, cols] = 1.0
    x = np.clip(x + rng.normal(0.0, noise, x.shape), 0.0, 1.0) if noise > 0 else x
    return x.reshape(n, -1), labels


def bars_dataset(name, opts):
    """The :func:`bars` task: ``(Dataset, scale)`` for :func:`finish`."""
    size = int_option(opts, "size", 4)
    n_train, n_test = int_option(opts, "n_train", 1), int_option(opts, "n_test", 1)
    noise = float_option(opts, "noise", 0.0, 1.0)
    x, labels = bars(size, n_train, n_test, noise, opts["seed"])
    return Dataset("bars", x[:n_train], None, labels[:n_train], x[n_train:], None,
                   labels[n_train:], 4, source="synthetic: bars %dx%d, noise %g"
                   % (size, size, noise), class_names=BARS_CLASSES,
                   info={"size": size, "noise": noise}, image_shape=(1, size, size)), 1.0
