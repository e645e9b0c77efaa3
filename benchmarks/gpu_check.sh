#!/usr/bin/env bash
# The torch engine on a CUDA GPU, in one short run (for a session that is lent a GPU; nothing
# depends on it): the conformance cases and the engine's own tests on the GPU, the two engines'
# benchmark (one epoch each), then CIFAR-10 for what is left of the budget.
#
#     bash benchmarks/gpu_check.sh            # about 8 minutes on an H100
#
# Each part prints its own numbers; record them in benchmarks/README.md with the card's name.
set -uo pipefail
cd "$(dirname "$0")/.."
python -c "import torch, sys; print(torch.__version__, torch.cuda.get_device_name(0) if torch.cuda.is_available() else 'no CUDA GPU'); sys.exit(0 if torch.cuda.is_available() else 2)" || exit 2
NEUROSIM_TEST_DEVICE=cuda timeout 150 python -m pytest -q -x tests/conformance -k torch tests/test_accelerator.py
timeout 150 python benchmarks/bench_engines.py --quick --device cuda
timeout 240 python benchmarks/gpu_cifar10.py --epochs 1 --budget 200
