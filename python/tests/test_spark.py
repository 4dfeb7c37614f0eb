"""Batch scoring on Spark (local[2], small Arrow batches over several partitions): every row's
score, anomaly flag and code equal the command line's for the same model and rows, for a numeric
CSV model and for a table model with categories and missing values."""

import os
import sys

import numpy as np
import pytest

import pyspark  # noqa: F401 - the test extras install it (and pyarrow)

import hourglass
from hourglass.spark import score_dataframe

from conftest import run_cli

# pyspark 4.3 warns about pandas 3 on every conversion; nothing here depends on what it warns of.
pytestmark = pytest.mark.filterwarnings("ignore::FutureWarning", "ignore:The copy keyword is deprecated")



@pytest.fixture(scope="module")
def spark():
    from pyspark.sql import SparkSession

    # Workers run this interpreter (Spark's default is the `python3` on PATH), and without the
    # working directory on sys.path: `python -m` would put python/ first and import the
    # source tree's hourglass, which has no native module, instead of the installed package.
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYTHONSAFEPATH"] = "1"
    s = (SparkSession.builder.master("local[2]").appName("hourglass-test")
         .config("spark.ui.enabled", "false")
         .config("spark.sql.shuffle.partitions", "4")
         .config("spark.sql.execution.arrow.maxRecordsPerBatch", "64")
         .getOrCreate())
    s.sparkContext.setLogLevel("ERROR")
    yield s
    s.stop()


def scored(spark, frame, model, **kw):
    """Scores `frame` (pandas, with an `id` column) on Spark over 3 partitions, rows back in id
    order."""
    df = spark.createDataFrame(frame).repartition(3)
    out = score_dataframe(df, model, **kw).toPandas()
    assert out.shape[0] == frame.shape[0]
    return out.sort_values("id").reset_index(drop=True)


def test_numeric_model_scores_flags_and_codes_equal_the_cli(spark, manifold, tmp_path):
    pd = pytest.importorskip("pandas")
    x = np.round(manifold, 4)
    x[:8] += 0.6  # a few rows off the surface
    names = [f"f{j}" for j in range(x.shape[1])]
    pd.DataFrame(x, columns=names).to_csv(tmp_path / "x.csv", index=False)
    run_cli("train", "x.csv", "--hidden", "12", "--code", "3", "--epochs", "5", "--scale", "standard",
            "--seed", "4", "-q", "-o", "m.safetensors", cwd=tmp_path)
    run_cli("calibrate", "m.safetensors", "x.csv", "--contamination", "0.05", cwd=tmp_path)
    run_cli("score", "m.safetensors", "x.csv", "-o", "scores.csv", cwd=tmp_path)
    run_cli("encode", "m.safetensors", "x.csv", "-o", "codes.npy", cwd=tmp_path)
    cli_scores = pd.read_csv(tmp_path / "scores.csv")

    frame = pd.read_csv(tmp_path / "x.csv")
    frame.insert(0, "id", np.arange(len(frame)))
    frame["note"] = [f"row {i}" for i in range(len(frame))]  # passes through untouched
    out = scored(spark, frame, str(tmp_path / "m.safetensors"), code=True)

    assert list(out.columns) == ["id", *names, "note", "score", "anomaly", "code_0", "code_1", "code_2"]
    np.testing.assert_array_equal(out["score"].to_numpy().astype(np.float32), cli_scores["score"].to_numpy(np.float32))
    np.testing.assert_array_equal(out["anomaly"].to_numpy(), cli_scores["anomaly"].to_numpy() == 1)
    assert 0 < out["anomaly"].sum() < len(out)
    np.testing.assert_array_equal(out[["code_0", "code_1", "code_2"]].to_numpy(np.float32), np.load(tmp_path / "codes.npy"))
    assert (out["note"] == frame["note"]).all()


def test_table_model_with_categories_and_missing_values_equals_the_cli(spark, table, tmp_path):
    pd = pytest.importorskip("pandas")
    table.to_csv(tmp_path / "t.csv", index=False)
    run_cli("train", "t.csv", "--categorical", "auto", "--impute", "median", "--code", "3", "--epochs", "5",
            "--scale", "standard", "--seed", "1", "-q", "-o", "m.safetensors", cwd=tmp_path)
    run_cli("score", "m.safetensors", "t.csv", "-o", "scores.npy", cwd=tmp_path)
    frame = pd.read_csv(tmp_path / "t.csv")
    frame.insert(0, "id", np.arange(len(frame)))
    frame.loc[5, "region"] = None  # a missing category, as an empty CSV cell reads
    frame.to_csv(tmp_path / "t2.csv", index=False, columns=["amount", "tenure", "region"])
    run_cli("score", "m.safetensors", "t2.csv", "-o", "scores2.npy", cwd=tmp_path)

    out = scored(spark, frame, hourglass.load(tmp_path / "m.safetensors"))
    assert "anomaly" not in out.columns  # not calibrated
    np.testing.assert_array_equal(out["score"].to_numpy().astype(np.float32), np.load(tmp_path / "scores2.npy")[:, 0])
    assert out["score"][5] != np.load(tmp_path / "scores.npy")[5, 0]


def test_clear_errors(spark, manifold, tmp_path):
    pd = pytest.importorskip("pandas")
    est = hourglass.AutoEncoder(hidden=[6], code=2, epochs=1, random_state=0).fit(manifold)
    df = spark.createDataFrame(pd.DataFrame(manifold.astype(np.float64), columns=[f"v{j}" for j in range(8)]))
    with pytest.raises(ValueError, match="no names"):
        score_dataframe(df, est)
    with pytest.raises(ValueError, match=r"lacks the model's input columns \['w0'\]"):
        score_dataframe(df, est, columns=["w0", *df.columns[1:]])
    with pytest.raises(ValueError, match="reads 8 columns, 7 given"):
        score_dataframe(df, est, columns=df.columns[:7])
    with pytest.raises(ValueError, match="metric"):
        score_dataframe(df, est, columns=df.columns, metric="l2")
    # Given the names, it scores as the estimator does.
    out = score_dataframe(df, est, columns=df.columns).toPandas()
    np.testing.assert_array_equal(out["score"].to_numpy(), est.anomaly_scores(manifold))


def test_readme_spark_snippet_runs(spark, manifold, tmp_path):
    import re

    pd = pytest.importorskip("pandas")
    from conftest import ROOT

    section = (ROOT / "README.md").read_text().split("### Scoring on Spark", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    names = [f"f{j}" for j in range(manifold.shape[1])]
    frame = pd.DataFrame(manifold.astype(np.float64), columns=names)
    frame.iloc[:5] += 0.7
    frame.to_parquet(tmp_path / "events.parquet")
    hourglass.OutlierDetector(code=2, epochs=5, contamination=0.02, random_state=0).fit(frame).save(
        tmp_path / "model.safetensors")
    # The JVM keeps the directory it started in, so the snippet's file names become absolute.
    for name in ("events.parquet", "model.safetensors", "anomalies.parquet"):
        assert f'"{name}"' in code
        code = code.replace(f'"{name}"', repr(str(tmp_path / name)))
    exec(compile(code, "README.md", "exec"), {})  # noqa: S102 - our own README
    flagged = pd.read_parquet(tmp_path / "anomalies.parquet")
    assert 0 < len(flagged) < len(frame) and flagged["anomaly"].all()
    assert {"score", "code_0", "code_1", *names} <= set(flagged.columns)
