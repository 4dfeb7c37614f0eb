"""The variational autoencoder from Python: fit with ``vae``, draw samples, per-row bounds."""

import numpy as np
import pytest

import hourglass
from hourglass import AutoEncoder


@pytest.fixture(scope="module")
def digits():
    from sklearn.datasets import load_digits

    return (load_digits().data / 16.0).astype(np.float32)


def test_fit_sample_and_bounds(digits):
    est = AutoEncoder(hidden=[64], code=4, activation="tanh", loss="bce", vae={"beta": 1.0, "warmup": 2},
                      binarize=True, scale="none", epochs=8, validation_fraction=0, random_state=0)
    est.fit(digits)
    assert est.transform(digits[:5]).shape == (5, 4)
    s = est.sample(6, random_state=1)
    assert s.shape == (6, 64)
    np.testing.assert_array_equal(s, est.sample(6, random_state=1))
    b = est.variational_bounds(digits[:200], samples=20)
    assert list(b.columns) == ["elbo", "log_likelihood", "kl", "reconstruction"]
    assert np.isfinite(b.to_numpy()).all()
    np.testing.assert_allclose(b["elbo"], -b["reconstruction"] - b["kl"], rtol=1e-9, atol=1e-9)
    assert b["log_likelihood"].mean() >= b["elbo"].mean()
    assert (b["kl"] > 0).all()
    # Trained beats untrained on the bound.
    untrained = AutoEncoder(hidden=[64], code=4, activation="tanh", loss="bce", vae=True, scale="none", epochs=1,
                            learning_rate=1e-9, validation_fraction=0, random_state=0).fit(digits)
    assert b["elbo"].mean() > untrained.variational_bounds(digits[:200], samples=20)["elbo"].mean()
    # The likelihood as an anomaly score: a row scores the same alone as in a batch.
    nll = est.anomaly_scores(digits[:20], metric="nll")
    assert nll.shape == (20,) and np.isfinite(nll).all()
    assert est.anomaly_scores(digits[3:4], metric="nll")[0] == nll[3]
    # The same seed, the same figures, whatever the thread count.
    est.set_params(n_jobs=1)
    one = est.log_likelihood(digits[:50], samples=10)
    est.set_params(n_jobs=2)
    np.testing.assert_array_equal(one, est.log_likelihood(digits[:50], samples=10))


def test_mistakes_are_named(digits):
    plain = AutoEncoder(code=4, epochs=1, random_state=0).fit(digits)
    with pytest.raises(hourglass.HourglassError, match="vae=True"):
        plain.sample(3)
    with pytest.raises(ValueError, match="unknown keys"):
        AutoEncoder(code=4, vae={"bta": 2}).fit(digits)
    with pytest.raises(hourglass.HourglassError, match="binarization needs values in"):
        AutoEncoder(code=4, vae=True, binarize=True, scale="none", epochs=1).fit(digits * 16)
    with pytest.raises(hourglass.HourglassError, match="needs scaling none"):
        AutoEncoder(code=4, vae=True, binarize=True, scale="standard", epochs=1).fit(digits)
    # scale="auto" leaves values in [0, 1] unscaled, so binarization works with the defaults.
    AutoEncoder(code=4, vae=True, binarize=True, epochs=1).fit(digits)


def test_the_iwae_objective(digits):
    """vae={"samples": k} trains on the importance-weighted bound: it learns (the likelihood rises
    above an untrained model's), the same on 1 and 2 threads; a capacity target is refused."""
    kw = dict(hidden=[32], code=4, activation="tanh", loss="bce", vae={"samples": 4}, binarize=True,
              scale="none", epochs=4, validation_fraction=0, random_state=0)
    est = AutoEncoder(**kw, n_jobs=1).fit(digits)
    again = AutoEncoder(**kw, n_jobs=2).fit(digits)
    np.testing.assert_array_equal(est.transform(digits[:20]), again.transform(digits[:20]))
    untrained = AutoEncoder(**{**kw, "epochs": 1, "learning_rate": 1e-9}).fit(digits)
    assert est.log_likelihood(digits[:200], samples=20).mean() > \
        untrained.log_likelihood(digits[:200], samples=20).mean() + 1.0
    with pytest.raises(hourglass.HourglassError, match="capacity target"):
        AutoEncoder(code=4, vae={"samples": 3, "capacity": 2.0}, epochs=1).fit(digits)
