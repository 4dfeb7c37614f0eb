"""`hourglass export` against onnxruntime: every model kind (dense of every activation, tied,
PCA, top-k, binary codes, a variational autoencoder, calibrated with per-feature shares, every convolutional example,
paired targets, a classifier, an encoded table) passes `onnx.checker` (full check) and gives,
on 1,000 real MNIST test rows plus edge rows (zeros, ones, ±1e6, subnormals), what
`hourglass encode / reconstruct / score / predict` write: max |Δ| ≤ 1e-5·(1 + |value|), and
the same order of anomaly scores.

onnx and onnxruntime come with the package's test extras (scripts/test installs them)."""

import csv
import json
import gzip

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from conftest import ROOT, run_cli

MNIST = ROOT / "tests" / "data" / "mnist-test-1000-images-idx3-ubyte.gz"
LABELS = ROOT / "tests" / "data" / "mnist-test-1000-labels-idx1-ubyte.gz"
EXAMPLES = ROOT / "examples"


def mnist():
    raw = gzip.open(MNIST).read()
    return np.frombuffer(raw[16:], np.uint8).reshape(-1, 784).astype(np.float32) / 255.0


def edge_rows(d):
    """Zeros, ones, ±1e6, the smallest subnormal, and a row mixing zeros, ones, subnormals and
    halves. (A row mixing +1e6 and -1e6 is left out: its first layer sums terms of ±1e6·w that
    cancel, and two correct f32 implementations that sum in different orders then differ by
    more than 1e-5 of the result; we saw 2.4e-5 with a GELU encoder.)"""
    tiny = np.float32(1e-45)
    mixed = np.resize(np.array([0, 1, tiny, 0.5], np.float32), d)
    return np.stack([np.zeros(d), np.ones(d), np.full(d, 1e6), np.full(d, -1e6), np.full(d, tiny), mixed]).astype(np.float32)


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """The 1,000 MNIST rows with the edge rows after them (x.npy), and 128 of them to train on."""
    tmp = tmp_path_factory.mktemp("onnx")
    x = mnist()
    np.save(tmp / "x.npy", np.concatenate([x, edge_rows(784)]))
    np.save(tmp / "small.npy", x[:128])
    return tmp


# The rows of ±1e6 in x.npy (the 1,000 MNIST rows, then zeros, ones, +1e6, -1e6, …).
BIG = (1002, 1003)


def close(name, got, want, big=()):
    """max |Δ| ≤ 1e-5·(1 + |value|), and both finite. On the rows `big` (the ±1e6 rows) the
    bound is 1e-2·(1 + |value|): there the first layer sums terms of ±1e6·w of both signs, two
    correct f32 implementations that sum in different orders differ in the last bits of those
    large sums, and where the sum nearly cancels (a sigmoid output near 0.5) that difference
    is large next to the result (we measured up to 2.3e-3 between hourglass and onnxruntime;
    most such rows agree to 1e-5)."""
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert got.shape == want.shape, f"{name}: shape {got.shape}, expected {want.shape}"
    err = np.abs(got - want) / (1 + np.abs(want))
    bound = np.full(len(err), 1e-5)
    bound[list(big)] = 1e-2
    assert np.isfinite(got).all() == np.isfinite(want).all(), f"{name}: non-finite values differ"
    err = err.reshape(len(err), -1) / bound[:, None]
    assert err.max() <= 1, f"{name}: max |Δ|/(1+|value|) is {err.max():.3g} × its bound, at {np.unravel_index(err.argmax(), err.shape)}"


def same_order(got, want):
    """The ONNX scores sort the rows as hourglass's do (up to differences below the tolerance)."""
    order = np.argsort(got, kind="stable")
    steps = np.diff(np.asarray(want, np.float64)[order])
    assert (steps >= -1e-5 * (1 + np.abs(want[order][1:]))).all(), "the ONNX scores rank rows differently"


def export(tmp, model, *outputs):
    args = ["export", model, "-o", "m.onnx"]
    if outputs:
        args += ["--outputs", ",".join(outputs)]
    run_cli(*args, cwd=tmp)
    m = onnx.load(tmp / "m.onnx")
    onnx.checker.check_model(m, full_check=True)
    assert m.opset_import[0].version == 17 and m.ir_version == 8
    meta = {p.key: p.value for p in m.metadata_props}
    assert meta["hourglass.format"] == "hourglass"
    session = ort.InferenceSession(str(tmp / "m.onnx"), providers=["CPUExecutionProvider"])
    assert [i.shape[0] for i in session.get_inputs()] == ["N"] * len(session.get_inputs())
    return session, meta


