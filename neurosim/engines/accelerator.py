"""The accelerator engine (``engine.name = "torch"``): the reference engine's maths on PyTorch
tensors, on the CPU or a CUDA GPU (``engine.device``), checked against the reference engine by
the conformance suite (tests/conformance).

The phases are :class:`neurosim.accelerator.dynamics.TensorDynamics` (Euler steps or block
sweeps that settle to ``engine.tol``, the plan's nudged phases from the free state, complex
for holomorphic EP); the estimate is the autograd derivative of the energy's parameter terms
weighted by the plan (:func:`neurosim.accelerator.estimate.plan_contrast`). Parameters stay
``net.params`` (numpy): on the CPU the tensors are views of the same memory, so the optimizer's
update of ``net.params`` is the update on the device; on a GPU they are copied over per batch.
PyTorch is imported when the engine is built (``pip install "neurosim[torch]"``).
"""
from __future__ import annotations

import numpy as np

from ..errors import ConfigurationError
from ..plan import PhaseRun
from .protocol import Engine, Estimate, StepResult, register
from .reference import check_solver


def import_torch():
    """PyTorch, or a ConfigurationError naming ``engine.name`` and the extra to install."""
    try:
        import torch
    except ImportError:
        raise ConfigurationError("engine.name: the torch engine needs PyTorch; install it with "
                                 "pip install \"neurosim[torch]\"") from None
    return torch


def torch_device(name):
    """``engine.device`` as a torch device: ``"auto"`` (a CUDA GPU where torch finds one, else
    the CPU), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``."""
    torch = import_torch()
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except (RuntimeError, TypeError):
        raise ConfigurationError("engine.device: expected \"auto\", \"cpu\", \"cuda\" or "
                                 "\"cuda:N\", got %r" % (name,)) from None
    if dev.type not in ("cpu", "cuda"):
        raise ConfigurationError("engine.device: expected \"auto\", \"cpu\", \"cuda\" or "
                                 "\"cuda:N\", got %r" % (name,))
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigurationError("engine.device: %r asked, but torch finds no CUDA GPU here "
                                 "(torch %s); use \"cpu\" or \"auto\"" % (name, torch.__version__))
    return dev


