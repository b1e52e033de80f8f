"""Gradients of sampler probabilities by the parameter-shift rule, batched for the primitives."""
