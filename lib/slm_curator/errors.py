"""The errors a job turns into an exit code; here so that any module can raise them without importing config."""


class ConfigError(ValueError):
    """A configuration key is unknown or its value has the wrong type; the message names both."""
