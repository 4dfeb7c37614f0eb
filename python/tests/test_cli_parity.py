"""A model trained by the command line loads in Python and gives bit-identical codes and
scores, and the reverse; for arrays (NPY) and for tables (CSV with categories and missing
values, a DataFrame in Python)."""

import numpy as np
import pytest

import hourglass

from conftest import run_cli


def test_cli_model_in_python_array_data(manifold, tmp_path):
    np.save(tmp_path / "x.npy", manifold)
    run_cli("train", "x.npy", "--hidden", "12", "--code", "3", "--epochs", "5", "--scale", "standard",
            "--seed", "2", "-q", "-o", "m.safetensors", cwd=tmp_path)
    run_cli("encode", "m.safetensors", "x.npy", "-o", "codes.npy", cwd=tmp_path)
    run_cli("score", "m.safetensors", "x.npy", "-o", "scores.npy", cwd=tmp_path)
    est = hourglass.load(tmp_path / "m.safetensors")
    np.testing.assert_array_equal(est.transform(manifold), np.load(tmp_path / "codes.npy"))
    cli_scores = np.load(tmp_path / "scores.npy")[:, 0]
    np.testing.assert_array_equal(est.anomaly_scores(manifold).astype(np.float32), cli_scores)


def test_python_model_in_cli_array_data(manifold, tmp_path):
    est = hourglass.AutoEncoder(hidden=[12], code=3, epochs=5, random_state=2).fit(manifold)
    est.save(tmp_path / "m.safetensors")
    np.save(tmp_path / "x.npy", manifold)
    run_cli("encode", "m.safetensors", "x.npy", "-o", "codes.npy", cwd=tmp_path)
    run_cli("reconstruct", "m.safetensors", "x.npy", "-o", "recon.npy", cwd=tmp_path)
    np.testing.assert_array_equal(np.load(tmp_path / "codes.npy"), est.transform(manifold))
    np.testing.assert_array_equal(np.load(tmp_path / "recon.npy"), est.reconstruct(manifold))
    inspect = run_cli("inspect", "m.safetensors", cwd=tmp_path).stdout
    assert inspect.startswith("autoencoder 8-12-3-12-8"), inspect


def test_cli_table_model_scores_a_dataframe_identically(table, tmp_path):
    pd = pytest.importorskip("pandas")
    table.to_csv(tmp_path / "t.csv", index=False)
    run_cli("train", "t.csv", "--categorical", "auto", "--impute", "median", "--code", "3", "--epochs", "5",
            "--scale", "standard", "--seed", "1", "-q", "-o", "m.safetensors", cwd=tmp_path)
    run_cli("score", "m.safetensors", "t.csv", "-o", "scores.npy", cwd=tmp_path)
    run_cli("encode", "m.safetensors", "t.csv", "-o", "codes.npy", cwd=tmp_path)
    est = hourglass.load(tmp_path / "m.safetensors")
    frame = pd.read_csv(tmp_path / "t.csv")
    np.testing.assert_array_equal(est.transform(frame), np.load(tmp_path / "codes.npy"))
    np.testing.assert_array_equal(est.anomaly_scores(frame).astype(np.float32), np.load(tmp_path / "scores.npy")[:, 0])


def test_python_table_model_scores_a_csv_identically(table, tmp_path):
    est = hourglass.AutoEncoder(code=3, epochs=5, categorical="auto", impute="mean", random_state=1).fit(table)
    est.save(tmp_path / "m.safetensors")
    table.to_csv(tmp_path / "t.csv", index=False)
    run_cli("score", "m.safetensors", "t.csv", "-o", "scores.npy", cwd=tmp_path)
    run_cli("encode", "m.safetensors", "t.csv", "-o", "codes.npy", cwd=tmp_path)
    np.testing.assert_array_equal(np.load(tmp_path / "codes.npy"), est.transform(table))
    np.testing.assert_array_equal(np.load(tmp_path / "scores.npy")[:, 0], est.anomaly_scores(table).astype(np.float32))
    # Calibrated in Python, the CLI flags the same rows.
    od = hourglass.OutlierDetector(code=3, epochs=5, categorical="auto", impute="mean", contamination=0.1,
                                   random_state=1).fit(table)
    od.save(tmp_path / "od.safetensors")
    run_cli("score", "od.safetensors", "t.csv", "-o", "flags.csv", cwd=tmp_path)
    flags = pytest.importorskip("pandas").read_csv(tmp_path / "flags.csv")["anomaly"].to_numpy()
    np.testing.assert_array_equal(flags == 1, od.predict(table) == -1)
    # The detector's default score (mse+lof, from the stored code neighbourhood) is the CLI's.
    run_cli("score", "od.safetensors", "t.csv", "-o", "od.npy", cwd=tmp_path)
    np.testing.assert_array_equal(np.load(tmp_path / "od.npy")[:, 0], od.anomaly_scores(table).astype(np.float32))
    assert "mse+lof" in run_cli("inspect", "od.safetensors", cwd=tmp_path).stdout


def test_python_model_of_a_named_frame_keeps_the_names(manifold, tmp_path):
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(manifold, columns=[f"x{j}" for j in range(manifold.shape[1])])
    est = hourglass.AutoEncoder(hidden=[6], code=2, epochs=2, random_state=0).fit(frame)
    est.save(tmp_path / "m.safetensors")
    assert list(hourglass.load(tmp_path / "m.safetensors").feature_names_in_) == list(frame.columns)
    frame.to_csv(tmp_path / "x.csv", index=False)
    run_cli("score", "m.safetensors", "x.csv", "-o", "scores.npy", cwd=tmp_path)
    np.testing.assert_array_equal(np.load(tmp_path / "scores.npy")[:, 0], est.anomaly_scores(frame).astype(np.float32))
    # An array afterwards: generic names again.
    est.fit(manifold).save(tmp_path / "a.safetensors")
    assert not hasattr(hourglass.load(tmp_path / "a.safetensors"), "feature_names_in_")


@pytest.mark.parametrize("shifted", [False, True])
def test_plain_cli_train_is_the_python_detector(manifold, tmp_path, shifted):
    """`hourglass train x.npy -o m` without --code or --arch takes the detector's defaults sized
    from the data (code, hidden width, epochs, early stopping, batch, scaling, neighbours): the
    same model, bit for bit, as `OutlierDetector()`, on data in [0, 1] (no scaling) and not."""
    x = manifold * 4 - 1 if shifted else manifold
    np.save(tmp_path / "x.npy", x)
    run_cli("train", "x.npy", "--seed", "3", "-q", "-o", "m.hg", cwd=tmp_path)
    run_cli("score", "m.hg", "x.npy", "-o", "s.npy", cwd=tmp_path)
    od = hourglass.OutlierDetector(random_state=3).fit(x)
    np.testing.assert_array_equal(np.load(tmp_path / "s.npy")[:, 0], od.anomaly_scores(x).astype(np.float32))
    shown = run_cli("inspect", "m.hg", cwd=tmp_path).stdout
    assert "autoencoder 8-24-6-24-8" in shown and "neighbourhood    400 training codes, 10 neighbours" in shown and "score mse+knn" in shown, shown
