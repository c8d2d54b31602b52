"""GAN studies (`task: generate`): MedFID and friends (metrics.py, features.py) and the training loop (train.py).
The networks and losses are torch-only, in searchlab/models/gan.py."""
