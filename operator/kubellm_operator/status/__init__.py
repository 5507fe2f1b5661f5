"""Status: typed views of the children, their verdicts, and each kind's status derived from them
(pure)."""
