"""Built-in reference cohorts.

- ``als-natural-history`` (default): simulated ALS natural history, monthly ALSFRS-R in long format. NOT patient
  data: generated from published summaries (Atassi 2014, van Eijk 2025, Paganoni 2023); see README.md here.
- ``als-natural-history-survival``: the same simulated patients, one row each, time to death or tracheostomy.
- ``va-lung``: the real Veterans' Administration lung cancer trial (Kalbfleisch & Prentice 1980), 137 patients.

::

    from cohorts.builtin import available_builtins, load_builtin
    cohort = load_builtin("als-natural-history")
"""

from cohorts.builtin.registry import DEFAULT_BUILTIN, BuiltinInfo, available_builtins, load_builtin

__all__ = ["DEFAULT_BUILTIN", "BuiltinInfo", "available_builtins", "load_builtin"]
