"""``TextAutoEncoder``: the sequence autoencoder of a text, fitted in Python or by
``hourglass train --text``, the same model either way."""

import pickle

import numpy as np
import pytest

import hourglass

from conftest import run_cli


def _text():
    """400 random characters of ``abcd``, a line break every 50 (a space once read)."""
    rng = np.random.default_rng(8)
    chars = rng.choice(list("abcd"), 400)
    lines = ["".join(chars[i : i + 50]) for i in range(0, 400, 50)]
    return "\n".join(lines), " ".join(lines)


SETTINGS = dict(window=5, units=24, code=12, epochs=50, random_state=3)


@pytest.fixture(scope="module")
def fitted():
    text, read = _text()
    return hourglass.TextAutoEncoder(**SETTINGS).fit(text), text, read


def test_a_text_is_learned_and_written_back(fitted):
    est, text, read = fitted
    # The characters seen, most frequent first, then the one for any other.
    assert est.vocabulary_[-1] == "<other>" and set(est.vocabulary_) == set("abcd ") | {"<other>"}
    counts = [read.count(c) for c in est.vocabulary_[:-1]]
    assert counts == sorted(counts, reverse=True)
    back = est.reconstruct(text)
    assert len(back) == len(read)
    same = np.mean([a == b for a, b in zip(back, read)])
    # Chance is about 25 %; a model that learned nothing of the order writes one letter.
    assert same > 0.8, back
    share = est.score(text)
    assert 0.8 < share <= 1.0
    assert 0.0 < est.cross_entropy(text) < 1.0
    codes = est.transform(text)
    assert codes.shape == (len(read) - 4, 12)


def test_unseen_letters_stand_out_in_the_token_scores(fitted):
    est, _, read = fitted
    odd = read[:200] + "xyzxyz" + read[200:]
    scores = est.token_scores(odd)
    assert scores.shape == (len(odd),)
    assert scores[200:206].mean() > 3 * scores[:190].mean()


def test_the_command_line_trains_the_same_model(tmp_path):
    # A few epochs: the command line under test is a debug build.
    text, _ = _text()
    est = hourglass.TextAutoEncoder(**{**SETTINGS, "epochs": 3}).fit(text)
    (tmp_path / "t.txt").write_text(text)
    # The command line's defaults for a text are the estimator's (batch, learning rate).
    run_cli("train", "t.txt", "--text", "chars", "--window", "5", "--hidden", "24", "--code", "12", "--epochs", "3",
            "--seed", "3", "-q", "-o", "m.hg", cwd=tmp_path)
    cli = hourglass.load(tmp_path / "m.hg")
    assert isinstance(cli, hourglass.TextAutoEncoder)
    assert cli.vocabulary_ == est.vocabulary_
    np.testing.assert_array_equal(cli.transform(text), est.transform(text))
    # And the Python model reconstructs through the command line as in Python.
    est.save(tmp_path / "py.hg")
    run_cli("reconstruct", "py.hg", "t.txt", "-o", "back.txt", cwd=tmp_path)
    assert (tmp_path / "back.txt").read_text().rstrip("\n") == est.reconstruct(text)


def test_pickles_and_errors(fitted):
    est, text, _ = fitted
    again = pickle.loads(pickle.dumps(est))
    assert again.reconstruct(text) == est.reconstruct(text)
    with pytest.raises(TypeError, match="a text is a str"):
        est.reconstruct(["abc"])
    with pytest.raises(ValueError, match="unit"):
        hourglass.TextAutoEncoder(unit="bytes").fit(text)
    with pytest.raises(hourglass.HourglassError, match="no tokens"):
        hourglass.TextAutoEncoder(window=3).fit("  \n ")
    with pytest.raises(hourglass.HourglassError):
        hourglass.TextAutoEncoder(window=50).fit("too short")