def test_a_softmax_over_each_steps_channels(tmp_path):
    """A categorical sequence model (one-hot tokens, windows of 8 steps of 4 channels, a
    `softmax` layer last and loss ce): the ONNX Softmax over the channel axis gives, per
    window, the distributions `reconstruct` writes (summing to 1 at each step), the code and
    the score."""
    rng = np.random.default_rng(6)
    x = np.eye(4, dtype=np.float32)[rng.integers(0, 4, 300)]
    np.save(tmp_path / "t.npy", x)
    arch = (EXAMPLES / "series-lstm.toml").read_text().replace('loss = "mse"', 'loss = "ce"')
    arch = arch.replace("steps = 64", "steps = 8").replace("filters = 1", "filters = 4")
    arch = arch.replace('output_activation = "identity"', "") + '\n[[decoder]]\ntype = "softmax"\n'
    (tmp_path / "a.toml").write_text(arch)
    run_cli("train", "t.npy", "--window", "8", "--arch", "a.toml", "--scale", "none", "--epochs", "2", "-q", "-o", "m.hg", cwd=tmp_path)
    session, _ = export(tmp_path, "m.hg")
    windows = np.stack([x[i : i + 8].T.reshape(-1) for i in range(len(x) - 7)])
    out = run(session, {"input": windows})
    run_cli("encode", "m.hg", "t.npy", "-o", "codes.npy", cwd=tmp_path)
    run_cli("reconstruct", "m.hg", "t.npy", "-o", "recon.npy", cwd=tmp_path)
    run_cli("score", "m.hg", "t.npy", "--per-window", "-o", "scores.npy", cwd=tmp_path)
    recon = np.load(tmp_path / "recon.npy")
    np.testing.assert_allclose(recon.reshape(-1, 4, 8).sum(axis=1), 1.0, atol=1e-5)
    close("code", out["code"], np.load(tmp_path / "codes.npy"))
    close("reconstruction", out["reconstruction"], recon)
    close("score", out["score"], np.load(tmp_path / "scores.npy")[:, 0])


def run(session, feeds):
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, feeds)))


def check_autoencoder(tmp, model, data="x.npy", outputs=(), feeds=None, big=BIG):
    """Exports `model` and compares every output with the command line on `data` (`big`: the
    indices of its ±1e6 rows)."""
    session, meta = export(tmp, model, *outputs)
    if feeds is None:
        feeds = {"input": np.load(tmp / data)}
    out = run(session, feeds)
    run_cli("encode", model, data, "-o", "codes.npy", cwd=tmp)
    close("code", out["code"], np.load(tmp / "codes.npy"), big)
    if "reconstruction" in out:
        run_cli("reconstruct", model, data, "-o", "recon.npy", cwd=tmp)
        close("reconstruction", out["reconstruction"], np.load(tmp / "recon.npy"), big)
    if "score" in out:
        per = ["--per-feature"] if "per_feature" in out else []
        run_cli("score", model, data, "-o", "scores.csv", *per, cwd=tmp)
        rows = list(csv.reader(open(tmp / "scores.csv")))
        head, body = rows[0], rows[1:]
        column = lambda i: np.array([float(r[i]) for r in body])
        score = column(head.index("score"))
        assert out["score"].dtype == np.float64
        close("score", out["score"], score, big)
        same_order(out["score"], score)
        if "anomaly" in out:
            assert out["anomaly"].dtype == bool
            np.testing.assert_array_equal(out["anomaly"], column(head.index("anomaly")) == 1)
        if "per_feature" in out:
            shares = [i for i, h in enumerate(head) if h.endswith(".share")]
            close("per_feature", out["per_feature"], np.stack([column(i) for i in shares], axis=1), big)
    return out, meta


ACTIVATIONS = [
    ("relu", "identity", "sigmoid"),
    ("tanh", "tanh", "identity"),
    ("gelu", "elu", "sigmoid"),
    ("leaky_relu", "sigmoid", "identity"),
]


