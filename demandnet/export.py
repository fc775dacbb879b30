"""Export a checkpoint for serving, with its preprocessing state:

    python -m demandnet.export ckpt_path=CKPT [format=onnx|torchscript] [output=PATH] [opset=18]

Writes the model (`best.onnx` or `best.torchscript.pt` next to the checkpoint unless output=PATH) and, beside it,
`<stem>.preprocessing.json`: the DataModule's fitted state (category maps, numeric stats, vocabulary or tokenizer,
image config) and the model's input names. The model takes the pre-encoded batch tensors (dynamic batch size) and
returns deal_probability in [0, 1]; `demandnet.serving` goes from a CSV to predictions with the two files.
"""

from __future__ import annotations

import logging
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch

from demandnet import batch as keys
from demandnet.cli import parse_args
from demandnet.data.datamodule import DemandDataModule
from demandnet.outputs import write_json
from demandnet.predict import load_checkpoint, restore
from demandnet.serving_model import ExportError, ServingModel

log = logging.getLogger("demandnet.export")
FORMATS = {"onnx": ".onnx", "torchscript": ".torchscript.pt"}
OUTPUT_NAME = "deal_probability"
FORMAT_VERSION = 1


@dataclass
class ExportConfig:
    ckpt_path: str = "???"
    format: str = "onnx"  # or torchscript
    output: str | None = None  # default: next to the checkpoint, e.g. checkpoints/best.onnx
    opset: int = 18  # ONNX opset (onnxruntime >= 1.14 runs 18)


def default_output(ckpt_path: str | Path, fmt: str) -> Path:
    path = Path(ckpt_path)
    return path.with_name(path.stem + FORMATS[fmt])


def preprocessing_path(model_path: str | Path) -> Path:
    """`best.onnx` -> `best.preprocessing.json`; `best.torchscript.pt` -> `best.preprocessing.json`;
    `model.v1.onnx` -> `model.v1.preprocessing.json` (only a known format suffix is taken off)."""
    path = Path(model_path)
    stem = next((path.name[: -len(s)] for s in FORMATS.values() if path.name.endswith(s)), path.stem)
    return path.with_name(stem + ".preprocessing.json")


def example_inputs(datamodule: DemandDataModule, names: list[str]) -> tuple[torch.Tensor, ...]:
    """Two rows shaped as the DataModule encodes them: one full (photo, every token), one empty (no photo, no
    text), so tracing takes the general path of every mask rather than a shortcut for all-valid inputs."""
    dims = datamodule.model_dims()
    tokenizer = datamodule.text_tokenizer
    shapes: dict[str, tuple[tuple[int, ...], torch.dtype]] = {
        keys.CATEGORICAL: ((len(dims["tabular"]["cardinalities"]),), torch.int64),
        keys.NUMERIC: ((dims["tabular"]["num_numeric"],), torch.float32),
        keys.HAS_IMAGE: ((), torch.float32),
    }
    if datamodule.image_config is not None:
        shapes[keys.IMAGE] = (tuple(datamodule.image_config["input_size"]), torch.float32)
    for field, length in (getattr(tokenizer, "max_len", None) or {}).items():
        shapes[keys.field_ids(field)] = ((length,), torch.int64)
    if hasattr(tokenizer, "length"):
        shapes[keys.TEXT_IDS] = shapes[keys.TEXT_MASK] = ((tokenizer.length,), torch.int64)
    tensors = []
    for name in names:
        shape, dtype = shapes[name]
        value = torch.zeros((2, *shape), dtype=dtype)
        if name in (keys.HAS_IMAGE, keys.TEXT_MASK) or name.endswith("_ids"):
            value[0] = 1  # row 0 valid everywhere (id 1 is a real token id: unknown word / a vocabulary entry)
        if name in (keys.TEXT_IDS, keys.TEXT_MASK):
            value[1, 0] = 1  # a transformer input always holds its first special token
        tensors.append(value)
    return tuple(tensors)


def export_onnx(model: ServingModel, inputs: tuple[torch.Tensor, ...], output: Path, opset: int) -> None:
    """The TorchScript-based exporter (dynamo=False): it needs no onnxscript, and traces the GRU and the
    HuggingFace attention masks that torch.export would have to treat as data-dependent."""
    axes = {name: {0: "batch"} for name in [*model.input_names, OUTPUT_NAME]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the deprecation notice of the TorchScript-based exporter
        torch.onnx.export(model, inputs, str(output), input_names=model.input_names, output_names=[OUTPUT_NAME],
                          dynamic_axes=axes, opset_version=opset, dynamo=False)  # fmt: skip


def export_torchscript(model: ServingModel, inputs: tuple[torch.Tensor, ...], output: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)  # HF's shape asserts: constant for a fixed length
        traced = torch.jit.trace(model, inputs, check_trace=False)
    traced.save(str(output))


def run(cfg: ExportConfig) -> tuple[Path, Path]:
    if cfg.format not in FORMATS:
        raise ValueError(f"format must be one of {sorted(FORMATS)}, got {cfg.format!r}")
    checkpoint = load_checkpoint(cfg.ckpt_path)
    datamodule, model = restore(checkpoint, num_workers=0)
    serving = ServingModel(model)
    inputs = example_inputs(datamodule, serving.input_names)
    output = Path(cfg.output) if cfg.output else default_output(cfg.ckpt_path, cfg.format)
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp = output.with_name(f".{output.name}.tmp")  # written whole, then renamed: never a half-written model
    try:
        with torch.no_grad():
            if cfg.format == "onnx":
                export_onnx(serving, inputs, tmp, cfg.opset)
            else:
                export_torchscript(serving, inputs, tmp)
    except Exception as err:
        tmp.unlink(missing_ok=True)
        if isinstance(err, ExportError):
            raise
        raise ExportError(f"{cfg.format} export of {cfg.ckpt_path} failed ({type(err).__name__}: {err})") from err
    tmp.replace(output)
    # the same for both formats, so an .onnx and a .torchscript.pt of one checkpoint share it
    state = {
        "format_version": FORMAT_VERSION,
        "inputs": serving.input_names,
        "output": OUTPUT_NAME,
        "checkpoint": str(Path(cfg.ckpt_path).resolve()),
        "datamodule": checkpoint[DemandDataModule.__qualname__],
    }
    state_path = preprocessing_path(output)
    write_json(state_path, state)
    log.info("wrote %s and %s (inputs: %s)", output, state_path, ", ".join(serving.input_names))
    return output, state_path


def main(argv: list[str] | None = None) -> None:
    cfg = parse_args(ExportConfig, argv, __doc__, "demandnet.export")
    if cfg is None:
        return
    try:
        run(cfg)
    except (ExportError, FileNotFoundError, ValueError) as err:
        sys.exit(f"demandnet.export: {err}")


if __name__ == "__main__":
    main()
