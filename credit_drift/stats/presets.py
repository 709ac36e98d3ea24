"""The names of the drift policy presets (`policy.get_policy`), importable without the
statistics stack so that settings can be validated at no cost."""

POLICY_PRESETS: tuple[str, ...] = ("default", "notebook")
