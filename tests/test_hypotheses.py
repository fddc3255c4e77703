"""Hypothesis files: loading, checks with clear errors, resolution, simulation."""

from pathlib import Path

import numpy as np
import pytest

from mgbayes import demo, expressions, hypotheses, inference, simulate
from mgbayes.errors import HypothesisError
from mgbayes.hypotheses import MODELS_DIR

OCV = MODELS_DIR / "ocv_drift"
SINGLE_ARC = Path(__file__).parent / "data" / "single_arc.toml"  # a small single-arc model


def write(tmp_path, text, name="h.toml"):
    path = tmp_path / name
    path.write_text(text)
    return path


BASE = """
family = "ocv_drift"
physics = "test"
[circuit]
series = "R_el"
electrode = "p(R_ct,CPE_dl)"
"""


def test_shipped_ocv_hypotheses_hold_the_same_parts_and_differ_in_what_drifts():
    hs = {h.name: h for h in hypotheses.load_folder(OCV)}
    assert set(hs) == {"charge_transfer", "film", "mixed"}
    assert all(h.family == "ocv_drift" and h.physics for h in hs.values())
    # the same circuit, priors and noise in every file (equal chances); only [drift] and the film's R_ion differ
    assert len({str(h.electrode) for h in hs.values()}) == 1
    # the same priors in every file, the drift rates aside: each hypothesis has the rate of what drifts in
    # it, and every rate (R_ct_rate, R_ion_rate) takes the same prior, whatever the data's span
    rates = {"R_ct_rate", "R_ion_rate"}
    common = {k: v for k, v in hs["mixed"].priors.items() if k not in rates}
    assert all({k: v for k, v in h.priors.items() if k not in rates} == common for h in hs.values())
    assert {n: rates & set(h.priors) for n, h in hs.items()} == {"charge_transfer": {"R_ct_rate"}, "film": {"R_ion_rate"},
                                                                  "mixed": rates}
    assert hs["mixed"].priors["R_ct_rate"] == hs["mixed"].priors["R_ion_rate"]
    assert all(h.noise_priors == hs["film"].noise_priors for h in hs.values())
    assert {n: set(h.drift) for n, h in hs.items()} == {"charge_transfer": {"R_ct"}, "film": {"R_ion"},
                                                         "mixed": {"R_ion", "R_ct"}}
    for h in hs.values():
        # film by its resistance and ln(R_ion / R_e) (no R_ion <-> R_e swap); capacitances in physical terms
        assert {"R_film_0", "ln_Rion_Re", "roughness", "thickness_nm", "permittivity", "C_dl"} <= set(h.free_parameters())
        assert not {"R_e", "R_ion", "R_ion_0", "CPE_film_T", "CPE_dl_T"} & set(h.free_parameters())


def test_information_prior_overrides_only_where_used():
    info = {"R_ion_rate": {"dist": "lognormal", "median": 0.1, "sd_log": 0.5}}
    film = hypotheses.load(OCV / "film.toml", priors=info)
    assert film.priors["R_ion_rate"].args["median"] == 0.1
    hs = hypotheses.load_folder(OCV, priors=info)
    ct = next(h for h in hs if h.name == "charge_transfer")
    assert "R_ion_rate" not in ct.priors


@pytest.mark.parametrize(
    "extra, fragment",
    [
        ("colour = 'red'\n", "unknown key(s) ['colour']"),
        ("[priors]\nR_ct = { dist = 'gamma', alpha = 1 }\n", "unknown distribution 'gamma'"),
        ("[priors]\nR_foo = { dist = 'lognormal', median = 1, sd_log = 1 }\n", "prior on ['R_foo']"),
        ("[priors]\nR_ct = { dist = 'lognormal', median = -1, sd_log = 1 }\n", "invalid lognormal"),
        ("[drift]\nR_ct = 'quadratic'\n", "unknown law 'quadratic'"),
        ("[noise]\nmodel = 'laplace'\n", "model 'laplace' unknown"),
        ("[derived]\nC = { expr = 'cpe_capacitance(R_x, CPE_dl_T, CPE_dl_P)' }\n", "uses 'R_x'"),
        ("[transform]\nR_ct = 'os.system(1)'\n", "unknown function"),
    ],
)
def test_bad_files_raise_with_file_and_key(tmp_path, extra, fragment):
    path = write(tmp_path, BASE + extra)
    with pytest.raises(HypothesisError) as err:
        hypotheses.load(path)
    assert fragment in str(err.value)
    assert str(path) in str(err.value)


COORDINATES = "[priors]\nR_ct = { dist = 'lognormal', median = 1e4, sd_log = 1 }\nR_el = { dist = 'lognormal', median = 10, sd_log = 1 }\n"


