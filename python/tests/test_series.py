"""SeriesOutlierDetector: a series' windows, scores per step, the model file shared with the
command line."""

import pickle
import subprocess

import numpy as np
import pytest

import hourglass
from conftest import ROOT, cli


def series(steps=1600, burst=(1200, 1212), seed=0):
    """Two channels in their own units (volts around 230, amperes around 5), period 24; a
    burst of noise at ``burst`` is the anomaly."""
    rng = np.random.default_rng(seed)
    t = np.arange(steps)
    x = np.stack(
        [230 + 10 * np.sin(2 * np.pi * t / 24), 5 + np.cos(2 * np.pi * t / 24)], axis=1
    ) + 0.02 * rng.standard_normal((steps, 2)) * [10, 1]
    y = np.zeros(steps, int)
    if burst is not None:
        a, b = burst
        x[a:b] += rng.standard_normal((b - a, 2)) * [30, 3]
        y[a:b] = 1
    return x.astype(np.float32), y


def test_steps_are_scored_from_their_windows():
    from sklearn.metrics import roc_auc_score

    x, y = series()
    d = hourglass.SeriesOutlierDetector(window=24, stride=2, random_state=0, contamination=0.02)
    d.fit(x[:800])
    s = d.anomaly_scores(x)
    assert s.shape == (1600,)
    assert roc_auc_score(y, s) > 0.95
    assert (d.predict(x)[1200:1212] == -1).all()
    np.testing.assert_array_equal(d.score_samples(x), -s)
    # One window per start at stride 1, channel-major: 1600 - 24 + 1 rows of 48 values.
    assert d.reconstruct(x).shape == (1577, 48)
    # A 1-D series is one channel.
    one = hourglass.SeriesOutlierDetector(window=16, hidden=[8], code=2, epochs=2).fit(x[:400, 0])
    assert one.anomaly_scores(x[:, 0]).shape == (1600,)


# An LSTM encoder and a GRU decoder over windows of 24 steps of two channels.
RECURRENT = (ROOT / "tests" / "data" / "series-lstm-gru.toml").read_text()


def test_a_recurrent_autoencoder_scores_steps_and_pickles():
    """An LSTM encoder and a GRU decoder from an architecture file's text: it finds the burst,
    and a pickled copy gives the same scores."""
    from sklearn.metrics import roc_auc_score

    x, y = series()
    d = hourglass.SeriesOutlierDetector(window=24, arch=RECURRENT, epochs=30, random_state=0).fit(x[:800])
    s = d.anomaly_scores(x)
    assert roc_auc_score(y, s) > 0.95
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(d)).anomaly_scores(x), s)


def test_thread_count_does_not_change_the_model():
    x, _ = series(600, None)
    a = hourglass.SeriesOutlierDetector(window=12, epochs=3, n_jobs=1, random_state=2).fit(x)
    b = hourglass.SeriesOutlierDetector(window=12, epochs=3, n_jobs=3, random_state=2).fit(x)
    np.testing.assert_array_equal(a.anomaly_scores(x), b.anomaly_scores(x))


def test_the_command_line_scores_the_same_steps(tmp_path):
    x, _ = series()
    d = hourglass.SeriesOutlierDetector(window=24, epochs=5, random_state=1).fit(x[:800])
    d.save(tmp_path / "m.hg")
    np.savetxt(tmp_path / "s.csv", x, delimiter=",", header="c0,c1", comments="", fmt="%.9g")
    subprocess.run([cli(), "score", str(tmp_path / "m.hg"), str(tmp_path / "s.csv"), "-o", str(tmp_path / "out.csv")],
                   check=True, capture_output=True)
    out = np.loadtxt(tmp_path / "out.csv", delimiter=",", skiprows=1)
    s = d.anomaly_scores(x)
    np.testing.assert_allclose(out[:, 0], s, rtol=1e-6)
    np.testing.assert_array_equal(out[:, 1] == 1, d.predict(x) == -1)
    # The file loads back as a series detector with its threshold; pickling keeps it too.
    back = hourglass.load(tmp_path / "m.hg")
    assert isinstance(back, hourglass.SeriesOutlierDetector) and back.window == 24
    np.testing.assert_array_equal(back.predict(x), d.predict(x))
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(d)).anomaly_scores(x), s)


def test_bad_series_are_refused_with_a_reason():
    x, _ = series(100, None)
    with pytest.raises(ValueError, match="a window needs at least 200"):
        hourglass.SeriesOutlierDetector(window=200).fit(x)
    with pytest.raises(ValueError, match="window must be an integer >= 2"):
        hourglass.SeriesOutlierDetector(window=1).fit(x)
    d = hourglass.SeriesOutlierDetector(window=10, epochs=1).fit(x)
    with pytest.raises(ValueError, match="2 features"):
        d.anomaly_scores(x[:, :1])
    with pytest.raises(hourglass.HourglassError, match="at least 10"):
        d.anomaly_scores(x[:5])
