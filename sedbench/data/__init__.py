"""Datasets, annotations, the synthetic generator, the mixture recipe, features and sequences.

Everything here is plain Python usable without Hydra. Heavy libraries (librosa, torch)
are imported inside the functions that need them.
"""
