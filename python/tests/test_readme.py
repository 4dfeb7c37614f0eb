"""The README's "From Python" example runs and prints what it says."""

import pathlib
import re

README = pathlib.Path(__file__).resolve().parents[2] / "README.md"


def test_readme_example_runs(tmp_path, monkeypatch, capsys):
    text = README.read_text()
    section = text.split("## From Python", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    exec(compile(code, "README.md", "exec"), {})  # noqa: S102 - our own README
    out = capsys.readouterr().out
    accuracy = float(re.search(r"features: ([0-9.]+)", out).group(1))
    auc = float(re.search(r"digits: ([0-9.]+)", out).group(1))
    assert accuracy > 0.85 and auc > 0.95, out
    assert (tmp_path / "digits.safetensors").exists()
