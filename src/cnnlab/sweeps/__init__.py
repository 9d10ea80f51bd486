"""Sweeps: what happens around a Hydra multirun (its closing summary); reports come here too."""