@pytest.mark.parametrize("act,code_act,out_act", ACTIVATIONS)
def test_dense_autoencoders_of_every_activation(work, act, code_act, out_act):
    run_cli("train", "small.npy", "--hidden", "64,32", "--code", "8", "--activation", act, "--code-activation", code_act,
            "--output-activation", out_act, "--loss", "mse", "--epochs", "2", "--seed", "3", "-q", "-o", "m.hg", cwd=work)
    out, meta = check_autoencoder(work, "m.hg")
    assert set(out) == {"code", "reconstruction", "score"}
    assert meta["hourglass.kind"] == "autoencoder"


def test_tied_weights_and_a_standard_scaler(work):
    run_cli("train", "small.npy", "--hidden", "64", "--code", "16", "--tied", "--scale", "standard", "--epochs", "2",
            "-q", "-o", "m.hg", cwd=work)
    check_autoencoder(work, "m.hg")


def test_a_variational_autoencoder_exports_its_mean_path(work):
    # The Gaussian code is a Slice at inference (the mean): encode, reconstruct and score
    # are deterministic and the graph gives what the command line writes.
    run_cli("train", "small.npy", "--hidden", "64", "--code", "8", "--activation", "tanh", "--loss", "bce", "--vae",
            "--binarize", "--epochs", "2", "-q", "-o", "m.hg", cwd=work)
    out, _ = check_autoencoder(work, "m.hg")
    assert out["code"].shape[1] == 8


def test_pca(work):
    run_cli("pca", "small.npy", "--components", "16", "--scale", "standard", "-o", "m.hg", cwd=work)
    check_autoencoder(work, "m.hg")


def test_top_k_codes_at_encode_time(work):
    run_cli("train", "small.npy", "--hidden", "128", "--code", "64", "--topk", "8", "--topk-encode", "12",
            "--epochs", "2", "-q", "-o", "m.hg", cwd=work)
    out, _ = check_autoencoder(work, "m.hg")
    assert ((out["code"] != 0).sum(axis=1) <= 12).all()


def test_batch_topk_threshold(work):
    run_cli("train", "small.npy", "--code", "64", "--code-activation", "relu", "--output-activation", "identity",
            "--code-reg", "batchtopk=6,auxk=8", "--epochs", "2", "-q", "-o", "m.hg", cwd=work)
    out, _ = check_autoencoder(work, "m.hg")
    active = (out["code"] != 0).sum(axis=1)
    assert 2 < active.mean() < 12 and active.min() != active.max()


def test_binary_codes(work):
    run_cli("train", "small.npy", "--hidden", "64", "--code", "16", "--code-activation", "sigmoid",
            "--binary-code", "noise:2", "--epochs", "2", "-q", "-o", "m.hg", cwd=work)
    out, _ = check_autoencoder(work, "m.hg")
    assert set(np.unique(out["code"])) <= {0.0, 1.0}


@pytest.mark.parametrize("metric", ["mse", "mae"])
def test_calibrated_flags_and_per_feature_shares(work, metric):
    run_cli("train", "small.npy", "--hidden", "32", "--code", "8", "--scale", "minmax", "--epochs", "2",
            "-q", "-o", "m.hg", cwd=work)
    run_cli("calibrate", "m.hg", "small.npy", "--contamination", "0.1", "--metric", metric, cwd=work)
    out, meta = check_autoencoder(work, "m.hg", outputs=("code", "reconstruction", "score", "anomaly", "per_feature"))
    assert 0 < out["anomaly"].sum() < len(out["anomaly"])
    assert meta["hourglass.score_metric"] == metric
    np.testing.assert_allclose(out["per_feature"][:1000].sum(axis=1), 1.0, rtol=1e-4)


@pytest.mark.parametrize("example", sorted(p.name for p in EXAMPLES.glob("conv-*.toml") if p.name != "conv-segment.toml"))
def test_convolutional_examples(work, example):
    run_cli("train", "small.npy", "--arch", EXAMPLES / example, "--image-shape", "28,28", "--epochs", "1", "-q",
            "-o", "m.hg", cwd=work)
    check_autoencoder(work, "m.hg")


