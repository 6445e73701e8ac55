"""Bad input for a vertical run on someone else's federation is refused before anything
starts: exit 2, one line, no run folder, no process."""

import pytest

from fedrisk.cli import main
from fedrisk.deployment.options import DeploymentOptions
from fedrisk.scenario import load_scenario
from tests.vertical.test_engines import SCENARIO

pytestmark = pytest.mark.filterwarnings("ignore:1024-bit Paillier keys")


@pytest.fixture
def split_of_another_seed(tmp_path, capsys):
    other = tmp_path / "other.toml"
    other.write_text(SCENARIO.replace("seed = 5", "seed = 6"))
    assert main(["data", "split", str(other), "--out", str(tmp_path / "split")]) == 0
    capsys.readouterr()
    return tmp_path / "split"


def test_a_vertical_scenario_naming_paillier_takes_its_bank_files(tmp_path, split_of_another_seed):
    """privacy.aggregation = 'paillier' is the banks' shared key in a horizontal run; a
    vertical bank's own files are named differently and checked by the vertical run."""
    (tmp_path / "s.toml").write_text(SCENARIO)
    s = load_scenario(tmp_path / "s.toml", ["privacy.aggregation=paillier"])
    options = DeploymentOptions.from_cli("127.0.0.1:9", None, True, split_of_another_seed, s)
    assert options.bank_files == split_of_another_seed


def test_bank_files_of_another_split_exit_2_before_anything_starts(
    tmp_path, split_of_another_seed, capsys
):
    (tmp_path / "s.toml").write_text(SCENARIO)
    out = tmp_path / "out"
    code = main([
        "run", str(tmp_path / "s.toml"), "--engine", "deployment", "--superlink", "127.0.0.1:9",
        "--insecure", "--bank-files", str(split_of_another_seed), "--out", str(out), "--quiet",
    ])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert "bank-rows.npz: bank's rows are not the ones this scenario gives" in err[-1]
    assert not out.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.toml", "s.toml", "split"]


def test_superlink_without_the_banks_files_exits_2(tmp_path, capsys):
    (tmp_path / "s.toml").write_text(SCENARIO)
    code = main([
        "run", str(tmp_path / "s.toml"), "--engine", "deployment", "--superlink", "127.0.0.1:9",
        "--insecure", "--out", str(tmp_path / "out"), "--quiet",
    ])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and "a vertical run needs the bank's files" in err[-1]
    assert not (tmp_path / "out").exists()
