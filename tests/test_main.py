"""The demo, ``python -m sklearn_mtl``."""

from sklearn_mtl.__main__ import main


def test_demo_prints_a_per_task_table(capsys):
    assert main(["--max-iter", "3"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("task"))
    rows = [line.split() for line in lines[header + 2 : header + 5]]
    assert [r[0] for r in rows] == ["digit", "parity", "is_large"]
    assert [r[1] for r in rows] == ["multiclass", "binary", "binary"]
    assert [r[2] for r in rows] == ["10", "2", "2"]
    for r in rows:
        assert 0.0 <= float(r[3]) <= 1.0 and 0.0 <= float(r[4]) <= 1.0
    assert "trained 3 epochs" in out