@pytest.mark.parametrize(
    "block, fragment",
    [
        ("a = 'exp(u)'\n", "expected sampled = ["),
        ("sampled = ['u']\nR_ct = 'exp(u) * R_el'\n", "uses ['R_el']"),
        ("sampled = ['u', 'v']\nR_ct = 'exp(u + v)'\n", "2 sampled name(s) ['u', 'v'] but 1 parameter(s)"),
        ("sampled = ['R_el']\nR_ct = 'exp(R_el)'\n", "sampled name 'R_el' is already used"),
        ("sampled = ['u']\nR_ct = 'exp(u)'\nCPE_dl_P = 'u'\n", "1 sampled name(s) ['u'] but 2"),
        ("sampled = ['u']\nR_ct = 5\n", "a formula is a string"),
    ],
)
def test_bad_coordinates_raise_with_file_and_key(tmp_path, block, fragment):
    assert_refused(tmp_path, "coordinates", block, fragment)


def assert_refused(tmp_path, table, block, fragment):
    """A hypothesis file whose ``[table]`` holds ``block`` is refused with ``fragment``, the table and the path."""
    path = write(tmp_path, BASE + COORDINATES + f"[{table}]\n" + block)
    with pytest.raises(HypothesisError) as err:
        hypotheses.load(path)
    assert fragment in str(err.value) and f"[{table}]" in str(err.value) and str(path) in str(err.value)


def test_mixed_film_coordinates_map_onto_what_the_spectra_see_from_the_first_one_on():
    """``mixed``'s [coordinates]: film_loss is the conductance the film loses between the first and the latest
    spectrum, film_R1_z its resistance at the first one, film_split runs along the loss; the map is one to one."""
    h = hypotheses.load(OCV / "mixed.toml")
    assert h.replaced() == ["R_film_0", "ln_Rion_Re", "R_ion_rate"] and h.priors["ln_Rion_Re"].dist == "normal"
    for t_min, t_max in [(0.5, 20.0), (0.0, 20.0), (3.0, 4.0)]:
        z, split, r1 = np.meshgrid([-8.0, -2.0, 0.0, 1.0, 5.0, 30.0, 3000.0], np.linspace(-4, 14, 7), [-1.6, 0.0, 0.3])
        values = {"film_loss_z": z, "film_split": split, "film_R1_z": r1, "t_max": t_max, "t_min": t_min}
        for name, text in h.coordinates["formulas"].items():
            values[name] = expressions.evaluate(text, values)
        f_ion, r, r0 = 1 / (1 + np.exp(values["ln_Rion_Re"])), values["R_ion_rate"], values["R_film_0"]
        assert np.all(np.isfinite(f_ion)) and np.all(r > 0) and np.all(r0 > 0)  # one to one, even at z = 3000
        near = z < 100  # where posteriors lie; beyond it the round trip below loses digits, not the map
        f_ion, r, r0, z, split, r1 = (a[near] for a in (f_ion, r, r0, z, split, r1))
        values["film_loss"] = values["film_loss"][near]

        def conductance(t):  # of the film (R_ion || R_e), R_ion growing linearly from R_ion_0
            return (1 - f_ion * r * t / (1 + r * t)) / r0

        np.testing.assert_allclose(1 / conductance(t_min), 1e4 * np.exp(r1), rtol=1e-8)
        np.testing.assert_allclose(1 - conductance(t_max) / conductance(t_min), values["film_loss"], rtol=1e-8)
        small = values["film_loss"][z < 3]  # linear in softplus(film_loss_z) near the wall, at 1e-3
        np.testing.assert_allclose(small, 1e-3 * np.logaddexp(0.0, z[z < 3]), rtol=2e-2)
        share = f_ion / (1 + r * t_min) / (r0 * conductance(t_min))  # ionic share of the conductance at t_min
        np.testing.assert_allclose(np.log(r * (t_max - t_min)) + np.log((1 - share) / share), split, atol=1e-7)


def test_a_drift_coordinate_map_needs_two_times():
    h = hypotheses.load(OCV / "mixed.toml")
    one = simulate.spectra(hypotheses.load(OCV / "charge_transfer.toml"), demo.ocv_parameters(), times_h=[2.0],
                           frequency=simulate.frequency_grid(1e5, 0.1, 3), area_cm2=1.131)
    with pytest.raises(HypothesisError, match=r"mixed.toml \[coordinates\]: .* hold one time \(2 h\); a drift needs"):
        inference.build_model(h, one)


