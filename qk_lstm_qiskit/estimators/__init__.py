"""Statistics of kernel estimators from measured bits: what a kernel value costs in shots, and its error.

Pure numpy, no circuits run here. Each estimator has an unbiased estimate from counts, its variance
formula and an exact shot-noise simulation that draws counts from exact outcome distributions
(multinomial / binomial, never shot by shot through a simulator):

``compute_uncompute``
    ``k̂`` = frequency of ``0…0`` in ``U†(y)U(x)|0⟩``: one circuit per ``(x, y)`` pair.
``tomography``
    product maps: each qubit's Bloch vector of ``U(x)|0⟩`` from 3 circuits per input (X, Y, Z on
    all qubits at once), ``k̂ = Π_q (1 + r̂_q·s_q)/2`` against the references' exact Bloch vectors.
``shadows``
    any map: classical shadows of ``U(x)|0⟩`` in random Pauli bases evaluated against the
    references' exact states, ``k̂ = mean ⟨φ|ρ̂|φ⟩``; all references from the same shots.
``depolarizing``
    the global-depolarising correction of Hubregtsen et al. (arXiv 2105.02276) from echo circuits.
``bases``
    Pauli measurement settings, their basis-change angles, per-qubit linear maps on distributions.
"""
