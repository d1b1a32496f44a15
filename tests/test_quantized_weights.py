"""Quantised deployment weights: the exported network carries them and equals the quantised PyTorch model in SPICE."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from buckbi.nn.actors import resolve_actor
from buckbi.converters.buck import EpisodeParams
from buckbi.episodes.run import run_episode
from buckbi.nn.quantize import quantize_weights
from buckbi.testplan import PlanError, parse_plan

TOL = 1e-6


def test_int8_is_symmetric_per_tensor_and_float16_rounds():
    model = resolve_actor("seed-pretrained").double()
    q8, q16 = quantize_weights(model, "int8"), quantize_weights(model, "float16")
    for (name, w), w8, w16 in zip(model.named_parameters(), q8.parameters(), q16.parameters()):
        if name.endswith("weight"):
            scale = w.abs().max() / 127
            steps = (w8 / scale).detach().numpy()
            np.testing.assert_allclose(steps, np.round(steps), atol=1e-9)  # whole steps of max|w| / 127
            assert 0 < (w8 - w).abs().max() <= scale / 2 + 1e-12
        else:
            assert torch.equal(w8, w)  # biases kept
        assert torch.equal(w16, w.to(torch.float16).to(w.dtype))
    assert next(model.parameters()).data_ptr() != next(q8.parameters()).data_ptr()  # a copy
    with pytest.raises(ValueError, match="float16, int8"):
        quantize_weights(model, "int4")
    with pytest.raises(PlanError, match="weights must be one of float16, int8"):
        parse_plan({"corners": {"a": {"vin": 200, "vref": 100, "ro": 20}},
                    "tests": [{"name": "t", "scenario": "startup", "weights": "int4"}]})


@pytest.mark.ltspice
@pytest.mark.parametrize("element", ["xspice", "subckt"])
def test_the_quantised_network_in_spice_equals_the_quantised_pytorch_model(simulator, tmp_path, element):
    model = quantize_weights(resolve_actor("seed-pretrained").double(), "int8")
    if element == "xspice" and simulator.name != "ngspice":
        pytest.skip("the XSPICE element is ngspice's")
    ep = run_episode("gym2", model, EpisodeParams(vin=200, ro=20, Lo=50e-6, vref=100, steps=128), tmp_path,
                     simulator, nn_element=element)
    with torch.no_grad():
        expected = model(torch.from_numpy(ep.x.copy())).numpy().ravel()
    err = np.abs(ep.pred - expected)
    assert err.max() <= TOL, f"worst |NNout1 - int8 model(x)| = {err.max():.2e}"
    with torch.no_grad():
        full = resolve_actor("seed-pretrained").double()(torch.from_numpy(ep.x.copy())).numpy().ravel()
    assert np.abs(full - expected).max() > 10 * TOL  # the quantisation changes what the network computes
