"""Exact checks of ReLU networks with Marabou, reading the network as ONNX.

:func:`network_onnx` writes a :class:`~fugu.verify.network.Network` as an ONNX graph of
``Gemm`` and ``Relu`` nodes only (Marabou's ONNX parser rejects the ``Cast`` of fugu's acting
export, and the actions' ``ArgMax``), optionally as two copies sharing their weights (inputs
``x``/``y``, outputs ``out_x``/``out_y``) for ``monotonic`` properties. Marabou reads it, the
input box and the negated property become bounds and linear (in)equations on its variables,
and the answer is *unsat* (holds), *sat* (a counterexample, checked by evaluating the network)
or unknown (timeout). Needs ``maraboupy`` and ``onnx`` (the ``verify`` extra).
"""

from __future__ import annotations

import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from fugu.core.errors import missing_dependency
from fugu.safety.properties import Property
from fugu.verify.network import Network
from fugu.verify.result import TOLERANCE, VerifyResult, confirm, make_result

__all__ = ["check_marabou", "network_onnx"]


def network_onnx(net: Network, path: str | Path, twin: bool = False) -> Path:
    """Write ``net`` as a Gemm/Relu ONNX graph (batch 1); ``twin``: two weight-sharing copies."""
    try:
        import onnx
        from onnx import TensorProto, helper, numpy_helper
    except ImportError as error:
        raise missing_dependency("onnx", "verify") from error
    if not net.is_piecewise_linear:
        raise ValueError("Marabou checks ReLU networks; this one has tanh layers")
    initializers = []
    for k, (weight, bias, _) in enumerate(net.layers):
        initializers.append(numpy_helper.from_array(weight.astype(np.float32), f"w{k}"))
        initializers.append(numpy_helper.from_array(bias.astype(np.float32), f"b{k}"))
    nodes, inputs, outputs = [], [], []
    for copy in ("x", "y") if twin else ("x",):
        inputs.append(helper.make_tensor_value_info(copy, TensorProto.FLOAT, [1, net.num_inputs]))
        h = copy
        for k, (_, _, activation) in enumerate(net.layers):
            z = f"{copy}_z{k}"
            nodes.append(helper.make_node("Gemm", [h, f"w{k}", f"b{k}"], [z], transB=1))
            h = z
            if activation == "relu":
                nodes.append(helper.make_node("Relu", [z], [f"{copy}_h{k}"]))
                h = f"{copy}_h{k}"
        nodes.append(helper.make_node("Identity", [h], [f"out_{copy}"]))
        outputs.append(
            helper.make_tensor_value_info(f"out_{copy}", TensorProto.FLOAT, [1, net.num_outputs])
        )
    graph = helper.make_graph(nodes, "fugu_verify", inputs, outputs, initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    onnx.checker.check_model(model)
    path = Path(path)
    onnx.save(model, str(path))
    return path


def _marabou() -> Any:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # its note that the TensorFlow parser is missing
            from maraboupy import Marabou
    except ImportError as error:
        raise missing_dependency("maraboupy", "verify") from error
    return Marabou


def _solve(Marabou: Any, network: Any, timeout_s: float) -> tuple[str, dict[int, float]]:
    """Solve in a forked child killed at the timeout: Marabou 2.0.0 does not always honour
    its own ``timeoutInSeconds`` (it ran on for minutes on a degenerate query)."""
    import multiprocessing

    options = Marabou.createOptions(verbosity=0, timeoutInSeconds=max(1, int(timeout_s)))
    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)

    def child() -> None:
        answer, values, _ = network.solve(options=options, verbose=False)
        sender.send((str(answer), {int(k): float(v) for k, v in values.items()}))

    process = context.Process(target=child, daemon=True)
    process.start()
    try:
        if receiver.poll(timeout_s + 2.0):
            answer, values = receiver.recv()
            return str(answer), dict(values)
        return "timeout (killed)", {}
    except EOFError:
        return "the solver process died", {}
    finally:
        if process.is_alive():
            process.kill()
        process.join()


def check_marabou(net: Network, prop: Property, timeout_s: float = 60.0) -> VerifyResult:
    """Decide ``prop`` on ``net`` exactly with Marabou (``unknown`` on timeout or tanh)."""
    start = time.perf_counter()
    prop.check_sizes(net.num_inputs, net.num_outputs)
    if not net.is_piecewise_linear:
        return make_result(prop, "marabou", "unknown", 0.0,
                           detail="tanh is not piecewise linear; train a relu policy")  # fmt: skip
    Marabou = _marabou()
    twin = prop.kind == "monotonic"
    with tempfile.TemporaryDirectory(prefix="fugu-verify-") as tmp:
        path = network_onnx(net, Path(tmp) / "net.onnx", twin=twin)
        names = ["x", "y"] if twin else ["x"]
        queries = ["lower", "upper"] if prop.kind == "output_bounds" else ["main"]
        last = "unsat"
        for query in queries:
            bound = prop.lower if query == "lower" else prop.upper
            if query != "main" and not np.isfinite(bound):
                continue
            network = Marabou.read_onnx(
                str(path), inputNames=names, outputNames=[f"out_{n}" for n in names]
            )
            xs = [np.asarray(v).reshape(-1) for v in network.inputVars]
            outs = [np.asarray(v).reshape(-1) for v in network.outputVars]
            for vars_ in xs:
                for v, lo, hi in zip(vars_, prop.low, prop.high):
                    network.setLowerBound(int(v), float(lo))
                    network.setUpperBound(int(v), float(hi))
            out = outs[0]
            if prop.kind == "never_action":
                a = int(out[prop.action])
                for j, v in enumerate(out):
                    if j != prop.action:  # logit_j - logit_a <= 0
                        network.addInequality([int(v), a], [1.0, -1.0], 0.0)
            elif query == "lower":
                network.addInequality([int(out[prop.output])], [1.0], prop.lower - TOLERANCE)
            elif query == "upper":
                network.addInequality([int(out[prop.output])], [-1.0], -(prop.upper + TOLERANCE))
            else:
                x, y = xs
                for i in range(net.num_inputs):
                    if i == prop.input:  # x_i - y_i <= 0
                        network.addInequality([int(x[i]), int(y[i])], [1.0, -1.0], 0.0)
                    else:
                        network.addEquality([int(y[i]), int(x[i])], [1.0, -1.0], 0.0)
                ox, oy = int(out[prop.output]), int(outs[1][prop.output])
                if prop.direction == "increasing":  # out_y - out_x <= -tol
                    network.addInequality([oy, ox], [1.0, -1.0], -TOLERANCE)
                else:
                    network.addInequality([ox, oy], [1.0, -1.0], -TOLERANCE)
            answer, values = _solve(Marabou, network, timeout_s)
            if answer == "sat":
                points = np.array([[values[int(v)] for v in vars_] for vars_ in xs])
                seconds = time.perf_counter() - start
                if not confirm(net, prop, points):
                    detail = "the solution did not reproduce in float64"
                    return make_result(prop, "marabou", "unknown", seconds, detail=detail)
                return make_result(prop, "marabou", "violated", seconds, net, points, "sat")
            if answer != "unsat":
                last = answer
    seconds = time.perf_counter() - start
    if last != "unsat":
        return make_result(prop, "marabou", "unknown", seconds, detail=last)
    return make_result(prop, "marabou", "holds", seconds, detail="unsat")
