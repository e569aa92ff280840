"""The signal numbers the runtime sends, without `import signal`: that module builds its enums
(and imports enum) at import time, ~2 ms of every verb that only needs SIGKILL."""

SIGKILL = 9
