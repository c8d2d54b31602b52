"""The engine: storage, trial objective, local workers, run loop, progress."""
