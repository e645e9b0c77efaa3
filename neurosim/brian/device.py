"""Brian2 devices for neurosim circuits: the runtime device (numpy code generation, for small
networks and debugging) and C++ standalone (compiled once, for speed), with clear errors for
a missing compiler or a failed build, and build folders where the user says."""
from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
import tempfile
import threading
from ..errors import NeurosimError

DEVICES = ("runtime", "cpp_standalone")


class CircuitError(NeurosimError, RuntimeError):
    """A circuit cannot be built or run; the message says what to do."""


def check_compilable(net, readouts=("state",)):
    """What a Brian2 circuit cannot hold, as a :class:`CircuitError` naming the field: a
    readout other than ``readouts`` (default: the output neurons' states,
    ``network.readout``), and convolutional projections (each synapse of a Brian2
    ``Synapses`` object has its own weight; a kernel shared across positions is not compiled
    yet)."""
    if net.readout not in readouts:
        raise CircuitError("network.readout: a Brian2 circuit nudges its output neurons toward "
                           "the target (readout 'state'); %r readouts run on the reference "
                           "engine" % net.readout)
    convs = list(net.convs)
    if convs:
        raise CircuitError("network.projections: %s %s convolutional; Brian2 circuits compile "
                           "dense projections only (train it with the reference engine)"
                           % (", ".join(k[2:] for k in convs), "is" if len(convs) == 1 else "are"))


_IMPORT_LOCK = threading.Lock()


def import_brian2():
    """``brian2``, or a :class:`CircuitError` that says how to install it.

    Importing brian2 installs a SIGINT handler, which Python allows only on the main thread;
    off it (a Dask worker's task thread in ``neurosim sweep``, a GUI or server thread) the
    import goes ahead without that handler (Ctrl-C then interrupts as Python's default)."""
    patched = "brian2" not in sys.modules and threading.current_thread() is not \
        threading.main_thread()
    with _IMPORT_LOCK if patched else contextlib.nullcontext():
        install = signal.signal
        if patched:
            signal.signal = lambda signum, handler: signal.getsignal(signum)
        try:
            import brian2
        except ImportError as e:  # pragma: no cover - brian2 is a dependency
            raise CircuitError("the Brian2 circuits need brian2 (pip install 'brian2==2.9.0', "
                               "which needs numpy < 2.4): %s" % e) from None
        finally:
            signal.signal = install
    return brian2


def standalone_failure(folder, error):
    """The :class:`CircuitError` for a failed standalone build or run in ``folder``."""
    return CircuitError(
        "the Brian2 standalone build or run failed in %s (%s: %s). Check that the C++ compiler "
        "works (g++ --version), that the folder is writable, or use device='runtime'"
        % (folder, type(error).__name__, str(error).strip().splitlines()[-1][:300]))


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


def new_standalone_device():
    """A C++ standalone device of its own: every compiled circuit holds one, so several
    circuits (and runtime runs) live side by side in one process, each built once."""
    import_brian2()
    from brian2.devices.cpp_standalone.device import CPPStandaloneDevice
    return CPPStandaloneDevice()


#: The step of Brian2's clock in the compiled training circuits (ms): 2^-10 s, a binary
#: fraction, so that a clock of n steps ticks at k * (n dt), bit for bit the step clock's
#: (k n) * dt. Brian2's C++ loop runs together only clocks whose times differ by at most
#: 1e-14 s; with a step such as 5 ms (not a binary fraction) the slot and phase clocks drifted
#: from the step clock by more than that after some hundred slots, and those slots ran their
#: phase control out of order (a wrong update for that batch).
EXACT_DT_MS = 1000.0 / 1024


def time_scale(dt_ms):
    """The factor by which a circuit whose step is ``dt_ms`` runs its time so that its clock
    steps :data:`EXACT_DT_MS`: every time constant is multiplied by it, every rate divided
    (the dynamics depend on their ratios to the step only)."""
    return EXACT_DT_MS / float(dt_ms)


@contextlib.contextmanager
def standalone_device(dt_ms, dev, **options):
    """Inside the block ``dev`` (a device of :func:`new_standalone_device`) is Brian2's active
    device, with the default clock at ``dt_ms``; afterwards the device active before is
    again. ``options``: the device's build options (``directory``, ``with_output``)."""
    b2 = import_brian2()
    from brian2.devices import reset_device, set_device
    set_device(dev, build_on_run=options.pop("build_on_run", False), **options)
    try:
        b2.defaultclock.dt = dt_ms * b2.ms
        yield dev
    finally:
        reset_device()          # back to the device set before this one


def compile_standalone(folder, dt_ms, make_network, steps, advice, threads=1):
    """Build ``make_network()`` (a Brian2 Network, created on a standalone device of its own)
    for a run of ``steps`` steps of ``dt_ms`` and compile it in ``folder``; returns that
    device (run it with ``device.run(run_args=...)`` inside :func:`standalone_device`).
    Brian2's warning that a synaptic copy's outcome may depend on the order of execution is
    silenced (the circuits' copies write each target from exactly one source). A failure is
    a :class:`CircuitError` that names the folder and ends with ``advice``. ``threads`` > 1
    compiles the run with that many OpenMP threads (Brian2's
    ``devices.cpp_standalone.openmp_threads``)."""
    b2 = import_brian2()
    from brian2.utils.logger import catch_logs
    dev = new_standalone_device()
    b2.prefs.devices.cpp_standalone.openmp_threads = int(threads) if threads > 1 else 0
    try:
        with standalone_device(dt_ms, dev, directory=folder, with_output=False), \
                catch_logs(only_from=("brian2.codegen.generators.base",)):
            netw = make_network()
            netw.run(steps * dt_ms * b2.ms, namespace={})
            dev.build(directory=folder, compile=True, run=False, with_output=False)
    except Exception as e:
        raise CircuitError("the Brian2 standalone build failed in %s (%s: %s); check that the "
                           "C++ compiler works (g++ --version) or %s"
                           % (folder, type(e).__name__, str(e).strip()[-300:], advice)) from None
    finally:   # the thread count is compiled in: later builds start from the default again
        b2.prefs.devices.cpp_standalone.openmp_threads = 0
    return dev


def build_folder(build_dir=None, prefix="neurosim-brian-"):
    """A folder for a standalone build: ``build_dir`` (created) or a fresh temporary one."""
    if build_dir is None:
        return tempfile.mkdtemp(prefix=prefix)
    os.makedirs(build_dir, exist_ok=True)
    return build_dir
