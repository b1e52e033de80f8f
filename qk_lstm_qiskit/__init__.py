"""qk_lstm_qiskit: the Quantum-Kernel LSTM on Qiskit circuits, trained in torch.

Public API: exactly ``__all__`` below. Quantum resources (samplers, pass managers) are passed
in as keyword arguments; :func:`resolve_backend` builds them from a backend name.
"""

from .backends import resolve_backend
from .cell import QKLSTMCell
from .checkpoint import load_tagger
from .config import RunConfig, load_config
from .errors import ProductKernelWarning, QKLSTMError
from .estimate import estimate_cost
from .experiment import run_training
from .feature_map import FeatureMap
from .journal import JournaledSampler
from .kernel import QuantumKernel
from .lstm import QKLSTM
from .qlstm import QLSTM, QLSTMCell
from .statevector import StatevectorExecutor
from .tagger import Tagger, build_tagger, count_parameters

__all__ = [
    "FeatureMap",
    "QuantumKernel",
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
    "resolve_backend",
    "estimate_cost",
    "JournaledSampler",
    "QKLSTMError",
    "ProductKernelWarning",
]
