"""What the estimators do, beyond scikit-learn's generic checks."""

import copy
import json
import pickle
import warnings

import joblib
import numpy as np
import pytest
from sklearn.exceptions import NotFittedError

import hourglass


def test_autoencoder_learns_codes_reconstructions_and_scores(manifold):
    ae = hourglass.AutoEncoder(code=2, hidden=[16], epochs=60, scale="minmax", random_state=0).fit(manifold)
    codes = ae.transform(manifold)
    assert codes.shape == (400, 2) and codes.dtype == np.float32
    r = ae.reconstruct(manifold)
    assert r.shape == manifold.shape
    mse = float(np.mean((r - manifold) ** 2))
    assert mse < 0.1 * float(np.var(manifold)), mse
    np.testing.assert_array_equal(ae.inverse_transform(codes), r)
    # scikit-learn's sign: higher = more normal; PyOD's: higher = more anomalous.
    np.testing.assert_allclose(ae.score_samples(manifold), -ae.anomaly_scores(manifold))
    far = manifold[:5] + 3.0
    assert ae.score_samples(far).max() < ae.score_samples(manifold).min()
    assert ae.n_iter_ == len(ae.history_) <= 60
    assert {"epoch", "train_loss", "valid_loss", "code"} <= set(ae.history_[0])
    assert ae.transform(manifold, layer=0).shape == (400, 16)


def test_results_do_not_depend_on_n_jobs(manifold):
    fit = lambda n: hourglass.AutoEncoder(epochs=5, random_state=3, n_jobs=n).fit(manifold)  # noqa: E731
    one, two = fit(1), fit(2)
    np.testing.assert_array_equal(one.transform(manifold), two.transform(manifold))
    np.testing.assert_array_equal(one.reconstruct(manifold), two.reconstruct(manifold))
    assert [h["train_loss"] for h in one.history_] == [h["train_loss"] for h in two.history_]


def test_the_same_seed_gives_the_same_model_and_none_draws_a_new_one(manifold):
    a = hourglass.AutoEncoder(epochs=3, random_state=5).fit(manifold)
    b = hourglass.AutoEncoder(epochs=3, random_state=5).fit(manifold)
    np.testing.assert_array_equal(a.transform(manifold), b.transform(manifold))
    c = hourglass.AutoEncoder(epochs=3, random_state=None).fit(manifold)
    d = hourglass.AutoEncoder(epochs=3, random_state=None).fit(manifold)
    assert not np.array_equal(c.transform(manifold), d.transform(manifold))


def test_pickle_deepcopy_joblib_and_files_keep_the_model(manifold, tmp_path):
    ae = hourglass.AutoEncoder(epochs=4, random_state=0).fit(manifold)
    want = ae.transform(manifold)
    for back in (
        pickle.loads(pickle.dumps(ae)),
        copy.deepcopy(ae),
    ):
        np.testing.assert_array_equal(back.transform(manifold), want)
        assert back.get_params() == ae.get_params()
    joblib.dump(ae, tmp_path / "ae.joblib")
    np.testing.assert_array_equal(joblib.load(tmp_path / "ae.joblib").transform(manifold), want)
    ae.save(tmp_path / "ae.safetensors")
    loaded = hourglass.load(tmp_path / "ae.safetensors")
    np.testing.assert_array_equal(loaded.transform(manifold), want)
    np.testing.assert_array_equal(loaded.score_samples(manifold), ae.score_samples(manifold))
    assert loaded.n_iter_ == ae.n_iter_


def test_dataframes_keep_names_and_get_the_table_encoding(table):
    ae = hourglass.AutoEncoder(epochs=5, categorical="auto", impute="median", random_state=0).fit(table)
    assert list(ae.feature_names_in_) == ["amount", "tenure", "region"]
    assert ae.table_inputs_ == ["amount", "tenure", "region"]
    assert ae.transform(table).shape[0] == len(table)
    # An unseen category and a missing value are encoded as in the command line.
    odd = table.head(3).copy()
    odd.loc[odd.index[0], "region"] = "west"
    odd.loc[odd.index[1], "tenure"] = np.nan
    assert np.isfinite(ae.score_samples(odd)).all()
    why = ae.explain(table.head(4))
    assert list(why.columns[:2]) == ["score", "top_feature"]
    assert "region=north.share" in why.columns
    np.testing.assert_allclose(why["score"], ae.anomaly_scores(table.head(4)))
    with pytest.raises(ValueError, match="DataFrame"):
        ae.transform(table.to_numpy())


