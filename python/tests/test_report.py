"""`hourglass report`: the page parses (every tag closed), refers to nothing outside itself, has
the sections its inputs call for, and renders in headless Chromium at 1280 px to a screenshot
that is not blank. For an image autoencoder with a log, a threshold and labels; a table with
categories; a classifier with classes.

Chromium is the Debian package (scripts/test installs it)."""

import gzip
import html.parser
import io
import shutil
import subprocess

import numpy as np
import pytest
from PIL import Image

from conftest import ROOT, run_cli

MNIST = ROOT / "tests" / "data" / "mnist-test-1000-images-idx3-ubyte.gz"
LABELS = ROOT / "tests" / "data" / "mnist-test-1000-labels-idx1-ubyte.gz"
VOID = {"meta", "img", "br", "hr", "input", "link", "circle", "line", "rect", "polyline", "path"}


class Checker(html.parser.HTMLParser):
    """Every element closed in order; every src/href a data: URI or a fragment."""

    def __init__(self):
        super().__init__()
        self.stack, self.errors, self.text = [], [], []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in ("src", "href", "xlink:href") and not (value or "").startswith(("data:", "#")):
                self.errors.append(f"<{tag} {name}={value!r}> refers outside the page")
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.handle_starttag(tag, attrs)
        if tag not in VOID:
            self.stack.pop()

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else None}>")
        else:
            self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


def chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    pytest.fail("headless Chromium is missing: scripts/test installs the Debian package `chromium`")


