"""Project errors. Each carries a message that says what was expected and what was found."""


class XaikitError(ValueError):
    """Base class: the CLI prints the message on one line and exits with status 2."""


class DataError(XaikitError):
    """The dataset is missing or not in the expected layout."""


class ConfigError(XaikitError):
    """The configuration file or an override is invalid."""


class ModelError(XaikitError):
    """The configured model (architecture, builder or model file) does not meet the study's contract."""
