"""hourglass inside scikit-learn's machinery: pipelines, grid search with parallel jobs."""

import numpy as np
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

import hourglass


def test_pipeline_column_transformer_autoencoder_logistic_regression():
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(0)
    n = 300
    z = rng.normal(size=(n, 2))
    frame = pd.DataFrame({f"f{i}": z @ rng.normal(size=2) + 0.05 * rng.normal(size=n) for i in range(6)})
    frame["noise"] = rng.normal(size=n)
    y = (z[:, 0] > 0).astype(int)
    pipe = Pipeline([
        ("columns", ColumnTransformer([("scale", StandardScaler(), [f"f{i}" for i in range(6)])])),
        ("codes", hourglass.AutoEncoder(code=4, epochs=100, random_state=0)),
        ("classify", LogisticRegression()),
    ])
    pipe.fit(frame[:200], y[:200])
    assert pipe.score(frame[200:], y[200:]) > 0.9


def test_grid_search_runs_with_two_jobs(manifold):
    search = GridSearchCV(
        hourglass.AutoEncoder(epochs=3, random_state=0),
        {"code": [2, 4], "noise": [None, "mask:0.1"]},
        cv=2,
        n_jobs=2,
    )
    search.fit(manifold)
    assert set(search.best_params_) == {"code", "noise"}
    assert len(search.cv_results_["mean_test_score"]) == 4
