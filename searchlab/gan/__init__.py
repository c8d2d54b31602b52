"""GAN studies (`task: generate`): MedFID and friends (metrics.py, features.py) and the training loop (train.py).
The networks are torch-only, in searchlab/models/gan.py (with gan_common.py, gan_dcgan.py, stylegan2.py and
stylegan2_discriminator.py)."""
