"""A face restorer exported to ONNX and run by ONNX Runtime on the CPU.

``OnnxRestorer`` stands in for the PyTorch model wherever one is run (``restore_sequence``):
the same contract, and a forward taking the model's keyword arguments. The model is traced
with the TorchScript exporter (the dynamo one needs onnxscript, which we do not install; ours
needs the ``onnx`` package to serialise, and fetches nothing) at batch 1 for the inputs it is
given: the trace fixes the shapes GAVN reshapes to, so a batch runs one window at a time, and
a video without speech (no audio input) gets a model of its own. Our DCN is pure PyTorch
(``grid_sample`` and a matmul) and exports as such.

Each exported file is kept in the user cache (``$XDG_CACHE_HOME/avrestore/onnx``) under a
digest of the model's class, structure and tensors, the torch version and the inputs' names,
shapes and dtypes, written whole or not at all (``atomic_path``): a later run of the same
weights opens it without exporting, and two runs exporting at once each rename a whole file.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import Tensor, nn

from avrestore.errors import InputError
from avrestore.media.files import atomic_path, user_cache
from avrestore.models.contract import restorer_contract

if TYPE_CHECKING:
    import onnxruntime

OPSET = 17
OUTPUT = "restored"


def default_cache() -> Path:
    """Where exported models are kept: ``$XDG_CACHE_HOME/avrestore/onnx``."""
    return user_cache("onnx")


def model_digest(model: nn.Module) -> str:
    """sha256 of what an exported graph depends on: the model's class, its structure, its
    tensors and the torch version that traces it."""
    h = hashlib.sha256(f"{type(model).__qualname__}\n{model}\n{torch.__version__}".encode())
    for name, tensor in model.state_dict().items():
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


class _Positional(nn.Module):
    """The model with its keyword arguments in a fixed order (the exporter passes them by
    position)."""

    def __init__(self, model: nn.Module, names: list[str]) -> None:
        super().__init__()
        self.model, self.names = model, names

    def forward(self, *inputs: Tensor) -> Tensor:
        """The model's output for its inputs in ``names``' order."""
        return self.model(**dict(zip(self.names, inputs, strict=True)))


def export_restorer(
    model: nn.Module, inputs: Mapping[str, Tensor], path: str | Path, opset: int = OPSET
) -> None:
    """Trace ``model`` (eval mode) on the example ``inputs`` (its forward's keyword
    arguments) into an ONNX file at ``path``, written whole or not at all; the graph takes
    inputs of exactly these shapes."""
    names = list(inputs)
    # Plain tensors: the caller may hold inference-mode ones, which tracing cannot record.
    with torch.inference_mode(False), torch.no_grad():
        example = tuple(t.clone() for t in inputs.values())
    with atomic_path(path) as tmp, warnings.catch_warnings():
        # Tracer warnings about shapes read as Python numbers: the crop size is fixed.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            _Positional(model.eval(), names),
            example,
            str(tmp),
            input_names=names,
            output_names=[OUTPUT],
            opset_version=opset,
            dynamo=False,
        )


def onnx_session(path: str | Path, threads: int) -> onnxruntime.InferenceSession:
    """An ONNX Runtime CPU session of the model at ``path`` on ``threads`` threads, with all
    graph optimisations; its idle threads sleep rather than spin, so that they take no core
    from the decoder and encoder working beside them."""
    import onnxruntime as ort  # takes a while to load: only the ONNX path pays for it

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


class OnnxRestorer(nn.Module):
    """Runs a face restorer with ONNX Runtime on ``threads`` CPU threads: its contract, and
    a forward taking the model's keyword arguments (CPU tensors) and returning its output.

    The model is exported on the first call with each set of input names and shapes, or
    loaded from ``cache`` (default ``default_cache()``) where an earlier run exported it.
    """

    def __init__(self, model: nn.Module, threads: int = 1, cache: Path | None = None) -> None:
        super().__init__()
        self.model = model.eval()
        self.contract = restorer_contract(model)
        self.threads = threads
        self.cache = default_cache() if cache is None else Path(cache)
        self._digest = model_digest(model)
        self._sessions: dict[tuple, onnxruntime.InferenceSession] = {}

    def exported(self, inputs: Mapping[str, Tensor]) -> Path:
        """The ONNX file of the model for one item (batch 1) of inputs of these names, shapes
        and dtypes, exported now unless the cache holds it."""
        one = {n: t[:1] for n, t in inputs.items()}
        key = [self._digest, str(OPSET)]
        key += [f"{n}:{tuple(t.shape[1:])}:{t.dtype}" for n, t in one.items()]
        path = self.cache / f"{hashlib.sha256('|'.join(key).encode()).hexdigest()[:32]}.onnx"
        if not path.is_file():
            try:
                self.cache.mkdir(parents=True, exist_ok=True)
            except OSError as e:
                raise InputError(
                    f"cannot create the ONNX cache {self.cache}: {e.strerror}; "
                    "set XDG_CACHE_HOME to a writable folder"
                ) from None
            export_restorer(self.model, one, path)
        return path

    def session(self, inputs: Mapping[str, Tensor]) -> onnxruntime.InferenceSession:
        """The session running the model on inputs like ``inputs`` (names, and shapes and
        dtypes but the batch), opened (and the model exported) on the first call."""
        key = tuple((n, tuple(t.shape[1:]), t.dtype) for n, t in inputs.items())
        if key not in self._sessions:
            self._sessions[key] = onnx_session(self.exported(inputs), self.threads)
        return self._sessions[key]

    def forward(self, **inputs: Tensor) -> Tensor:
        """The model's output for ``inputs``, computed by ONNX Runtime item by item."""
        session = self.session(inputs)
        outputs = []
        for i in range(len(next(iter(inputs.values())))):
            # Contiguous: ``restore_sequence`` hands over permuted views.
            arrays = {
                n: np.ascontiguousarray(t[i : i + 1].cpu().numpy()) for n, t in inputs.items()
            }
            outputs.append(torch.from_numpy(session.run([OUTPUT], arrays)[0]))
        return torch.cat(outputs)