def test_paired_targets_segmentation_example(work):
    rng = np.random.default_rng(1)
    images = rng.uniform(size=(48, 1024)).astype(np.float32)
    np.save(work / "seg.npy", images)
    np.save(work / "seg-masks.npy", (images > 0.5).astype(np.float32))
    np.save(work / "seg-test.npy", np.concatenate([rng.uniform(size=(200, 1024)).astype(np.float32), edge_rows(1024)]))
    run_cli("train", "seg.npy", "--target", "seg-masks.npy", "--arch", EXAMPLES / "conv-segment.toml", "--epochs", "1",
            "-q", "-o", "m.hg", cwd=work)
    check_autoencoder(work, "m.hg", data="seg-test.npy", big=(202, 203))


def test_paired_targets_of_another_width(work):
    np.save(work / "targets.npy", np.load(work / "small.npy")[:, 300:310])
    run_cli("train", "small.npy", "--target", "targets.npy", "--hidden", "32", "--code", "8", "--epochs", "2",
            "-q", "-o", "m.hg", cwd=work)
    out, _ = check_autoencoder(work, "m.hg")
    assert set(out) == {"code", "reconstruction"} and out["reconstruction"].shape == (1006, 10)
    p = run_cli("export", "m.hg", "-o", "bad.onnx", "--outputs", "score", cwd=work, check=False)
    assert p.returncode == 2 and "--outputs" in p.stderr and "paired targets" in p.stderr, p.stderr
    assert not (work / "bad.onnx").exists()


def test_classifier_probabilities_and_classes(work):
    run_cli("train", "small.npy", "--hidden", "64", "--code", "16", "--epochs", "1", "-q", "-o", "ae.hg", cwd=work)
    np.save(work / "labels.npy", np.frombuffer(gzip.open(LABELS).read()[8:], np.uint8)[:128].astype(np.int64))
    run_cli("finetune", "ae.hg", "small.npy", "--labels", "labels.npy", "--epochs", "1", "-o", "clf.hg", cwd=work)
    session, meta = export(work, "clf.hg")
    assert meta["hourglass.kind"] == "classifier"
    out = run(session, {"input": np.load(work / "x.npy")})
    run_cli("predict", "clf.hg", "x.npy", "-o", "pred.csv", cwd=work)
    rows = list(csv.DictReader(open(work / "pred.csv")))
    classes = [k[2:] for k in rows[0] if k.startswith("p_")]
    assert classes == [str(c) for c in eval(meta["hourglass.classes"])]
    close("probabilities", out["probabilities"], [[float(r["p_" + c]) for c in classes] for r in rows], BIG)
    np.testing.assert_array_equal([classes[i] for i in out["class"]], [r["predicted"] for r in rows])


def fnv1a(value):
    h = 0xCBF29CE484222325
    for b in value.encode():
        h = ((h ^ b) * 0x100000001B3) % 2**64
    return h


def test_an_encoded_table_with_categories_missing_values_and_hashing(tmp_path):
    rng = np.random.default_rng(5)
    n = 300
    region = rng.choice(["north", "south", "east", ""], n, p=[0.4, 0.3, 0.2, 0.1])
    shop = np.array([f"shop{i}" for i in rng.integers(0, 40, n)])
    amount = np.round(rng.gamma(2.0, 50.0, n), 3)
    tenure = rng.integers(1, 60, n).astype(float)
    tenure[rng.choice(n, 20, replace=False)] = np.nan
    with open(tmp_path / "t.csv", "w") as f:
        f.write("amount,tenure,region,shop\n")
        for row in zip(amount, tenure, region, shop):
            f.write(",".join("" if isinstance(v, float) and np.isnan(v) else str(v) for v in row) + "\n")
    with open(tmp_path / "new.csv", "w") as f:  # unseen categories, NA spellings, edge numbers
        f.write("amount,tenure,region,shop\n1e6,NA,west,shop999\n-1e6,,NA,\n0,3,north,shop1\n1e-40,1,,shop7\n")
    run_cli("train", "t.csv", "--categorical", "region,shop", "--max-categories", "10", "--hash-buckets", "8", "--impute", "median",
            "--scale", "standard", "--hidden", "16", "--code", "4", "--epochs", "3", "-q", "-o", "m.hg", cwd=tmp_path)
    for data in ["t.csv", "new.csv"]:
        text = list(csv.DictReader(open(tmp_path / data)))
        num = lambda k: np.array([[np.nan if r[k] in ("", "NA") else float(r[k])] for r in text], np.float32)
        missing = lambda v: "" if v in ("", "NA") else v
        feeds = {
            "amount": num("amount"),
            "tenure": num("tenure"),
            "region": np.array([[r["region"]] for r in text], object),
            "shop": np.array([[fnv1a(missing(r["shop"])) % 8] for r in text], np.int64),
        }
        _, meta = check_autoencoder(tmp_path, "m.hg", data=data, feeds=feeds, big=(0, 1) if data == "new.csv" else ())
    assert "FNV-1a" in meta["hourglass.notes"]
    assert "shop: int64[N, 1]" in meta["hourglass.inputs"]


