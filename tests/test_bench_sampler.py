"""benchmarks/bench_sampler.py compares like with like: its naive build is the package's model."""

from __future__ import annotations

import importlib.util
import warnings
from pathlib import Path

import torch
from qiskit_machine_learning.primitives import QMLSampler

from qk_lstm_qiskit.config import load_config
from qk_lstm_qiskit.errors import ProductKernelWarning
from qk_lstm_qiskit.data.tasks import prepare_data

BENCH = Path(__file__).resolve().parent.parent / "benchmarks" / "bench_sampler.py"


def load_bench():
    spec = importlib.util.spec_from_file_location("bench_sampler", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_naive_build_equals_the_sampler_path_and_the_exact_model_on_exact_probabilities():
    """Same weights, same outputs and parameter gradients (to TorchConnector's float32), more calls."""
    bench = load_bench()
    warnings.simplefilter("ignore", ProductKernelWarning)
    config = load_config(bench.PAPER_CONFIG)
    data = prepare_data(config.data)
    words = torch.tensor([[data.words.stoi[w] for w in ("The", "dog")]])  # (1, 2)
    outputs, grads, calls = {}, {}, {}
    for executor in ("exact", "sampler", "naive"):
        counting = bench.CountingSampler(QMLSampler(shots=None))
        model = bench.build(executor, config, data, counting)
        out = model(words)
        out.sum().backward()
        outputs[executor] = out.detach()
        grads[executor] = {n: p.grad.clone() for n, p in model.named_parameters()}
        calls[executor] = counting.reset()
    for executor in ("sampler", "naive"):
        torch.testing.assert_close(outputs[executor], outputs["exact"], atol=1e-5, rtol=0)
        assert grads[executor].keys() == grads["exact"].keys()
        for name, grad in grads[executor].items():
            torch.testing.assert_close(grad, grads["exact"][name], atol=1e-5, rtol=1e-4, msg=name)
    assert calls["sampler"] == {"jobs": 4, "pubs": 4, "bindings": 2 * 16 * (1 + 2 * 8)}  # x angles only: fixed refs
    assert calls["naive"]["jobs"] == 2 * 16 * 2 and calls["naive"]["pubs"] == 2 * 16 * (1 + 2 * 16)
