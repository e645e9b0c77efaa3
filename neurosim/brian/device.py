"""Brian2 devices for neurosim circuits: the runtime device (numpy code generation, for small
networks and debugging) and C++ standalone (compiled once, for speed), with clear errors for
a missing compiler or a failed build, and build folders where the user says."""
from __future__ import annotations

import os
import shutil
import tempfile

DEVICES = ("runtime", "cpp_standalone")


class CircuitError(RuntimeError):
    """A circuit cannot be built or run; the message says what to do."""


def import_brian2():
    """``brian2``, or a :class:`CircuitError` that says how to install it."""
    try:
        import brian2
    except ImportError as e:  # pragma: no cover - brian2 is a dependency
        raise CircuitError("the Brian2 circuits need brian2 (pip install 'brian2==2.9.0', which "
                           "needs numpy < 2.4): %s" % e) from None
    return brian2


def check_device(device):
    if device not in DEVICES:
        raise CircuitError("device must be one of %s, got %r" % (DEVICES, device))


def check_compiler():
    """The C++ compiler Brian2's standalone device will call, or a clear error."""
    cxx = os.environ.get("CXX", "g++")
    if shutil.which(cxx.split()[0]) is None:
        raise CircuitError("device='cpp_standalone' needs a C++ compiler, and %r was not found on "
                           "PATH: install one (Debian: apt-get install g++) or set CXX, or use "
                           "device='runtime'" % cxx)
    return cxx


def build_folder(build_dir=None, prefix="neurosim-brian-"):
    """A folder for a standalone build: ``build_dir`` (created) or a fresh temporary one."""
    if build_dir is None:
        return tempfile.mkdtemp(prefix=prefix)
    os.makedirs(build_dir, exist_ok=True)
    return build_dir
