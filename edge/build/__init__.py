"""Build-host side: checkpoints, export, quantization and parity. May import torch and transformers."""
