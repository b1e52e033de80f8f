"""``qk-lstm diagnose``: what a config's kernel does on the projected inputs of its task.

The sample is the kernel's actual inputs ``u_t = P [h_{t-1}; x_t]`` of the first QK-LSTM layer
(at initialisation, or of ``--checkpoint``), labelled with the tokens' tags; the report is
:func:`qk_lstm_qiskit.kernels.diagnostics.diagnose` as ``diagnostics.json`` and ``concentration.png``.
"""

from __future__ import annotations

import argparse
import math
from typing import TYPE_CHECKING, cast

from .arguments import integer, path

if TYPE_CHECKING:
    from ..nn.cell import QKLSTMCell
    from ..nn.lstm import QKLSTM

__all__ = ["add_command"]


def _projected_inputs(tagger, sentences, max_points: int):
    """``(u (N, q), tags (N,))`` of the first cell, collected by a forward hook on its projection."""
    import torch

    cell = tagger.recurrent.cells[0]
    cell.fused = False  # the per-step loop calls cell.projection as a module
    collected: list = []
    handle = cell.projection.register_forward_hook(lambda module, args, out: collected.append(out.detach()))
    labels = []
    try:
        with torch.no_grad():
            for words, tags in sentences:
                tagger(torch.tensor([words]))
                labels.extend(tags)
                if len(labels) >= max_points:
                    break
    finally:
        handle.remove()
    u = torch.cat(collected)[:max_points]
    return u, torch.tensor(labels[:max_points])


def _cmd_diagnose(args: argparse.Namespace) -> int:
    import dataclasses
    import warnings

    from ..checkpoint import load_tagger
    from ..config import load_config
    from ..data.tasks import prepare_data
    from ..errors import ProductKernelWarning
    from ..data.series import is_series_source
    from ..kernels.diagnostics import check_concentration_memory, diagnose, plot_diagnostics
    from ..nn.tagger import build_tagger, feature_map_spec
    from ..rundir import check_out_dir, claim_out_dir, write_json_atomic
    from ..training.trainer import seed_everything

    if args.config and args.checkpoint:
        raise ValueError(f"diagnose: expected --config or --checkpoint (a checkpoint holds its config), got both "
                         f"({args.config!r}, {args.checkpoint!r})")
    try:
        qubits = tuple(int(q) for q in args.qubits.split(",")) if args.qubits else ()
        bandwidths = tuple(float(s) for s in args.bandwidths.split(","))
    except ValueError:
        qubits, bandwidths = (0,), ()
    if any(q < 1 for q in qubits) or not bandwidths or not all(0 < s < math.inf for s in bandwidths):
        raise ValueError(
            "diagnose: expected --qubits as integers >= 1 and --bandwidths as finite numbers > 0, "
            f"got {args.qubits!r}, {args.bandwidths!r}"
        )
    outputs = ("diagnostics.json", "concentration.png")
    check_out_dir(args.out, command="diagnose", outputs=outputs)  # before any computation
    with warnings.catch_warnings():  # diagnose reports the product property itself (no note line)
        warnings.simplefilter("ignore", ProductKernelWarning)
        if args.checkpoint:
            tagger, _, _, config = load_tagger(args.checkpoint)
        else:
            config = load_config(args.config)
        if config.model.kind != "qk-lstm":
            raise ValueError(f"diagnose: expected model.kind 'qk-lstm', got {config.model.kind!r}")
        source = args.data or config.data.source
        if is_series_source(source):
            raise ValueError(f"diagnose: expected a tagging data source ('paper' or a CoNLL-U file), got {source!r} "
                             "(forecasting kernels are not diagnosed yet)")
        spec = feature_map_spec(config.model)

        def make_map(n: int):
            return dataclasses.replace(spec, num_qubits=n).build()

        check_concentration_memory(make_map, qubits)
        data = prepare_data(dataclasses.replace(config.data, source=args.data) if args.data else config.data)
        if not args.checkpoint:
            seed_everything(config.train.seed)
            tagger = build_tagger(config.model, len(data.words), len(data.tags)).eval()
        u, labels = _projected_inputs(tagger, data.train, args.max_points)
        first = cast("QKLSTMCell", cast("QKLSTM", tagger.recurrent).cells[0])
        report = diagnose(first.kernel, u, labels.tolist(), make_map=make_map,
                          qubits=qubits, bandwidths=bandwidths, seed=config.train.seed)
    report["config"] = config.model.__dict__ | {"data": config.data.source}
    with claim_out_dir(args.out, command="diagnose", outputs=outputs) as out:
        write_json_atomic(report, out / "diagnostics.json")
        if report["concentration"]:
            plot_diagnostics(report, out / "concentration.png")
    sample = report["sample"]
    print(f"feature map: {report['feature_map']}")
    print(f"product kernel: {report['product_kernel']}  (decided from the compiled circuit)")
    print(f"sample: {sample['num_points']} projected inputs; off-diagonal k mean {sample['offdiagonal_mean']:.4g}, "
          f"variance {sample['offdiagonal_var']:.4g}")
    print(f"geometric difference to RBF: {sample['geometric_difference_rbf']:.4g}; effective dimension "
          f"{sample['effective_dimension']:.3g} (RBF {sample['effective_dimension_rbf']:.3g})")
    for row in report["concentration"]:
        print(f"  n={row['num_qubits']:2d} s={row['bandwidth']:<5g} mean {row['mean']:.3e}  var {row['var']:.3e}")
    print(f"outputs: {out}/diagnostics.json" + (f", {out}/concentration.png" if report["concentration"] else ""))
    return 0


def add_command(sub: argparse._SubParsersAction) -> None:
    """Add ``diagnose`` to the ``qk-lstm`` subcommands."""
    parser = sub.add_parser("diagnose", help="kernel diagnostics: product or not, concentration, geometric difference")
    parser.add_argument("--config", type=path, help="YAML of the model and task (default: the package defaults, the paper's)")
    parser.add_argument("--checkpoint", type=path, help="diagnose a trained model.pt instead of the config's initial model")
    parser.add_argument("--data", type=path, help="'paper' or a CoNLL-U file (default: the config's)")
    parser.add_argument("--out", type=path, default="runs/diagnose", help="folder for diagnostics.json and concentration.png")
    parser.add_argument("--max-points", type=integer(2), default=200, help="projected inputs in the sample (default 200)")
    parser.add_argument("--qubits", default="2,4,6,8", help="qubit counts of the concentration rows ('' for none)")
    parser.add_argument("--bandwidths", default="1,0.1", help="bandwidths s of the concentration rows")
    parser.set_defaults(func=_cmd_diagnose)
