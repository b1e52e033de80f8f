"""Tagging metrics and the evaluation of a saved checkpoint, exact or on a sampler backend."""