@register("torch")
class TorchEngine(Engine):
    """EP phases and estimates on PyTorch tensors (module docstring)."""

    settings_used = ("solver", "persistent", "threads", "device")
    rules = ("ep", "continual_ep", "rbp")
    optimizers = True
    complex_nudges = True     # holomorphic EP: complex tensors

    def __init__(self, net, settings, batch_size=None):
        super().__init__(net, settings)
        torch = self.torch = import_torch()
        from ..accelerator.network import TensorNetwork
        check_solver(net, settings)
        self.device = torch_device(settings.device)
        if self.device.type == "cpu":
            torch.set_num_threads(int(settings.threads))
        self.tnet = TensorNetwork(net, self.device)

    # -- the phases ------------------------------------------------------------------------
    def _dynamics(self, x, y=None):
        from ..accelerator.dynamics import TensorDynamics
        net, t = self.net, self.tnet
        inputs = t.tensors(net.inputs_dict(x))
        targets = None
        if y is not None:
            targets = t.tensors(net.targets_dict(y, next(iter(inputs.values())).shape[0]))
        return TensorDynamics(t, inputs, targets, clip=self.settings.clip)

    def _settle(self, dyn, st, beta, steps, record=None):
        s = self.settings
        if isinstance(beta, complex) or np.iscomplexobj(beta):
            torch = import_torch()
            cdt = torch.complex64 if self.tnet.dtype == torch.float32 else torch.complex128
            st = {p: v.to(cdt) for p, v in st.items()}
        return dyn.settle(st, s.eps, beta, steps, s.tol, s.solver, record=record)

    def _phases(self, x, y, state, plan):
        dyn = self._dynamics(x, y)
        runs = []

        def phase(st, b, n):
            out = self._settle(dyn, st, b, n)
            runs.append(PhaseRun(b, out.steps, out.step))
            return out.state
        s0 = phase(dyn.initial_state(state), 0.0, plan.free_steps)
        observed = plan.run(lambda st, b: phase(st, b, plan.nudge_steps), s0)
        return dyn, s0, observed, runs

    # -- the protocol ----------------------------------------------------------------------
    def _estimate(self, x, y, state, rng):
        """The plan's phases and the estimate as tensors: ``(gradient, dyn, s0, runs)``."""
        from ..accelerator.estimate import plan_contrast
        plan = self.plan.for_batch(rng)
        dyn, s0, observed, runs = self._phases(x, y, state, plan)
        g = plan_contrast(self.tnet, dyn.inputs, dyn.targets, observed, plan, s0, dyn.params)
        return g, dyn, s0, runs

    def estimate(self, x, y, state=None, rng=None):
        g, dyn, s0, runs = self._estimate(x, y, state, rng)
        cost = float(self.tnet.cost(dyn.params, s0, dyn.targets).double().mean())
        return Estimate(self.tnet.numpy(g), self.tnet.numpy(s0), cost, runs)

    def step(self, x, y, optimizer, state=None, rng=None, want_estimate=False):
        """The estimate and ``optimizer``'s update on the device
        (:func:`neurosim.accelerator.optimizer.apply`: its rule and state, Adam by torch's
        fused AdamW), written to ``net.params`` (the same memory on the CPU)."""
        from ..accelerator.optimizer import apply
        g, dyn, s0, runs = self._estimate(x, y, state, rng)
        cost = float(self.tnet.cost(dyn.params, s0, dyn.targets).double().mean())
        est = Estimate(self.tnet.numpy(g), self.tnet.numpy(s0), cost, runs) \
            if want_estimate else None
        with self.torch.no_grad():
            apply(optimizer, dyn.params, g)
        if not self.tnet.on_cpu:       # the parameters' truth is net.params
            for k, v in dyn.params.items():
                self.net.params[k][...] = v.cpu().numpy()
        return StepResult(self.tnet.numpy(s0), cost, est, phases=runs)

    def ground_truth(self, x, y, tol, label, state=None):
        """RBP's implicit gradient at the free fixed point polished from the engine's own state,
        on the device (:mod:`neurosim.accelerator.ground_truth`: Newton and CG on
        Jacobian-vector products); where that path cannot verify a point (a saddle, vector-field
        dynamics) or no state is given, the reference implementation's (which verifies or
        raises)."""
        if state is not None:
            from ..accelerator.ground_truth import NotCovered, ground_truth
            try:
                return ground_truth(self, x, y, tol, state)
            except NotCovered:
                pass
        return super().ground_truth(x, y, tol, label, state)

    def free_state(self, x, state=None):
        """The free state after the engine's free phase (numpy arrays)."""
        dyn = self._dynamics(x)
        s = self.settings
        return self.tnet.numpy(self._settle(dyn, dyn.initial_state(state), 0.0,
                                            s.free_steps).state)

    def infer(self, x, state=None):
        dyn = self._dynamics(x)
        st = self._settle(dyn, dyn.initial_state(state), 0.0, self.settings.free_steps).state
        t = self.tnet
        out = {p: t.rho(v) for p, v in st.items()}
        out.update(t.predictions(dyn.params, st))
        return t.numpy(out)

    def phase_trajectory(self, x, y, beta, steps, state=None):
        """The steps (or sweeps) of one phase, every state recorded: the phase of the
        estimate itself (:meth:`_settle` recording each step), so it stops where the
        estimate's phase stops (``engine.tol``), at most ``steps``."""
        dyn = self._dynamics(x, y if beta else None)
        st = dyn.initial_state(state)
        out = [self.tnet.numpy({p: v.clone() for p, v in st.items()})]
        self._settle(dyn, st, beta, steps,
                     record=lambda now: out.append(self.tnet.numpy(
                         {p: v.clone() for p, v in now.items()})))
        return {p: np.stack([o[p] for o in out]) for p in self.net.state_pops}, None


__all__ = ["TorchEngine", "import_torch", "torch_device"]
