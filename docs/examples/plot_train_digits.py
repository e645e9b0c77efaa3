"""
Training on digits through the circuit-file API
===============================================

The built-in ``default`` circuit (scikit-learn's 8x8 digits, a 64-256-10 hard-sigmoid
network, symmetric EP at ``beta = 0.5``) loaded with overrides, built and trained the way
``neurosim run`` trains it, for a few epochs only. The trainer logs the test accuracy after
each epoch and, on a few batches per epoch, the cosine of EP's update to RBP's gradient at
the same weights. Nothing is written to disk: the trainer has no checkpoint path.
"""
import matplotlib.pyplot as plt
import numpy as np

from neurosim import config
from neurosim.commands.run import build_engine, build_trainer

circuit, _ = config.load("default", ["train.epochs=8", "train.fidelity_batches=3"])
net = config.build_network(circuit.network, circuit.resistive.model_dump())
data = config.build_dataset(circuit.dataset, circuit.network.dtype)
config.check_fit(net, data)
engine = build_engine(circuit, net)
trainer = build_trainer(circuit, engine, data, progress=False)   # checkpoint=None: no files
history = trainer.fit()
engine.close()

fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.6))
ax1.plot(history["epoch"], history["train_accuracy"], "o-", label="train (during the epoch)")
ax1.plot(history["epoch"], history["test_accuracy"], "s-", label="test (after the epoch)")
ax1.set_xlabel("epoch")
ax1.set_ylabel("accuracy")
ax1.set_title("%s network, %d train / %d test digits"
              % ("-".join(map(str, circuit.network.sizes)), data.n_train, data.n_test))
ax1.legend()
ax1.grid(alpha=0.3)

f = trainer.fidelity
ax2.plot(f["epoch_fraction"], f["cosine/all"], "o")
ax2.set_xlabel("epochs trained before the batch")
ax2.set_ylabel("cosine(EP update, RBP gradient)")
ax2.set_title("EP at beta = %g against RBP" % circuit.learning.beta)
ax2.set_ylim(0, 1)
ax2.grid(alpha=0.3)
fig.tight_layout()

print("circuit %r: %s %s network, %s EP at beta = %g, %d epochs"
      % (circuit.name, "-".join(map(str, circuit.network.sizes)), circuit.network.activation,
         circuit.learning.variant, circuit.learning.beta, circuit.train.epochs))
print("test accuracy after %d epochs: %.4f (%.1f s of training)"
      % (history["epoch"][-1], history["test_accuracy"][-1], sum(history["seconds"])))
print("cosine of EP's update to RBP's gradient: mean %.3f, worst %.3f over %d batches"
      % (np.nanmean(f["cosine/all"]), np.nanmin(f["cosine/all"]), len(f["cosine/all"])))
