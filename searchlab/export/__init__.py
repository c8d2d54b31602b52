"""Export of trained trials: spec + safetensors + model.py."""
