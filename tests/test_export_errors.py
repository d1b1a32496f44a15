"""Bad models and bad arguments get clear errors naming the problem and the fix."""
from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from buckbi import (ExportError, NonFiniteWeightError, TrainingModeError, UnsupportedLayerError,
                    WidthMismatchError, export_model, export_model_to_ltspice)


def test_unsupported_layer_is_named_with_the_supported_list():
    with pytest.raises(UnsupportedLayerError) as err:
        export_model(nn.Sequential(nn.Linear(3, 2), nn.GELU()))
    msg = str(err.value)
    assert "GELU" in msg and "'1'" in msg
    assert "Supported modules" in msg and "LSTMCell" in msg


def test_unsupported_layer_deep_in_nested_sequential():
    with pytest.raises(UnsupportedLayerError, match=r"Conv1d at '1.0'"):
        export_model(nn.Sequential(nn.Linear(3, 2), nn.Sequential(nn.Conv1d(1, 1, 1))))


@pytest.mark.parametrize("bad", [math.nan, math.inf, -math.inf])
def test_non_finite_weight(bad):
    lin = nn.Linear(2, 2)
    with torch.no_grad():
        lin.weight[1, 0] = bad
    with pytest.raises(NonFiniteWeightError, match="Linear at '0' weight"):
        export_model(nn.Sequential(lin))


def test_non_finite_batchnorm_statistics():
    bn = nn.BatchNorm1d(2).eval()
    bn.running_var[0] = math.nan
    with pytest.raises(NonFiniteWeightError, match="running_var"):
        export_model(nn.Sequential(nn.Linear(2, 2), bn))


def test_width_mismatch_between_layers():
    with pytest.raises(WidthMismatchError, match="expects 5 features but the previous layer gives 4"):
        export_model(nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(5, 1)))


def test_width_mismatch_batchnorm():
    with pytest.raises(WidthMismatchError):
        export_model(nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(6).eval()))


def test_width_mismatch_input_names():
    with pytest.raises(WidthMismatchError):
        export_model(nn.Sequential(nn.Linear(3, 1)), input_names=["a", "b"])


@pytest.mark.parametrize("layer", [nn.BatchNorm1d(4), nn.Dropout(0.2)])
def test_training_mode_batchnorm_dropout(layer):
    model = nn.Sequential(nn.Linear(3, 4), layer, nn.Linear(4, 1)).train()
    with pytest.raises(TrainingModeError, match=r"model.eval\(\)"):
        export_model(model)
    export_model(model.eval())  # the fix works


def test_training_mode_without_bn_or_dropout_is_fine():
    """The seed exports its Actor in training mode; that has no effect on Linear/ReLU/Sigmoid."""
    text = export_model(nn.Sequential(nn.Linear(2, 1), nn.Sigmoid()).train())
    assert ".subckt ActorSubckt NNIN1 NNIN2 NNOUT1" in text


def test_bad_dialect_structure_and_names():
    model = nn.Sequential(nn.Linear(2, 1))
    with pytest.raises(ExportError, match="dialect"):
        export_model(model, dialect="pspice")
    with pytest.raises(ExportError, match="structure"):
        export_model(model, structure="weird")
    with pytest.raises(ExportError, match="invalid SPICE node names"):
        export_model(model, input_names=["a b", "c"])
    with pytest.raises(ExportError, match="subcircuit name"):
        export_model(model, subckt_name="two words")


def test_not_a_module():
    with pytest.raises(ExportError, match="torch.nn.Module"):
        export_model("not a model")  # type: ignore[arg-type]


def test_ports_and_clock_pin():
    text = export_model(nn.Sequential(nn.Linear(19, 3), nn.GRUCell(3, 2)))
    ports = " ".join(f"NNIN{i}" for i in range(1, 20))
    assert f".subckt ActorSubckt {ports} CLK NNOUT1 NNOUT2" in text


def test_export_to_ltspice_writes_file(tmp_path):
    path = tmp_path / "nn.sp"
    text = export_model_to_ltspice(nn.Sequential(nn.Linear(2, 1)), path, subckt_name="Net")
    assert path.read_text() == text
    assert "ltspice dialect" in text and ".ends Net" in text
