"""Named feature maps with trainable layers and a bandwidth per encoding layer.

``paper`` (H, RY(arctan s x), RZ(arctan (s x)²), CNOTs), and Qiskit's ``zz``, ``z`` and ``pauli``
maps (``qiskit.circuit.library.zz_feature_map`` …), built as

.. math::
    U(x) = E_R(s_R x)\\, W_R \\cdots E_1(s_1 x)\\, W_1,\\qquad
    W_l = \\prod_{k=1}^{L} \\bigotimes_q R_z(w_{lkq}) R_y(w'_{lkq})

with ``E_l`` one repetition of the map, ``s_l`` its bandwidth (trainable with
``trainable_scaling``, as ``s_l = exp(t_l)`` with weight ``t_l``: optimiser steps then scale ``s``
by factors, and it stays positive) and ``L = trainable_layers`` variational RY·RZ layers before every
repetition (a layer after the last one would cancel in ``U†(y)U(x)``). Weights start at 0, so
an untrained map is the plain map. ``paper`` without trainable layers or bandwidths is
:class:`FeatureMap` itself.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from qiskit.circuit import Parameter, ParameterVector, QuantumCircuit
from qiskit.circuit.library import pauli_feature_map, z_feature_map

from ..validation import check_choice, check_int, check_number
from .feature_map import ENTANGLEMENTS, FeatureMap, PaperFeatureMap, entangling_pairs

__all__ = ["FEATURE_MAPS", "FeatureMapSpec", "encoding_layer", "build_feature_map"]

FEATURE_MAPS = ("paper", "zz", "z", "pauli")  #: names :func:`build_feature_map` (and ``model.feature_map``) accept


def encoding_layer(kind: str, x, entanglement: str = "linear", paulis: tuple[str, ...] = ("Z", "ZZ")) -> QuantumCircuit:
    """One repetition ``E(x)`` of map ``kind`` on ``len(x)`` qubits; ``x`` parameters or expressions."""
    n = len(x)
    if kind == "paper":
        layer = QuantumCircuit(n, name="paper")
        layer.h(range(n))
        for i in range(n):
            layer.ry(x[i].arctan(), i)
            layer.rz((x[i] * x[i]).arctan(), i)
        for control, target in entangling_pairs(n, entanglement):
            layer.cx(control, target)
        return layer
    if kind == "z":
        layer = z_feature_map(n, reps=1, parameter_prefix="_x")
    elif kind in ("zz", "pauli"):
        if entanglement == "none":
            raise ValueError(f"build_feature_map: expected entanglement in ('linear', 'circular', 'full') for '{kind}', got 'none' (use 'z')")
        terms = ["Z", "ZZ"] if kind == "zz" else list(paulis)
        layer = pauli_feature_map(n, reps=1, paulis=terms, entanglement=entanglement, parameter_prefix="_x")
    else:
        raise ValueError(f"build_feature_map: expected kind in {FEATURE_MAPS}, got {kind!r}")
    return layer.assign_parameters({p: x[p.index] for p in layer.parameters})


def build_feature_map(
    kind: str,
    num_qubits: int,
    *,
    reps: int = 1,
    entanglement: str = "linear",
    paulis: tuple[str, ...] = ("Z", "ZZ"),
    trainable_layers: int = 0,
    input_scaling: float = 1.0,
    trainable_scaling: bool = False,
    dtype: torch.dtype | None = None,
) -> FeatureMap:
    """The named map (module docstring); ``paper`` with no trainable layer is :class:`FeatureMap`.

    ``trainable_scaling`` learns one bandwidth per qubit for the plain paper map (as
    :class:`FeatureMap`) and one per repetition otherwise.

    Raises:
        TypeError, ValueError: bad sizes, an unknown ``kind``/``entanglement``, empty ``paulis``.
    """
    check_int("build_feature_map", "trainable_layers", trainable_layers, 0)
    check_choice("build_feature_map", "kind", kind, FEATURE_MAPS)
    if kind == "paper" and trainable_layers == 0:  # the paper's class validates its own arguments
        return PaperFeatureMap(
            num_qubits, reps, entanglement, input_scaling=input_scaling, trainable_scaling=trainable_scaling, dtype=dtype
        )
    check_int("build_feature_map", "num_qubits", num_qubits, 1)
    check_int("build_feature_map", "reps", reps, 1)
    check_choice("build_feature_map", "entanglement", entanglement, ENTANGLEMENTS)
    if kind == "pauli" and (not paulis or not all(isinstance(p, str) and p and set(p) <= set("IXYZ") for p in paulis)):
        raise ValueError(f"build_feature_map: expected paulis as strings over I, X, Y, Z, got {paulis!r}")
    check_number("build_feature_map", "input_scaling", input_scaling, minimum=0, strict=True)
    n = num_qubits
    x = ParameterVector("x", n)
    weights = ParameterVector("w", 2 * n * trainable_layers * reps)
    log_bandwidth = ParameterVector("log_s", reps if trainable_scaling else 0)
    bandwidth = [t.exp() for t in log_bandwidth] if trainable_scaling else [float(input_scaling)] * reps
    circuit = QuantumCircuit(n, name=f"{kind}(reps={reps}, L={trainable_layers})")
    for rep in range(reps):
        for layer in range(trainable_layers):
            base = 2 * n * (rep * trainable_layers + layer)
            for q in range(n):
                circuit.ry(weights[base + q], q)
                circuit.rz(weights[base + n + q], q)
        scale = bandwidth[rep]
        scaled = list(x) if isinstance(scale, float) and scale == 1.0 else [xi * scale for xi in x]
        circuit.compose(encoding_layer(kind, scaled, entanglement, tuple(paulis)), inplace=True)
    weight_params: list[Parameter] = [*weights, *log_bandwidth]
    initial = [0.0] * len(weights) + [math.log(input_scaling)] * len(log_bandwidth)
    return FeatureMap.from_circuit(
        circuit, input_params=list(x), weight_params=weight_params, initial_weights=initial, dtype=dtype
    )


@dataclass(frozen=True)
class FeatureMapSpec:
    """Which feature map to build (:func:`build_feature_map`): one value travels instead of eight options.

    Attributes:
        kind: ``paper`` (default) | ``zz`` | ``z`` | ``pauli``.
        num_qubits: qubits = features (default 4).
        reps: repetitions of the encoding (default 1, the paper's circuit).
        entanglement: ``linear`` (default), ``circular``, ``full`` or ``none``.
        paulis: the ``pauli`` map's terms (default ``("Z", "ZZ")``).
        trainable_layers: RY·RZ layers before every repetition (default 0).
        input_scaling: the initial bandwidth ``s > 0`` (default 1.0).
        trainable_scaling: learn the bandwidth (default False).
    """

    kind: str = "paper"
    num_qubits: int = 4
    reps: int = 1
    entanglement: str = "linear"
    paulis: tuple[str, ...] = ("Z", "ZZ")
    trainable_layers: int = 0
    input_scaling: float = 1.0
    trainable_scaling: bool = False

    def build(self, *, dtype: torch.dtype | None = None) -> FeatureMap:
        """The map (validated by :func:`build_feature_map`)."""
        return build_feature_map(
            self.kind, self.num_qubits, reps=self.reps, entanglement=self.entanglement, paulis=tuple(self.paulis),
            trainable_layers=self.trainable_layers, input_scaling=self.input_scaling,
            trainable_scaling=self.trainable_scaling, dtype=dtype,
        )