def test_film_coordinate_is_the_electronic_share_near_the_wall_and_ln_rion_re_below_it():
    """``film``'s [coordinates]: film_e_z maps onto f_e = sigmoid(ln_Rion_Re), linear in it where the spectra bound it."""
    h = hypotheses.load(OCV / "film.toml")
    assert h.replaced() == ["ln_Rion_Re"] and h.priors["ln_Rion_Re"].dist == "normal"
    z = np.array([-40.0, -8.0, 0.0, 1.0, 5.0, 300.0, 3000.0])
    values = {"film_e_z": z, "t_max": 20.0}
    for name, text in h.coordinates["formulas"].items():
        values[name] = expressions.evaluate(text, values)
    f_e = 1 / (1 + np.exp(-values["ln_Rion_Re"]))  # the electronic share of the film's conductance
    np.testing.assert_allclose(f_e, values["film_e"], rtol=1e-9)
    np.testing.assert_allclose(f_e, -np.expm1(-1e-3 * np.logaddexp(0.0, z)), rtol=1e-12)  # ~1e-3 z near the wall
    np.testing.assert_allclose(values["ln_Rion_Re"][:2], z[:2] + np.log(1e-3), atol=1e-3)  # the prior's tail
    assert np.all(np.isfinite(values["ln_Rion_Re"]))


def test_bad_circuit_in_file_names_position(tmp_path):
    path = write(tmp_path, BASE.replace("p(R_ct,CPE_dl)", "p(R_ct,CPE_dl"))
    with pytest.raises(HypothesisError, match="position 13"):
        hypotheses.load(path)


def test_missing_prior_for_non_circuit_parameter(tmp_path):
    path = write(tmp_path, BASE + "[transform]\nR_ct = 'R_ion * 2'\n")
    with pytest.raises(HypothesisError, match="'R_ion' has no prior"):
        hypotheses.load(path)


def test_circular_transform(tmp_path):
    path = write(tmp_path, BASE + "[transform]\nR_ct = 'A'\nA = 'R_ct'\n")
    with pytest.raises(HypothesisError, match="circular"):
        hypotheses.load(path)


def test_expression_evaluates_on_numpy_and_refuses_attributes():
    assert expressions.evaluate("parallel(a, b) * 2", {"a": 2.0, "b": 2.0}) == pytest.approx(2.0)
    with pytest.raises(HypothesisError):
        expressions.parse("a.__class__")


