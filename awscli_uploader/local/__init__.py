"""What touches the local disk: the walk, filters, the open-writer guard, digests, the lock and
the state directory."""
