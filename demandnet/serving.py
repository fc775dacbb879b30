"""From a CSV to predictions with an exported model and its preprocessing JSON: no checkpoint, no Trainer.

    python -m demandnet.serving model=checkpoints/best.onnx input_csv=CSV output_csv=OUT [image_dir=DIR]

or in Python:

    from demandnet.serving import ExportedModel
    model = ExportedModel("checkpoints/best.onnx")   # reads checkpoints/best.preprocessing.json beside it
    probabilities = model.predict_csv("test.csv")   # (N,) float, input order, in [0, 1]
    arrays = model.encode_csv("test.csv")           # or encode yourself: {input name: (N, ...) numpy array}

The encoding is the DataModule's own (same category maps, numeric stats, vocabulary or tokenizer, photo loading
and its missing-photo fallback), restored from the JSON; the network runs in onnxruntime (`.onnx`, needs the
`export` extra) or TorchScript (`.torchscript.pt`, torch only).
"""

from __future__ import annotations

import json
import logging
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from demandnet.cli import parse_args
from demandnet.data.datamodule import DemandDataModule
from demandnet.data.dataset import DemandDataset
from demandnet.data.schema import DataError
from demandnet.export import FORMATS, preprocessing_path
from demandnet.outputs import write_submission

log = logging.getLogger("demandnet.serving")


class ExportedModel:
    """An exported model plus its preprocessing state; `predict_csv` and `predict_arrays` give deal_probability."""

    def __init__(self, model_path: str | Path, preprocessing: str | Path | None = None) -> None:
        self.path = Path(model_path)
        if not self.path.name.endswith(tuple(FORMATS.values())):
            raise ValueError(f"{self.path}: not an exported model (.onnx or .torchscript.pt); export a checkpoint "
                             "with python -m demandnet.export, or predict from it with python -m demandnet.predict")  # fmt: skip
        state_path = Path(preprocessing) if preprocessing else preprocessing_path(self.path)
        for path in (self.path, state_path):
            if not path.is_file():
                raise FileNotFoundError(f"not found: {path} (python -m demandnet.export writes both files)")
        state = json.loads(state_path.read_text(encoding="utf-8"))
        self.input_names: list[str] = list(state["inputs"])
        self.datamodule = DemandDataModule(root=".", num_workers=0)
        self.datamodule.load_state_dict(state["datamodule"])
        self._run = _onnx_runner(self.path) if self.path.suffix == ".onnx" else _torchscript_runner(self.path)

    def encode_csv(self, csv: str | Path, image_dir: str | None = None) -> DemandDataset:
        """The CSV's rows encoded with the fitted state; photos are read lazily, batch by batch."""
        return self.datamodule.encode_for_prediction(csv, image_dir)

    def batches(self, dataset: DemandDataset, batch_size: int = 256) -> Iterator[dict[str, np.ndarray]]:
        """{input name: (b, ...) array} per batch of rows, in input order, with the dtypes the model takes."""
        for start in range(0, len(dataset), batch_size):
            batch = dataset.__getitems__(list(range(start, min(start + batch_size, len(dataset)))))
            yield {name: _as_input(batch[name]) for name in self.input_names}

    def predict_arrays(self, arrays: dict[str, np.ndarray]) -> np.ndarray:
        """(b,) deal_probability of one batch of encoded inputs."""
        missing = [name for name in self.input_names if name not in arrays]
        if missing:
            raise ValueError(f"{self.path}: the batch lacks inputs {missing}; the model takes {self.input_names}")
        return np.asarray(self._run([arrays[name] for name in self.input_names]), dtype=np.float64)

    def predict_dataset(self, dataset: DemandDataset, batch_size: int = 256) -> np.ndarray:
        parts = [self.predict_arrays(arrays) for arrays in self.batches(dataset, batch_size)]
        return np.concatenate(parts) if parts else np.zeros(0)

    def predict_csv(self, csv: str | Path, image_dir: str | None = None, batch_size: int = 256) -> np.ndarray:
        return self.predict_dataset(self.encode_csv(csv, image_dir), batch_size)


def _as_input(tensor: torch.Tensor) -> np.ndarray:
    """Integer ids as int64, everything else as float32: the exported graph's input types."""
    dtype = np.float32 if tensor.is_floating_point() else np.int64
    return tensor.numpy().astype(dtype, copy=False)


def _onnx_runner(path: Path) -> Callable[[list[np.ndarray]], np.ndarray]:
    try:
        import onnxruntime
    except ImportError as err:
        raise ImportError("an .onnx model needs onnxruntime: pip install 'demandnet[export]'") from err
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [i.name for i in session.get_inputs()]
    return lambda tensors: session.run(None, dict(zip(names, tensors)))[0]


def _torchscript_runner(path: Path) -> Callable[[list[np.ndarray]], np.ndarray]:
    module = torch.jit.load(str(path), map_location="cpu").eval()

    def run(tensors: list[np.ndarray]) -> np.ndarray:
        with torch.no_grad():
            return module(*[torch.from_numpy(t) for t in tensors]).numpy()

    return run


@dataclass
class ServingConfig:
    model: str = "???"
    input_csv: str = "???"
    output_csv: str = "???"
    preprocessing: str | None = None  # default: <model stem>.preprocessing.json beside the model
    image_dir: str | None = None
    batch_size: int = 256


def main(argv: list[str] | None = None) -> None:
    cfg = parse_args(ServingConfig, argv, __doc__, "demandnet.serving")
    if cfg is None:
        return
    try:
        model = ExportedModel(cfg.model, cfg.preprocessing)
        dataset = model.encode_csv(cfg.input_csv, cfg.image_dir)
        predictions = model.predict_dataset(dataset, cfg.batch_size)
        write_submission(cfg.output_csv, dataset.item_ids, predictions)
    except (DataError, FileNotFoundError, ImportError, ValueError) as err:
        sys.exit(f"demandnet.serving: {err}")
    log.info("wrote %d predictions to %s", len(predictions), cfg.output_csv)


if __name__ == "__main__":
    main()