def test_sigmoid_is_the_same_on_numpy_and_pytensor_and_quiet_far_from_its_step():
    import warnings

    import pytensor.tensor as pt

    x = np.array([-1000.0, -30.0, 0.0, 2.5, 800.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # exp(1000) overflowed in the NumPy form: a warning per refit of a transient
        values = expressions.evaluate("sigmoid(x)", {"x": x})
    symbolic = expressions.evaluate("sigmoid(x)", {"x": pt.as_tensor_variable(x)}).eval()
    np.testing.assert_allclose(values, symbolic, rtol=1e-15, atol=0)
    assert values[0] == 0.0 and values[2] == 0.5


def test_linear_drift_and_symmetric_cell_factor():
    h = hypotheses.load(SINGLE_ARC)
    p = {"R_el": 10.0, "R_ct_0": 1e3, "R_ct_rate": 1.0, "CPE_dl_T": 1e-5, "CPE_dl_P": 1.0}
    series = simulate.spectra(h, p, times_h=[0.0, 2.0], frequency=[1e6, 1e3, 1, 1e-3, 1e-6], area_cm2=2.0, noise=0.0)
    z = series.impedance_area[:, [-1, 0]]
    # DC limit: R_el + 2 R_ct(t); R_ct(2 h) = 1e3 (1 + 2)
    np.testing.assert_allclose(z[:, 0].real, [10 + 2e3, 10 + 6e3], rtol=1e-6)
    np.testing.assert_allclose(z[:, 1].real, [10, 10], rtol=1e-3)
    assert series.area_cm2 == 2.0 and series.symmetric


def test_film_capacitance_from_roughness_thickness_and_permittivity():
    h = hypotheses.load(OCV / "film.toml")
    values = {n: np.asarray(h.priors[n].typical()) if n in h.priors else None for n in h.free_parameters()}
    values.update({"R_ion_rate": np.asarray(0.1), "R_film_0": np.asarray(1e4), "ln_Rion_Re": np.log(0.01 / 0.99),
                   "thickness_nm": np.asarray(8.0), "permittivity": np.asarray(10.0), "roughness": np.asarray(3.0),
                   "CPE_film_P": np.asarray(1.0)})
    resolved = h.resolve(values, {"t": np.array([0.0, 10.0])})
    # C = roughness eps eps0 / d = 3 * 10 * 8.854e-14 F/cm / 8e-7 cm = 3.32 uF/cm2, constant in time
    assert float(resolved["C_film"]) == pytest.approx(3.32e-6, rel=1e-3)
    # R_ion / R_e = 0.01 / 0.99 at t = 0: the electronic fraction of the conductance is 1 %, R_film_0 = f_e R_e
    assert float(resolved["R_e"]) == pytest.approx(1e6, rel=1e-9)
    assert float(resolved["R_film"][0]) == pytest.approx(1e4, rel=1e-9)
    assert float(resolved["R_ion"][1]) == pytest.approx(1e6 * 0.01 / 0.99 * 2.0, rel=1e-9)
    # the spectra see R_ion's drift at the ionic share of the film's conductance: d ln R_film / dt = 0.99 x 0.1 / h
    dt = 1e-6
    slope = np.log(h.resolve(values, {"t": np.array([0.0, dt])})["R_film"]) @ np.array([-1.0, 1.0]) / dt
    assert slope == pytest.approx(0.099, rel=1e-4)
    derived = h.derive(resolved)
    assert float(derived["f_e"]) == pytest.approx(0.01)
    assert float(derived["thickness_nm_eps10"]) == pytest.approx(8.0 / 3.0, rel=1e-3)
    assert float(derived["eps_film_flat"]) == pytest.approx(30.0, rel=1e-3)


def test_simulate_rejects_missing_parameters():
    h = hypotheses.load(SINGLE_ARC)
    with pytest.raises(HypothesisError, match="missing \\['CPE_dl_P'\\]"):
        simulate.spectra(h, {"R_el": 1, "R_ct_0": 1, "R_ct_rate": 1, "CPE_dl_T": 1}, times_h=[0])


def test_default_priors_follow_the_data_scale():
    h = hypotheses.from_table({"family": "x", "physics": "y", "circuit": {"electrode": "R0-p(R1,C1)", "electrodes": 1}})
    f = np.logspace(5, -2, 30)
    z = h.electrode.impedance(f, R0=1e5, R1=1e6, C1=1e-9)
    table = h.prior_table(frequency=f, impedance=z)
    assert 1e5 < table["R1"].typical() < 1e7


def test_old_experiment_key_loads_with_a_one_line_warning_naming_the_fix(tmp_path):
    path = write(tmp_path, BASE.replace('family = "ocv_drift"', 'experiment = "ocv_drift"'))
    with pytest.warns(FutureWarning, match=r"h.toml: key 'experiment' is now 'family'.*write family = 'ocv_drift'"):
        h = hypotheses.load(path)
    assert h.family == "ocv_drift"


def test_information_priors_apply_only_to_parameters_the_hypothesis_has(tmp_path):
    path = write(tmp_path, BASE)
    outside = {"R_ct": {"dist": "lognormal", "median": 7.0, "sd_log": 0.1},
               "R_e": {"dist": "lognormal", "median": 3e3, "sd_log": 1.0}}  # no R_e in this circuit
    h = hypotheses.load(path, information=outside)
    assert h.priors["R_ct"].typical() == pytest.approx(7.0, rel=0.05) and "R_e" not in h.priors
    assert "R_ct" not in hypotheses.load(path).priors  # the file's own default otherwise


@pytest.mark.parametrize("block, fragment", [
    ("target_accept = 1.2\n", "target_accept = 1.2; expected a number between 0 and 1"),
    ("target_accept = 0.97\ndraws = 2000\n", "holds only target_accept"),
])
def test_a_hypothesis_sampler_table_holds_a_target_acceptance_only(tmp_path, block, fragment):
    assert_refused(tmp_path, "sampler", block, fragment)
    assert hypotheses.load(write(tmp_path, BASE + COORDINATES + "[sampler]\ntarget_accept = 0.97\n")).target_accept == 0.97
    assert hypotheses.load(write(tmp_path, BASE + COORDINATES)).target_accept is None


def test_fits_and_refits_ask_at_least_the_hypothesis_target_acceptance(monkeypatch):
    import dataclasses

    from mgbayes import compare, inference, sampler

    h = dataclasses.replace(hypotheses.from_table({"name": "rc", "family": "dummy", "physics": "circuit",
                                                   "circuit": {"electrode": "R0-p(R1,C1)", "electrodes": 1}}),
                            target_accept=0.97)
    data = simulate.spectra(h, {"R0": 10.0, "R1": 100.0, "C1": 1e-5}, times_h=[0.0],
                            frequency=simulate.frequency_grid(1e4, 1.0, 3), symmetric=False, seed=0)
    asked = []
    sample = sampler.sample
    monkeypatch.setattr(sampler, "sample", lambda model, **kw: asked.append(kw["target_accept"]) or sample(model, **kw))
    monkeypatch.setattr(inference, "sample", sampler.sample)
    inference.fit(h, data, draws=200, tune=200, chains=2, random_seed=0, target_accept=0.8)
    inference.fit(h, data, draws=200, tune=200, chains=2, random_seed=0, target_accept=0.99)
    wrapper = compare.Refits(h, data, unit="point", draws=200, tune=200, chains=2, rng=np.random.default_rng(0))
    wrapper.sample(wrapper.sel_observations([1])[0])
    assert asked[0] == 0.97 and 0.99 in asked and asked[-1] >= 0.97
