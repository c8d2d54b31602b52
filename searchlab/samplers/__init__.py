"""searchlab's own Optuna samplers (registered by name in searchlab/strategy.py)."""
