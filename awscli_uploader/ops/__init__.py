"""What reports: log lines, the status record and `status`, metrics, the progress line, the
backlog."""
