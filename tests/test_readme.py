import re

from conftest import REPO


def test_readme_opens_with_the_two_commands_and_ci_runs_the_second_verbatim():
    readme = (REPO / "README.md").read_text()
    blocks = re.findall(r"```(?:bash|sh)?\n(.*?)```", readme, flags=re.S)
    main_command, test_command = blocks[0].strip(), blocks[1].strip()
    assert "dvc repro" in main_command and "pytest" in test_command
    ci = (REPO / ".ci/run").read_text().strip().splitlines()
    assert ci[-1] == test_command
