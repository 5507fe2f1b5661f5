"""Why a training run fails, as the FineTuneJob's status reports it: a reason a program can
match, a message a human can act on, and the spec field at fault when there is one."""

from __future__ import annotations


class TrainError(Exception):
    """A failure the user can fix (data, model, output, hyperparameters): not retried."""

    def __init__(self, reason: str, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.field = field

    def as_status(self) -> dict[str, str]:
        error = {"reason": self.reason, "message": self.message}
        if self.field:
            error["field"] = self.field
        return error
