"""qk_lstm_qiskit: the Quantum-Kernel LSTM on Qiskit circuits, trained in torch.

Public API: exactly ``__all__`` below. Quantum resources (samplers, pass managers) are passed
in as keyword arguments; :func:`resolve_backend` builds them from a backend name.
"""

from .hardware.backends import resolve_backend
from .nn.cell import QKLSTMCell
from .checkpoint import load_forecaster, load_tagger
from .config import RunConfig, load_config
from .errors import ProductKernelWarning, QKLSTMError
from .hardware.cost import estimate_cost
from .training.experiment import run_training
from .circuits.feature_map import CircuitFeatureMap, FeatureMap, PaperFeatureMap
from .circuits.library import build_feature_map
from .kernels.alignment import kernel_target_alignment, train_alignment
from .kernels.diagnostics import diagnose
from .hardware.journal import JournaledSampler
from .hardware.mitigation import MitigatedSampler
from .kernels.kernel import QuantumKernel
from .nn.lstm import QKLSTM
from .nn.qlstm import QLSTM, QLSTMCell
from .kernels.statevector import StatevectorExecutor
from .nn.tagger import Tagger, build_tagger, count_parameters
from .nn.forecaster import Forecaster, build_forecaster
from .data.series import load_series, make_windows

__all__ = [
    "FeatureMap",
    "CircuitFeatureMap",
    "PaperFeatureMap",
    "build_feature_map",
    "QuantumKernel",
    "diagnose",
    "kernel_target_alignment",
    "train_alignment",
    "QKLSTMCell",
    "QKLSTM",
    "QLSTMCell",
    "QLSTM",
    "StatevectorExecutor",
    "Tagger",
    "build_tagger",
    "count_parameters",
    "RunConfig",
    "load_config",
    "run_training",
    "load_tagger",
    "Forecaster",
    "build_forecaster",
    "load_forecaster",
    "load_series",
    "make_windows",
    "resolve_backend",
    "estimate_cost",
    "JournaledSampler",
    "MitigatedSampler",
    "QKLSTMError",
    "ProductKernelWarning",
]
