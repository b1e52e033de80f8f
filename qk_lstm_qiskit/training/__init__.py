"""Training runs: the trainer loop, one run end to end, the paper's Table I / Fig. 3."""