def test_numeric_dataframes_check_their_column_names(manifold):
    pd = pytest.importorskip("pandas")
    df = pd.DataFrame(manifold, columns=list("abcdefgh"))
    ae = hourglass.AutoEncoder(epochs=2, random_state=0).fit(df)
    assert list(ae.feature_names_in_) == list("abcdefgh")
    np.testing.assert_array_equal(ae.transform(df), ae.transform(manifold))
    with pytest.raises(ValueError, match="feature names"):
        ae.transform(df.rename(columns={"a": "z"}))


def test_float64_lists_and_read_only_memmaps_are_accepted(manifold, tmp_path):
    ae = hourglass.AutoEncoder(epochs=2, random_state=0).fit(manifold)
    want = ae.transform(manifold)
    np.testing.assert_array_equal(ae.transform(manifold.astype(np.float64)), want)
    np.testing.assert_array_equal(ae.transform(manifold.tolist()), want)
    np.save(tmp_path / "x.npy", manifold)
    mm = np.load(tmp_path / "x.npy", mmap_mode="r")
    assert not mm.flags.writeable
    np.testing.assert_array_equal(ae.transform(mm), want)
    np.testing.assert_array_equal(ae.transform(np.asfortranarray(manifold)), want)


def test_bad_input_raises_clear_errors(manifold):
    ae = hourglass.AutoEncoder(epochs=2, random_state=0)
    with pytest.raises(NotFittedError):
        ae.transform(manifold)
    bad = manifold.copy()
    bad[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        ae.fit(bad)
    with pytest.raises(ValueError, match="0 sample"):
        ae.fit(manifold[:0])
    ae.fit(manifold)
    with pytest.raises(ValueError, match="8 features"):
        ae.transform(manifold[:, :5])
    with pytest.raises(ValueError, match="codes must have"):
        ae.inverse_transform(np.zeros((2, 7), np.float32))
    for params, match in [
        ({"epochs": 0, "batch_size": 8}, "epochs"),
        ({"learning_rate": -1.0}, "learning_rate"),
        ({"noise": "blur:2"}, "noise"),
        ({"activation": "swish"}, "activation"),
        ({"loss": "bce", "scale": "standard"}, "bce"),
        ({"topk": 50, "code": 4}, "top-k"),
        ({"validation_fraction": 1.5}, "validation_fraction"),
        ({"n_jobs": 0}, "n_jobs"),
        ({"hidden_reg": {0: "l2=1"}}, "l2=1"),
    ]:
        with pytest.raises(ValueError, match=match):
            hourglass.AutoEncoder(**{"epochs": 2, **params}).fit(manifold)


def test_images_train_convolutional_models():
    rng = np.random.default_rng(1)
    images = rng.uniform(size=(64, 8, 8)).astype(np.float32)
    arch = """
    [[encoder]]
    type = "conv"
    filters = 4
    kernel = 3
    stride = 2
    padding = 1
    [[decoder]]
    type = "conv_transpose"
    filters = 1
    kernel = 3
    stride = 2
    padding = 1
    output_padding = 1
    """
    ae = hourglass.AutoEncoder(arch=arch, epochs=3, scale="none", random_state=0).fit(images)
    assert ae.image_shape_ == (8, 8, 1)
    assert ae.transform(images).shape == (64, 4 * 4 * 4)
    np.testing.assert_array_equal(ae.transform(images), ae.transform(images.reshape(64, 1, 8, 8).reshape(64, 64)))
    rgb = rng.uniform(size=(16, 8, 8, 3)).astype(np.float32)
    with pytest.raises(ValueError):
        ae.transform(rgb)


def test_progress_bar_history_and_verbose_lines(manifold, capsys):
    ae = hourglass.AutoEncoder(epochs=3, validation_fraction=0.0, verbose=2, random_state=0).fit(manifold)
    err = capsys.readouterr().err
    assert err.count("epoch ") == 3, err
    assert len(ae.history_) == 3 and ae.history_[0]["valid_loss"] is None
    hourglass.AutoEncoder(epochs=2, verbose=1, random_state=0).fit(manifold)


def test_ctrl_c_stops_training_cleanly_and_keeps_a_model(manifold):
    import _thread
    import signal
    import threading

    big = np.tile(manifold, (200, 1))
    ae = hourglass.AutoEncoder(hidden=[256], epochs=10_000, patience=None, validation_fraction=0.0, random_state=0)
    # A process started in the background by a shell inherits SIGINT ignored, and then Python
    # installs no KeyboardInterrupt handler and interrupt_main() does nothing (the run would
    # train all 10,000 epochs): the test installs Python's handler itself.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    # Ctrl-C every half second until fit returns, so that one lost press cannot hang the test.
    done = threading.Event()

    def press_ctrl_c():
        while not done.wait(0.5):
            _thread.interrupt_main()

    threading.Thread(target=press_ctrl_c, daemon=True).start()
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            ae.fit(big)
    finally:
        done.set()
        signal.signal(signal.SIGINT, previous)
    assert any("interrupted" in str(w.message) for w in caught), [str(w.message) for w in caught]
    assert 0 < ae.n_iter_ < 10_000 or ae.n_iter_ == 0
    assert np.isfinite(ae.score_samples(manifold)).all()


def test_outlier_detector_flags_the_contamination(manifold):
    rng = np.random.default_rng(0)
    x = np.vstack([manifold, rng.uniform(-1, 2, size=(20, 8)).astype(np.float32)])
    od = hourglass.OutlierDetector(contamination=0.05, epochs=60, scale="minmax", random_state=0).fit(x)
    pred = od.predict(x)
    assert set(np.unique(pred)) <= {-1, 1}
    assert abs((pred == -1).mean() - 0.05) < 0.01
    # The planted rows are the outliers.
    assert (pred[-20:] == -1).mean() > 0.8
    np.testing.assert_allclose(od.decision_function(x), od.score_samples(x) - od.offset_)
    with pytest.raises(ValueError, match="contamination"):
        hourglass.OutlierDetector(contamination=0.9).fit(x)


def test_auto_scaling_leaves_unit_interval_data_alone_and_standardizes_the_rest(manifold, table):
    def scaling(est):
        return json.loads(est.model_.info())["scaling"]

    quick = dict(epochs=1, validation_fraction=0, random_state=0)
    # Values in [0, 1] (images, flags): no scaling, so a rare pixel's tiny spread is not blown up.
    assert scaling(hourglass.OutlierDetector(**quick).fit(manifold)) == "none"
    # One value outside [0, 1] anywhere: standard.
    shifted = manifold.copy()
    shifted[3, 5] = 1.5
    assert scaling(hourglass.OutlierDetector(**quick).fit(shifted)) == "standard"
    assert scaling(hourglass.AutoEncoder(code=2, **quick).fit(manifold * 10 - 3)) == "standard"
    # An explicit choice is kept; tables with encoded columns and series are standardized.
    assert scaling(hourglass.OutlierDetector(scale="minmax", **quick).fit(manifold)) == "minmax"
    assert scaling(hourglass.AutoEncoder(code=2, categorical="auto", impute="median", **quick).fit(table)) == "standard"
    assert scaling(hourglass.SeriesOutlierDetector(window=8, epochs=1, random_state=0).fit(manifold)) == "standard"
    with pytest.raises(ValueError, match="scale"):
        hourglass.OutlierDetector(scale="robust").fit(manifold)


def test_detector_scores_by_error_and_code_neighbourhood(tmp_path):
    # Normal rows on a curve with its middle left out; the anomalies are the model's own
    # reconstructions of points in that gap, so their error is small and only their codes'
    # sparse neighbourhood gives them away.
    rng = np.random.default_rng(4)

    def curve(u):
        return np.stack([u, u * u, 1 - u, 0.5 * u + 0.25], axis=1).astype(np.float32)

    u = np.where(rng.uniform(size=400) < 0.5, 0.3 * rng.uniform(size=400), 0.7 + 0.3 * rng.uniform(size=400))
    normal, gap = curve(u), curve(0.45 + 0.1 * rng.uniform(size=20))
    od = hourglass.OutlierDetector(hidden=[16], code=2, epochs=100, learning_rate=0.01, random_state=1).fit(normal[100:])
    test = np.vstack([normal[:100], od.reconstruct(gap)])
    y = np.r_[np.zeros(100), np.ones(20)]
    # A code of half the 4 inputs: the neighbourhood scores by distance (mse+knn); mse+lof
    # is there too.
    info = json.loads(od.model_.info())
    assert info["default_metric"] == "mse+knn" and info["neighbours"]["k"] == 10
    assert info["neighbours"]["part"] == "distance"
    scores = od.anomaly_scores(test)
    np.testing.assert_array_equal(scores, od.model_.scores(od._input(test), metric="mse+knn"))
    np.testing.assert_array_equal(od.score_samples(test), -scores)
    from sklearn.metrics import roc_auc_score

    both, error = roc_auc_score(y, scores), roc_auc_score(y, od.anomaly_scores(test, metric="mse"))
    assert both > 0.99 and both > error + 0.03, (both, error)
    lof = roc_auc_score(y, od.anomaly_scores(test, metric="mse+lof"))
    assert lof > 0.99 and lof > error + 0.03, (lof, error)
    # The explanation's shares are of the error; its score is the detector's.
    e = od.explain(test)
    np.testing.assert_array_equal(e["score"].to_numpy(), scores)
    # The neighbourhood survives a file round trip and pickling.
    od.save(tmp_path / "od.hg")
    np.testing.assert_array_equal(hourglass.load(tmp_path / "od.hg").anomaly_scores(test), scores)
    np.testing.assert_array_equal(pickle.loads(pickle.dumps(od)).anomaly_scores(test), scores)
    # neighbours=None: the error alone, as before.
    plain = hourglass.OutlierDetector(neighbours=None, hidden=[16], code=2, epochs=2, random_state=1).fit(normal)
    assert json.loads(plain.model_.info())["default_metric"] == "mse"
    with pytest.raises(hourglass.HourglassError, match="no code neighbourhood"):
        plain.anomaly_scores(test, metric="mse+lof")
    with pytest.raises(ValueError, match="neighbours"):
        hourglass.OutlierDetector(neighbours=0).fit(normal)
    # Tiny data: fewer neighbours than asked, still a neighbourhood.
    tiny = hourglass.OutlierDetector(epochs=1, random_state=0).fit(normal[:5])
    assert json.loads(tiny.model_.info())["neighbours"]["k"] == 4
    # An explicit k above the rows warns (as scikit-learn's LOF does) and uses what there is.
    with pytest.warns(UserWarning, match="neighbours=50 needs more training rows; using 29"):
        few = hourglass.OutlierDetector(neighbours=50, epochs=1, random_state=0).fit(normal[:30])
    assert json.loads(few.model_.info())["neighbours"]["k"] == 29


def test_detector_epochs_follow_the_rows():
    # About 60,000 rows seen within [10, 50] epochs: the library's numbers (the CLI's too).
    rng = np.random.default_rng(0)
    for rows, want in ((2400, 25), (300, 50), (7000, 10)):
        assert hourglass._native.detector_defaults(rows, 4)["epochs"] == want
        x = rng.normal(size=(rows, 4)).astype(np.float32)
        od = hourglass.OutlierDetector(validation_fraction=0, neighbours=None, random_state=0).fit(x)
        assert od.n_iter_ == want
    # The general autoencoder keeps its fixed default; None sizes it the same way.
    assert hourglass.AutoEncoder().epochs == 50
    x = rng.normal(size=(2400, 4)).astype(np.float32)
    assert hourglass.AutoEncoder(epochs=None, code=2, random_state=0).fit(x).n_iter_ == 25


def test_int8_inference_is_close_to_f32_and_switches_with_the_parameter(manifold, tmp_path):
    ae = hourglass.AutoEncoder(code=2, hidden=[16], epochs=30, scale="minmax", random_state=0).fit(manifold)
    codes, recon, scores = ae.transform(manifold), ae.reconstruct(manifold), ae.anomaly_scores(manifold)
    assert ae.model_.precision() == "f32"
    ae.set_params(inference_precision="int8")
    q_codes, q_recon, q_scores = ae.transform(manifold), ae.reconstruct(manifold), ae.anomaly_scores(manifold)
    assert ae.model_.precision() == "int8"
    # Different arithmetic (not a copy of the f32 path), close to it: int8 rounding of the
    # weights and of each row, 1/254 of each row's largest value at most per input.
    assert not np.array_equal(q_codes, codes)
    spread = float(np.ptp(codes))
    assert float(np.max(np.abs(q_codes - codes))) < 0.05 * spread
    assert float(np.max(np.abs(q_recon - recon))) < 0.05 * float(np.ptp(manifold))
    assert np.corrcoef(scores, q_scores)[0, 1] > 0.99
    np.testing.assert_array_equal(ae.inverse_transform(q_codes), q_recon)
    # Repeatable, kept through pickling (the parameter travels; the file stays f32)...
    back = pickle.loads(pickle.dumps(ae))
    np.testing.assert_array_equal(back.transform(manifold), q_codes)
    ae.save(tmp_path / "m.hgm")
    assert hourglass.load(tmp_path / "m.hgm").model_.precision() == "f32"
    # ...and back to f32 exactly.
    ae.set_params(inference_precision="f32")
    np.testing.assert_array_equal(ae.transform(manifold), codes)
    od = hourglass.OutlierDetector(epochs=10, random_state=0, inference_precision="int8").fit(manifold)
    assert od.model_.precision() == "int8" and abs((od.predict(manifold) == -1).mean() - 0.1) < 0.02
    with pytest.raises(ValueError, match="inference_precision must be 'f32' or 'int8', got 'int4'"):
        hourglass.AutoEncoder(inference_precision="int4").fit(manifold)
    ae.set_params(inference_precision="f16")
    with pytest.raises(ValueError, match="inference_precision"):
        ae.transform(manifold)


def test_pca_is_the_exact_baseline(manifold):
    from sklearn.decomposition import PCA as SkPCA

    ours = hourglass.PCA(n_components=3).fit(manifold)
    theirs = SkPCA(n_components=3).fit(manifold.astype(np.float64))
    np.testing.assert_allclose(ours.explained_variance_, theirs.explained_variance_ * (399 / 400), rtol=1e-4)
    recon = ours.inverse_transform(ours.transform(manifold))
    np.testing.assert_allclose(recon, theirs.inverse_transform(theirs.transform(manifold)), atol=1e-4)


def test_classifier_pretrains_and_fine_tunes():
    from sklearn.datasets import make_classification

    x, y = make_classification(n_samples=600, n_features=12, n_informative=6, n_classes=3, random_state=0)
    names = np.array(["red", "green", "blue"])[y]
    clf = hourglass.Classifier(hidden=(32, 16), pretrain_epochs=5, epochs=40, random_state=0).fit(x[:400], names[:400])
    assert list(clf.classes_) == sorted(set(names))
    acc = (clf.predict(x[400:]) == names[400:]).mean()
    assert acc > 0.7, acc
    proba = clf.predict_proba(x[400:])
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-5)
    back = pickle.loads(pickle.dumps(clf))
    np.testing.assert_array_equal(back.predict_proba(x[400:]), proba)


