"""The EC2 instance's life: the metadata service, spot notices and rebalances."""
