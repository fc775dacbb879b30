"""The fusion model: output range, gradients to every parameter, losses, plain hyperparameters."""

import io

import pytest
import torch

from demandnet import batch as keys
from demandnet.models.fusion import FusionHead
from demandnet.models.regressor import DemandRegressor

TABULAR = {"_target_": "demandnet.models.tabular.TabularBranch", "hidden_size": 16}
DIMS = {"tabular": {"cardinalities": [5, 3, 9], "num_numeric": 4}}


def _batch(b: int = 6) -> dict[str, torch.Tensor]:
    return {
        keys.CATEGORICAL: torch.stack([torch.randint(0, n, (b,)) for n in (5, 3, 9)], dim=1),
        keys.NUMERIC: torch.randn(b, 4),
        keys.TARGET: torch.rand(b),
        keys.INDEX: torch.arange(b),
    }


def test_fusion_sizes_itself_and_projects():
    head = FusionHead([7, 3], hidden_sizes=[8], projection_dim=4)
    out = head([torch.randn(5, 7), torch.randn(5, 3)])
    assert out.shape == (5,)


@pytest.mark.parametrize("loss", ["mse", "bce"])
def test_every_parameter_gets_a_gradient_and_predictions_are_probabilities(loss):
    model = DemandRegressor(branches={"image": None, "text": None, "tabular": TABULAR}, dims=DIMS, loss=loss)
    batch = _batch()
    model._loss(model(batch), batch[keys.TARGET]).backward()
    missing = [n for n, p in model.named_parameters() if p.requires_grad and (p.grad is None or not p.grad.any())]
    assert not missing
    out = model.predict_step(batch, 0)
    assert out["prediction"].shape == (6,) and ((out["prediction"] >= 0) & (out["prediction"] <= 1)).all()
    assert torch.equal(out[keys.INDEX], batch[keys.INDEX])


def test_hyperparameters_are_plain_and_load_weights_only():
    model = DemandRegressor(branches={"tabular": TABULAR}, dims=DIMS)
    buffer = io.BytesIO()
    torch.save({"hyper_parameters": dict(model.hparams), "state_dict": model.state_dict()}, buffer)
    buffer.seek(0)
    loaded = torch.load(buffer, weights_only=True)
    again = DemandRegressor(**loaded["hyper_parameters"])
    again.load_state_dict(loaded["state_dict"])
    batch = _batch()
    assert torch.allclose(model.eval()(batch), again.eval()(batch))


def test_bad_config_is_refused():
    with pytest.raises(ValueError, match="model.loss"):
        DemandRegressor(branches={"tabular": TABULAR}, dims=DIMS, loss="huber")
    with pytest.raises(ValueError, match="switched off"):
        DemandRegressor(branches={"image": None, "text": {}}, dims=DIMS)


def test_inference_branches_never_download():
    branches = {"image": {"name": "resnet50", "pretrained": True, "checkpoint_path": "/x.pth"}, "text": None}
    rebuilt = DemandRegressor.inference_branches(branches)
    assert rebuilt["image"]["pretrained"] is False and rebuilt["image"]["checkpoint_path"] is None
    assert branches["image"]["pretrained"] is True  # the caller's dict is left alone


@pytest.mark.parametrize("loss", ["mse", "bce"])
@pytest.mark.parametrize("mean", [0.14, 0.6])
def test_an_untrained_model_starts_at_the_train_mean(loss, mean):
    """The output bias starts at logit(train mean): early predictions sit at the mean, not at sigmoid(0) = 0.5."""
    torch.manual_seed(0)
    model = DemandRegressor(branches={"tabular": TABULAR}, dims=DIMS, loss=loss, target_mean=mean).eval()
    with torch.no_grad():
        predictions = model.predict_step(_batch(256), 0)["prediction"]
    assert abs(float(predictions.mean()) - mean) < 0.05


def test_compile_works_in_place_and_keeps_parameter_names():
    torch.manual_seed(0)
    plain = DemandRegressor(branches={"tabular": TABULAR}, dims=DIMS).eval()
    compiled = DemandRegressor(branches={"tabular": TABULAR}, dims=DIMS, compile=True,
                               compile_options={"backend": "eager"}).eval()  # fmt: skip
    compiled.load_state_dict(plain.state_dict())
    compiled.configure_model()
    assert all(m._compiled_call_impl is not None for m in [*compiled.branches.values(), compiled.fusion])
    assert list(compiled.state_dict()) == list(plain.state_dict())
    batch = _batch()
    torch.testing.assert_close(compiled(batch), plain(batch))
