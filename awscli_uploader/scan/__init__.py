"""One scan, phase by phase: plan, check, transfer, verify, settle; each returns outcomes,
which the recorder counts and logs."""
