-- Auto-sync looks for the nodes whose desired config differs from the staged one after every
-- coalesced batch of writes (issue 3). This partial index holds only those state rows, so the
-- lookup costs the nodes that are due, not a probe per node of the config.
CREATE INDEX ix_node_config_state_due ON node_config_state (config_id)
    WHERE desired_sha256 <> '' AND desired_sha256 <> staged_sha256;
