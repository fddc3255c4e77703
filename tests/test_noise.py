"""Noise models beyond sigma·|Z|: each recovers its own truth from data simulated with it."""

import numpy as np
import pytest

from mgbayes import hypotheses, inference
from mgbayes.data import Spectrum
from mgbayes.errors import HypothesisError

CIRCUIT = "R0-p(R1,CPE1)"
TRUTH = {"R0": 20.0, "R1": 500.0, "CPE1_T": 2e-5, "CPE1_P": 0.88}
FREQUENCY = np.logspace(5, -1, 49)


def hypothesis(model, **priors):
    noise = {"model": model, **priors}
    return hypotheses.from_table({"name": model, "family": "noise", "physics": "circuit",
                                  "circuit": {"electrode": CIRCUIT, "electrodes": 1}, "noise": noise})


def spectrum(sd, *, seed, nu=None):
    """One spectrum of the truth with noise of standard deviation ``sd(z)`` (Re, Im) and optional Student-t tails."""
    rng = np.random.default_rng(seed)
    z = hypothesis("proportional").electrode.impedance(FREQUENCY, **TRUTH)
    scale = sd(z)
    e = rng.standard_normal((z.size, 2)) if nu is None else rng.standard_t(nu, (z.size, 2))
    noisy = z.real + scale[:, 0] * e[:, 0] + 1j * (z.imag + scale[:, 1] * e[:, 1])
    return Spectrum(FREQUENCY, noisy, time_h=0.0, area_cm2=None, source=f"simulated, seed {seed}")


def composite_sd(floor, proportional):
    return lambda z: np.sqrt(np.asarray(floor) ** 2 + (np.asarray(proportional) * np.abs(z)[:, None]) ** 2)


def covers(idata, name, truth, q=(0.01, 0.99)):
    values = idata["posterior"][name].values
    values = values.reshape(-1, *values.shape[2:])
    lo, hi = np.quantile(values, q, axis=0)
    return np.all((lo <= truth) & (truth <= hi)), (lo, hi)


def test_composite_noise_is_read_and_sampled_per_part():
    h = hypothesis("composite", proportional={"dist": "halfnormal", "sigma": 0.02})
    assert h.noise_model == "composite" and set(h.noise_priors) == {"floor", "proportional"}
    data = spectrum(composite_sd([0.5, 0.3], [0.01, 0.02]), seed=0)
    model, obs = inference.build_model(h, data)
    assert model.named_vars_to_dims["noise_floor"] == ("part",)
    assert model.named_vars_to_dims["noise_proportional"] == ("part",)
    # the default floor prior is centred on the data: 1e-3 of the median |Z|
    floor = model.mgbayes_priors["noise_floor"]
    assert floor.args["median"] == pytest.approx(1e-3 * np.median(np.abs(data.impedance)))
    assert np.isfinite(model.compile_logp()(model.initial_point()))
    with pytest.raises(HypothesisError, match=r"unknown key\(s\) \['sigma'\] for model 'composite'"):
        hypothesis("composite", sigma={"dist": "halfnormal", "sigma": 0.1})


def test_composite_scale_is_the_same_in_the_model_and_on_draws():
    data = spectrum(composite_sd([0.5, 0.3], [0.01, 0.02]), seed=0)
    h = hypothesis("composite")
    _, obs = inference.build_model(h, data)
    mu = obs.values[None]  # one "draw"
    noise = {"floor": np.array([[0.5, 0.3]]), "proportional": np.array([[0.01, 0.02]])}
    noise = {k: v.reshape(1, 1, 1, 2) for k, v in noise.items()}
    sd = inference.noise_sd(obs, "composite", mu, noise)
    modulus = np.hypot(mu[..., 0], mu[..., 1])
    np.testing.assert_allclose(sd[..., 1], np.sqrt(0.3**2 + (0.02 * modulus) ** 2))


@pytest.mark.slow
@pytest.mark.parametrize("model", ["composite", "student_t"])
def test_each_noise_model_recovers_its_truth(model):
    if model == "composite":
        # the floor dominates at high frequency (|Z| about 20 Ohm), the proportional term at low (about 520 Ohm)
        truth = {"noise_floor": np.array([2.0, 1.0]), "noise_proportional": np.array([0.01, 0.02])}
        data = spectrum(composite_sd(truth["noise_floor"], truth["noise_proportional"]), seed=5)
    else:
        truth = {"noise_sigma": 0.01, "noise_nu": 3.0}
        data = spectrum(lambda z: 0.01 * np.abs(z)[:, None] * np.ones(2), seed=6, nu=3.0)
    idata = inference.fit(hypothesis(model), data, draws=500, tune=500, chains=2, random_seed=1)
    assert float(idata.attrs["rhat_max"]) < 1.05, idata.attrs["diagnostics"]
    for name, value in truth.items():
        ok, interval = covers(idata, name, value)
        assert ok, f"{model}: {name} = {value} outside its 98 % interval {interval}"
    for name, value in TRUTH.items():  # the circuit too, within the noise of one spectrum
        assert float(idata["posterior"][name].median()) == pytest.approx(value, rel=0.1), name