def test_bad_outputs_are_refused_and_nothing_is_written(work):
    run_cli("train", "small.npy", "--code", "4", "--epochs", "1", "-q", "-o", "m.hg", cwd=work)
    for outputs, says in [("anomaly", "calibrate"), ("probabilities", "classifiers"), ("code,code", "twice"), ("codes", "unknown")]:
        p = run_cli("export", "m.hg", "-o", "bad.onnx", "--outputs", outputs, cwd=work, check=False)
        assert p.returncode == 2 and says in p.stderr, p.stderr
        assert not (work / "bad.onnx").exists()


def test_stacked_pretraining_and_pca_with_itq_on_an_autoencoder(work):
    """The README's stacked denoising autoencoder and its hashing model (PCA + ITQ on codes)."""
    run_cli("pretrain", "small.npy", "--hidden", "64,32", "--noise", "mask:0.25", "--epochs", "1", "-o", "sda.hg", cwd=work)
    check_autoencoder(work, "sda.hg")
    run_cli("train", "small.npy", "--code", "64", "--code-activation", "relu", "--noise", "mask:0.25", "--epochs", "1",
            "-q", "-o", "dn.hg", cwd=work)
    run_cli("pca", "small.npy", "--on", "dn.hg", "--components", "16", "--itq", "5", "-o", "hash.hg", cwd=work)
    check_autoencoder(work, "hash.hg")


def test_estimators_export_what_they_compute(manifold, table, tmp_path):
    """From Python: an autoencoder on an array, a detector on a DataFrame with categories and
    missing values (the frame's columns are the graph's inputs), and a classifier."""
    import hourglass

    ae = hourglass.AutoEncoder(hidden=[12], code=3, epochs=5, random_state=2).fit(manifold)
    ae.to_onnx(tmp_path / "ae.onnx", outputs=["code", "score"])
    s = ort.InferenceSession(str(tmp_path / "ae.onnx"), providers=["CPUExecutionProvider"])
    code, score = s.run(None, {"input": manifold})
    close("code", code, ae.transform(manifold))
    close("score", score, ae.anomaly_scores(manifold))

    det = hourglass.OutlierDetector(code=3, epochs=5, categorical="auto", impute="median", random_state=1).fit(table)
    det.to_onnx(tmp_path / "det.onnx")
    s = ort.InferenceSession(str(tmp_path / "det.onnx"), providers=["CPUExecutionProvider"])
    feeds = {
        "amount": table[["amount"]].to_numpy(np.float32),
        "tenure": table[["tenure"]].to_numpy(np.float32),
        "region": table[["region"]].to_numpy(object),
    }
    out = run(s, feeds)
    ours = det.model_.scores(det._input(table))
    close("score", out["score"], ours)
    # The same flags, except where the score is within the scores' tolerance of the threshold:
    # the threshold is one of these training rows' own scores, and the graph's sum of that row
    # may land a few ulps to either side of it. At most that one row may differ.
    threshold = -det.offset_
    edge = np.abs(ours - threshold) <= 1e-5 * (1 + abs(threshold))
    assert edge.sum() <= 2, edge.sum()
    np.testing.assert_array_equal(out["anomaly"][~edge], (det.predict(table) == -1)[~edge])
    # A code of less than half the encoded table's width scores by mse+lof; one of the whole
    # width by mse+knn: the graph computes each.
    info = json.loads(det.model_.info())
    assert info["code_dim"] * 2 < info["input_dim"] and info["default_metric"] == "mse+lof"
    wide = hourglass.OutlierDetector(code=info["input_dim"], epochs=5, categorical="auto", impute="median", random_state=1).fit(table)
    assert json.loads(wide.model_.info())["default_metric"] == "mse+knn"
    wide.to_onnx(tmp_path / "wide.onnx", outputs=["score"])
    s = ort.InferenceSession(str(tmp_path / "wide.onnx"), providers=["CPUExecutionProvider"])
    close("score", run(s, feeds)["score"], wide.model_.scores(wide._input(table)))

    clf = hourglass.Classifier(hidden=[16], pretrain_epochs=1, epochs=2, random_state=0)
    y = (manifold[:, 0] > 0.5).astype(int)
    clf.fit(manifold, y)
    clf.to_onnx(tmp_path / "clf.onnx")
    s = ort.InferenceSession(str(tmp_path / "clf.onnx"), providers=["CPUExecutionProvider"])
    p, k = s.run(None, {"input": manifold})
    close("probabilities", p, clf.predict_proba(manifold))
    np.testing.assert_array_equal(clf.classes_[k], clf.predict(manifold))
    with pytest.raises(ValueError, match="unknown output"):
        ae.to_onnx(tmp_path / "bad.onnx", outputs=["codes"])


