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


def test_demo_refuses_a_bad_max_iter_with_a_usage_error(capsys):
    import pytest

    with pytest.raises(SystemExit) as exit_info:
        main(["--max-iter", "0"])
    assert exit_info.value.code == 2
    assert "--max-iter: must be an integer at least 1, got 0" in capsys.readouterr().err
    for argv, message in [
        (["--max-iter", "abc"], "--max-iter: must be an integer at least 1, got abc"),
        (
            ["--random-state", "-1"],
            "--random-state: must be an integer in [0, 4294967295], got -1",
        ),
        (
            ["--random-state", "5000000000"],
            "--random-state: must be an integer in [0, 4294967295], got 5000000000",
        ),
    ]:
        with pytest.raises(SystemExit) as exit_info:
            main(argv)
        assert exit_info.value.code == 2
        assert message in capsys.readouterr().err
