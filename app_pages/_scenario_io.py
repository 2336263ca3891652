"""Scenario TOML download and upload in the sidebar (placeholder: being written)."""


def scenario_sidebar() -> None:
    """Draw the scenario download / upload controls in the sidebar."""
