"""The rig in torch: FLAME-layout heads posed in batches on any device (see `lbs_torch`)."""
