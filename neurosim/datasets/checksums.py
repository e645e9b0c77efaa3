"""The SHA-256 of the dataset files as distributed (datasets/README.md), and :func:`verify`."""
from __future__ import annotations

import hashlib
from .cifar import find_cifar_files
from .digits import digits_file
from .errors import DatasetError
from .idx import find_idx_files
from .options import check_name

# SHA-256 of the files as distributed (datasets/README.md).
CHECKSUMS = {
    "digits": {"digits.csv.gz": "09f66e6debdee2cd2b5ae59e0d6abbb73fc2b0e0185d2e1957e9ebb51e23aa22"},
    "fashion-mnist": {
        "t10k-images-idx3-ubyte.gz": "cc1d090a38ace84dfa1aa66e3ada7c336ef481a96936906477e6dd344da56eaa",
        "t10k-labels-idx1-ubyte.gz": "8d3605d196f4be44669e46906da9733c8131fef761fdbfec72c424d5222f1a05",
        "train-images-idx3-ubyte.gz": "b0564c3eedabfbf835052cff8503ea422014ce006caf5b757f851416ee8300c7",
        "train-labels-idx1-ubyte.gz": "0ae29f65d86684f32d1b9c85147786c547b9c6aebcaf235f0400a0cce308b056",
    },
}


def _sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def verify(name, path=None):
    """SHA-256 of the files ``load(name)`` would read, against the known checksums.

    Returns ``{file: {"sha256": ..., "expected": ... or None, "ok": bool or None}}`` (``ok`` is
    None where no checksum is known, e.g. MNIST or uncompressed copies).
    """
    check_name(name)
    if name in ("teacher", "xor", "bars"):
        raise DatasetError("dataset %r is synthetic: there are no files to verify" % name)
    if name == "digits":
        files = [digits_file()]
    elif name in ("cifar-10", "cifar-100"):
        found = find_cifar_files(path, name)
        files = [*found["train"], found["test"]]
    else:
        files = list(find_idx_files(name, path).values())
    known = CHECKSUMS.get(name, {})
    out = {}
    for f in files:
        digest = _sha256(f)
        expected = known.get(f.name)
        out[str(f)] = {"sha256": digest, "expected": expected,
                       "ok": None if expected is None else digest == expected}
    return out