def test_hash_codes_and_hamming_search(manifold):
    ae = hourglass.AutoEncoder(code=16, binary_code="ste", code_activation="sigmoid", epochs=5, random_state=0)
    ae.fit(manifold)
    words, bits = hourglass.hash_codes(ae, manifold)
    assert bits == 16 and words.shape == (400, 1) and words.dtype == np.uint64
    hits = hourglass.hamming_search(words, words[:3], bits, k=5)
    assert hits.shape == (15, 4)
    # Each query finds itself at distance 0 first.
    assert (hits[::5, 2] == np.arange(3)).all() and (hits[::5, 3] == 0).all()


def test_architectures_as_dicts_and_annealed_topk(manifold):
    arch = {
        "activation": "tanh",
        "encoder": [{"type": "dense", "units": 12}, {"type": "dense", "units": 6}],
        "decoder": [{"type": "dense", "units": 12}, {"type": "dense", "units": 8}],
        "code": {"l1": 1e-4},
    }
    ae = hourglass.AutoEncoder(arch=arch, epochs=3, random_state=0).fit(manifold)
    assert ae.code_dim_ == 6 and ae.transform(manifold, layer=0).shape == (400, 12)
    sparse = hourglass.AutoEncoder(code=12, topk=3, topk_start=9, topk_anneal=2, topk_encode=4, epochs=4,
                                   random_state=0).fit(manifold)
    assert ((sparse.transform(manifold) != 0).sum(axis=1) <= 4).all()


