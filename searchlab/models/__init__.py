"""Model definitions (standalone.py is copied into every export as model.py)."""