def test_colour_images_and_a_top_k_convolutional_code(tmp_path):
    """RGB rows (channel-major), a convolutional code with top-k at encode time, pooling and
    upsampling, on generated 12x12 images."""
    (tmp_path / "rgb.toml").write_text("""
activation = "relu"
output_activation = "sigmoid"
[code]
topk = { k = 40 }
[[encoder]]
type = "reshape"
shape = [3, 12, 12]
[[encoder]]
type = "conv"
filters = 5
kernel = 3
padding = 1
[[encoder]]
type = "max_pool"
size = 2
[[decoder]]
type = "upsample"
factor = 2
[[decoder]]
type = "conv"
filters = 3
kernel = 3
padding = 1
""")
    rng = np.random.default_rng(4)
    x = rng.uniform(size=(300, 432)).astype(np.float32)
    np.save(tmp_path / "rgb.npy", np.concatenate([x, edge_rows(432)]))
    np.save(tmp_path / "train.npy", x[:64])
    run_cli("train", "train.npy", "--arch", "rgb.toml", "--epochs", "1", "-q", "-o", "m.hg", cwd=tmp_path)
    out, _ = check_autoencoder(tmp_path, "m.hg", data="rgb.npy", big=(302, 303))
    assert ((out["code"] != 0).sum(axis=1) <= 40).all()


@pytest.mark.parametrize("arch", ["series-conv1d.toml", "series-lstm.toml", "gru"])
def test_a_series_model_of_1d_convolutions_or_recurrent_layers(tmp_path, arch):
    """A model of a series' windows (train --window) with conv1d and conv_transpose1d layers,
    or recurrent ones (the LSTM example, and the same with GRUs: ONNX LSTM and GRU nodes with
    the gates reordered): the graph reads the windows, and gives each window's code,
    reconstruction and score as `encode`, `reconstruct` and `score --per-window` do."""
    rng = np.random.default_rng(4)
    t = np.arange(400)
    x = (np.sin(2 * np.pi * t / 16) + 0.1 * rng.standard_normal(400)).astype(np.float32)[:, None]
    np.save(tmp_path / "s.npy", x)
    if arch == "gru":
        text = (EXAMPLES / "series-lstm.toml").read_text().replace('"lstm"', '"gru"')
        assert text.count('"gru"') == 2
        (tmp_path / "gru.toml").write_text(text)
        arch = tmp_path / "gru.toml"
    else:
        arch = EXAMPLES / arch
    run_cli("train", "s.npy", "--window", "64", "--arch", arch, "--epochs", "2", "-q", "-o", "m.hg", cwd=tmp_path)
    session, meta = export(tmp_path, "m.hg")
    assert meta["hourglass.windows"] == '{"length":64,"stride":1}'
    windows = np.lib.stride_tricks.sliding_window_view(x[:, 0], 64).astype(np.float32)
    out = run(session, {"input": windows})
    run_cli("encode", "m.hg", "s.npy", "-o", "codes.npy", cwd=tmp_path)
    run_cli("reconstruct", "m.hg", "s.npy", "-o", "recon.npy", cwd=tmp_path)
    run_cli("score", "m.hg", "s.npy", "--per-window", "-o", "scores.npy", cwd=tmp_path)
    close("code", out["code"], np.load(tmp_path / "codes.npy"))
    close("reconstruction", out["reconstruction"], np.load(tmp_path / "recon.npy"))
    close("score", out["score"], np.load(tmp_path / "scores.npy")[:, 0])
