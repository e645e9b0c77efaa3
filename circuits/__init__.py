"""Ready-to-run circuit files (TOML), installed as the package data ``neurosim.circuits``."""
