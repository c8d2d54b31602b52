"""Training-free architecture scoring and design (Zen-NAS, DeepMAD)."""