def test_a_softmax_output_with_the_cross_entropy():
    """An architecture whose last layer is a softmax (`loss = "ce"`): one-hot rows of 6
    categories through a code of 4 come back as distributions whose most probable category is
    the row's."""
    rng = np.random.default_rng(2)
    x = np.eye(6, dtype=np.float32)[rng.integers(0, 6, 300)]
    arch = {
        "loss": "ce",
        "encoder": [{"type": "dense", "units": 4}],
        "decoder": [{"type": "dense", "units": 6}, {"type": "softmax"}],
    }
    ae = hourglass.AutoEncoder(arch=arch, epochs=60, scale="none", random_state=0).fit(x)
    p = ae.reconstruct(x)
    np.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-5)
    assert (p.argmax(axis=1) == x.argmax(axis=1)).mean() > 0.95
    with pytest.raises(ValueError, match="loss ce needs a softmax layer last"):
        hourglass.AutoEncoder(arch={**arch, "decoder": arch["decoder"][:1]}, epochs=1, scale="none").fit(x)


def test_a_batch_topk_dictionary_with_auxk(manifold):
    """BatchTopK keeps k per row on average (rows differ), the AuxK settings reach the model, and
    the same seed gives the same dictionary on 1 and 2 threads."""
    kw = dict(code=32, hidden=[], code_activation="relu", topk=3, batch_topk=True, auxk=4, auxk_window=200,
              unit_norm_decoder=True, tied_init=True, pre_bias=True, epochs=3, random_state=0)
    sae = hourglass.AutoEncoder(**kw, n_jobs=1).fit(manifold)
    active = (sae.transform(manifold) != 0).sum(axis=1)
    assert 1.5 < active.mean() < 4.5 and active.min() != active.max()
    again = hourglass.AutoEncoder(**kw, n_jobs=2).fit(manifold)
    np.testing.assert_array_equal(sae.transform(manifold), again.transform(manifold))
    with pytest.raises(ValueError, match="batch_topk needs topk"):
        hourglass.AutoEncoder(code=8, batch_topk=True, epochs=1).fit(manifold)
    with pytest.raises(ValueError, match="right below the output layer"):
        hourglass.AutoEncoder(code=8, hidden=[6], topk=2, auxk=2, epochs=1).fit(manifold)
    with pytest.raises(ValueError, match="one-layer dictionary"):
        hourglass.AutoEncoder(code=8, hidden=[6], pre_bias=True, epochs=1).fit(manifold)


def test_bf16_where_it_cannot_run_warns_once_and_trains_in_f32(tmp_path):
    """The SIMD level lowered to AVX2 (read once per process, so in a child process): bf16
    cannot run on any CPU, and fit says so with a UserWarning instead of silently."""
    import os
    import subprocess
    import sys

    code = (
        "import warnings, numpy as np, hourglass\n"
        "x = np.random.default_rng(0).random((60, 4)).astype('float32')\n"
        "with warnings.catch_warnings(record=True) as w:\n"
        "    warnings.simplefilter('always')\n"
        "    hourglass.AutoEncoder(code=2, epochs=1, precision='bf16').fit(x)\n"
        "print('|'.join(f'{i.category.__name__}: {i.message}' for i in w))\n"
    )
    env = {**os.environ, "HOURGLASS_SIMD": "avx2"}
    # Run away from the source tree, so that the installed package is imported.
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    out = run.stdout
    assert out.count("UserWarning: precision bf16 was asked for, f32 GEMMs run instead") == 1, out