def check_page(path, sections):
    page = path.read_text()
    for outside in ("http://", "https://", "<script", "<link", "@import", "url("):
        assert outside not in page, f"the page refers to something outside it: {outside}"
    c = Checker()
    c.feed(page)
    c.close()
    assert not c.errors, c.errors[:5]
    assert c.stack == [], f"unclosed: {c.stack}"
    text = " ".join(c.text)
    for s in sections:
        assert s in text, f"no `{s}` in the page"
    shot = path.with_suffix(".png")
    subprocess.run([chromium(), "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                    "--window-size=1280,2000", f"--screenshot={shot}", path.as_uri()],
                   check=True, capture_output=True, timeout=120)
    img = np.asarray(Image.open(io.BytesIO(shot.read_bytes())).convert("L"), np.float32)
    assert img.shape == (2000, 1280)
    # Not blank: dark text and chart ink cover a real part of the page, not one colour.
    dark = (img < 128).mean()
    assert 0.005 < dark < 0.5 and img.std() > 10, f"the screenshot looks blank ({dark:.4f} dark, std {img.std():.1f})"
    return text


def test_an_image_autoencoder_with_log_threshold_and_labels(tmp_path):
    run_cli("train", MNIST, "--hidden", "64", "--code", "16", "--epochs", "3", "--valid-fraction", "0.2", "--log", "run.log",
            "-q", "-o", "m.hg", cwd=tmp_path)
    run_cli("calibrate", "m.hg", MNIST, "--contamination", "0.05", cwd=tmp_path)
    run_cli("report", "m.hg", MNIST, "--labels", LABELS, "--anomaly-labels", "0", "--log", "run.log", "-o", "r.html",
            cwd=tmp_path)
    text = check_page(tmp_path / "r.html", ["Model card", "784-64-16-64-784", "Loss per epoch", "Reconstruction error per row",
                                            "threshold", "ROC curve (AUC", "Filters of the first encoder layer",
                                            "Firing frequency", "from the training log"])
    assert "wall time" in text
    # Without data, the model's own history still draws the curves.
    run_cli("report", "m.hg", "-o", "alone.html", cwd=tmp_path)
    text = check_page(tmp_path / "alone.html", ["Model card", "Loss per epoch", "Code sparsity on 200 validation rows"])
    assert "Reconstruction error" not in text


def test_a_table_shows_the_features_behind_the_error(table, tmp_path):
    table.to_csv(tmp_path / "t.csv", index=False)
    run_cli("train", "t.csv", "--categorical", "auto", "--impute", "median", "--scale", "standard", "--code", "3",
            "--epochs", "5", "-q", "-o", "m.hg", cwd=tmp_path)
    run_cli("report", "m.hg", "t.csv", "-o", "t.html", cwd=tmp_path)
    text = check_page(tmp_path / "t.html", ["table encoding", "Code sparsity on first 1024 training rows", "Mean share of the error", "ten most anomalous rows", "region="])
    assert "Pictures" not in text


def test_a_classifier_has_its_confusion_matrix(tmp_path):
    x = np.frombuffer(gzip.open(MNIST).read()[16:], np.uint8).reshape(-1, 784).astype(np.float32)[:300] / 255
    np.save(tmp_path / "x.npy", x)
    np.save(tmp_path / "y.npy", np.frombuffer(gzip.open(LABELS).read()[8:], np.uint8)[:300].astype(np.int64))
    run_cli("train", "x.npy", "--hidden", "32", "--code", "16", "--epochs", "1", "-q", "-o", "ae.hg", cwd=tmp_path)
    run_cli("finetune", "ae.hg", "x.npy", "--labels", "y.npy", "--epochs", "3", "-o", "clf.hg", cwd=tmp_path)
    run_cli("report", "clf.hg", "x.npy", "--labels", "y.npy", "-o", "c.html", cwd=tmp_path)
    check_page(tmp_path / "c.html", ["classifier", "Loss per epoch", "Confusion matrix", "accuracy", "Confidence of the predicted class"])


def test_bad_input_is_an_error_and_writes_nothing(tmp_path):
    run_cli("train", MNIST, "--code", "8", "--epochs", "1", "-q", "-o", "m.hg", cwd=tmp_path)
    (tmp_path / "bad.log").write_text('{"epoch": 1}\nnot json\n')
    p = run_cli("report", "m.hg", "--log", "bad.log", "-o", "r.html", cwd=tmp_path, check=False)
    assert p.returncode == 2 and "bad.log:1" in p.stderr, p.stderr
    np.save(tmp_path / "narrow.npy", np.zeros((4, 10), np.float32))
    p = run_cli("report", "m.hg", "narrow.npy", "-o", "r.html", cwd=tmp_path, check=False)
    assert p.returncode == 2 and "784" in p.stderr, p.stderr
    assert not (tmp_path / "r.html").exists()


def test_estimators_write_reports(manifold, tmp_path):
    import hourglass

    ae = hourglass.AutoEncoder(hidden=[12], code=3, epochs=5, random_state=2).fit(manifold)
    ae.report(tmp_path / "ae.html", manifold, y=np.arange(len(manifold)) % 10 == 0)
    check_page(tmp_path / "ae.html", ["Model card", "Loss per epoch", "ROC curve (AUC", "Mean share of the error"])
    # A detector is shown by its own score (mse+lof) and its threshold; the shares are the error's.
    od = hourglass.OutlierDetector(hidden=[12], code=3, epochs=5, random_state=2).fit(manifold)
    od.report(tmp_path / "od.html", manifold, y=np.arange(len(manifold)) % 10 == 0)
    check_page(tmp_path / "od.html", ["Anomaly score per row", "mse+lof", "threshold", "ROC curve (AUC", "Mean share of the error"])
    clf = hourglass.Classifier(hidden=[16], pretrain_epochs=1, epochs=2, random_state=0)
    y = np.where(manifold[:, 0] > 0.5, "high", "low")
    clf.fit(manifold, y)
    clf.report(tmp_path / "clf.html", manifold, y)
    check_page(tmp_path / "clf.html", ["Confusion matrix", "high", "Loss per epoch"])


def test_a_pca_model_shows_its_spectrum(tmp_path):
    run_cli("pca", MNIST, "--components", "16", "-o", "p.hg", cwd=tmp_path)
    run_cli("report", "p.hg", MNIST, "-o", "p.html", cwd=tmp_path)
    text = check_page(tmp_path / "p.html", ["PCA", "Explained variance by component", "16 kept", "components kept explain"])
    assert "Loss per epoch" not in text and "No training history" not in text
