-- Indexes for writes that must cost what they change (issue 3 item 11).
--
-- A node create or virtual-IP change reads the config's other virtual IPs (suggestion and
-- uniqueness); this index covers that read (`id` included for the "other nodes" filter), so it
-- is an index-only scan with no table row visited per node.
CREATE INDEX ix_nodes_config_virtual_ip ON nodes (config_id, virtual_ip, id);

-- The refresh worker renders only stale nodes; it finds them without scanning every
-- node_config_state row of the config.
CREATE INDEX ix_node_config_state_stale ON node_config_state (config_id, desired_stale);
