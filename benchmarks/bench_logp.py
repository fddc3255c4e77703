"""Benchmark 2: logp + gradient of the OCV drift model against a hand-fused kernel.

The model is the charge-transfer drift hypothesis on 40 spectra x 71
frequencies (1 MHz to 20 mHz). The kernel below
is the same log density (likelihood, priors, log-Jacobians of the
transforms) and its analytic gradient, written by hand in one Numba loop:
the practical limit for this function. Both are checked to agree before
timing.

    python benchmarks/bench_logp.py
"""

import sys
import time

import numba
import numpy as np
from pymc.blocking import DictToArrayBijection

sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent))
from common import ocv_series  # noqa: E402

from mgbayes import inference  # noqa: E402

HALF_PI = np.pi / 2


@numba.njit(fastmath=False, cache=True)
def kernel(x, t, log_w, y_re, y_im, prior):
    """log p and gradient in the unconstrained space.

    x = [log R_el, log R_ct_0, log R_ct_rate, log T, logit P, log s]
    prior = [(mu_log, sd_log) x 5 lognormals, beta alpha, beta, halfnormal sigma]
    """
    R_el, R0, k, T = np.exp(x[0]), np.exp(x[1]), np.exp(x[2]), np.exp(x[3])
    P = 1.0 / (1.0 + np.exp(-x[4]))
    s = np.exp(x[5])
    theta = P * HALF_PI
    cos_t, sin_t = np.cos(theta), np.sin(theta)
    logp = 0.0
    dR_el = dR0 = dk = dT = dP = ds = 0.0
    n_t, n_f = y_re.shape
    for i in range(n_t):
        growth = 1.0 + k * t[i]
        R = R0 * growth
        for m in range(n_f):
            wp = T * np.exp(P * log_w[m])
            g, c = wp * cos_t, wp * sin_t
            G = 1.0 / R + g
            D = G * G + c * c
            re = R_el + 2.0 * G / D
            im = -2.0 * c / D
            M2 = re * re + im * im
            sigma2 = s * s * M2
            er, ei = y_re[i, m] - re, y_im[i, m] - im
            Q = (er * er + ei * ei) / sigma2
            logp += -0.5 * Q - np.log(sigma2) - 1.8378770664093453
            d_re = er / sigma2 + (Q - 2.0) * re / M2
            d_im = ei / sigma2 + (Q - 2.0) * im / M2
            ds += Q - 2.0
            u = (c * c - G * G) / (D * D)
            v = 2.0 * G * c / (D * D)
            dG = d_re * 2.0 * u + d_im * 2.0 * v
            dc = -d_re * 2.0 * v + d_im * 2.0 * u
            dR = -dG / (R * R)
            dR_el += d_re
            dR0 += dR * growth
            dk += dR * R0 * t[i]
            dT += (dG * g + dc * c) / T
            dP += dG * (g * log_w[m] - c * HALF_PI) + dc * (c * log_w[m] + g * HALF_PI)
    grad = np.empty(6)
    # chain rule to log / logit space
    grad[0], grad[1], grad[2], grad[3] = dR_el * R_el, dR0 * R0, dk * k, dT * T
    grad[4] = dP * P * (1.0 - P)
    grad[5] = ds
    # lognormal priors in log space (the log-Jacobian cancels the 1/x of the density)
    for j in range(4):
        mu, sd = prior[2 * j], prior[2 * j + 1]
        z = (x[j] - mu) / sd
        logp += -0.5 * z * z - np.log(sd) - 0.9189385332046727
        grad[j] += -z / sd
    # beta prior on P with the logit Jacobian P (1 - P)
    a, b = prior[8], prior[9]
    logp += a * np.log(P) + b * np.log(1.0 - P)
    grad[4] += a * (1.0 - P) - b * P
    # halfnormal prior on s with the log Jacobian s
    hs = prior[10]
    logp += -0.5 * (s / hs) ** 2 + x[5]
    grad[5] += -(s / hs) ** 2 + 1.0
    return logp, grad


def main(repeat=2000):
    h, series = ocv_series(40, 71)
    model, obs = inference.build_model(h, series)
    fn = model.logp_dlogp_function(ravel_inputs=True)
    fn.set_extra_values({})
    point = model.initial_point()
    x_pymc = DictToArrayBijection.map(point)
    names = [v.name for v in fn._grad_vars]
    order = ["R_el_log__", "R_ct_0_log__", "R_ct_rate_log__", "CPE_dl_T_log__", "CPE_dl_P_logodds__", "noise_sigma_log__"]
    priors = model.mgbayes_priors
    prior = np.array([np.log(priors[n].args["median"]) if i % 2 == 0 else priors[n].args["sd_log"]
                      for n in ("R_el", "R_ct_0", "R_ct_rate", "CPE_dl_T") for i in range(2)]
                     + [priors["CPE_dl_P"].args["alpha"], priors["CPE_dl_P"].args["beta"],
                        priors["noise_sigma"].args["sigma"]])
    x = np.array([point[n] for n in order]) + 0.05
    x_pymc = DictToArrayBijection.map({n: point[n] + 0.05 for n in names}).data
    log_w = np.log(2 * np.pi * obs.frequency)
    y = obs.values
    args = (obs.inputs["t"], log_w, np.ascontiguousarray(y[..., 0]), np.ascontiguousarray(y[..., 1]), prior)
    lp_k, g_k = kernel(x, *args)
    lp_p, g_p = fn(x_pymc)
    g_p = np.array([g_p[names.index(n)] for n in order])
    # normalising constants differ only by constants: compare gradients, and logp differences between two points
    np.testing.assert_allclose(g_k, g_p, rtol=1e-6, atol=1e-6)
    x2 = x + 0.01
    x2_pymc = DictToArrayBijection.map({n: point[n] + 0.06 for n in names}).data
    assert abs((kernel(x2, *args)[0] - lp_k) - (fn(x2_pymc)[0] - lp_p)) < 1e-6 * abs(lp_k)

    def best_of(f, arg):
        times = []
        for _ in range(5):
            start = time.perf_counter()
            for _ in range(repeat):
                f(arg)
            times.append((time.perf_counter() - start) / repeat)
        return min(times)

    t_kernel = best_of(lambda z: kernel(z, *args), x)
    t_pymc = best_of(fn, x_pymc)
    n = y.shape[0] * y.shape[1]
    print(f"OCV drift model, {y.shape[0]} spectra x {y.shape[1]} frequencies = {n} points; gradients agree")
    print(f"hand-fused Numba kernel : {t_kernel * 1e6:8.1f} us per logp+grad")
    print(f"mgbayes (PyTensor graph): {t_pymc * 1e6:8.1f} us per logp+grad")
    print(f"ratio mgbayes / kernel  : {t_pymc / t_kernel:8.2f}  (target <= 2)")


if __name__ == "__main__":
    main()
